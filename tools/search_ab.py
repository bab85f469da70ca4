"""Two versions of stepsync.search_steps on the same library, interleaved (a developer's tool; not shipped).

    python tools/search_ab.py URL [ROUNDS] [BASE]

URL is a database filled by the search benchmark
(`PYTHONPATH=tools python -m stepsync_dev.bench.search URL 1000000 1` keeps it). The frozen
search_steps of BASE (default stepsync_0002) and of the newest revision are created under other names
(stepsync.search_steps_<revision>), each with the stepsync._search_ranked it calls, as frozen at that
revision (stepsync._search_ranked_<revision>), then every query of every class of the benchmark runs through both,
alternating which goes first, ROUNDS times (default 3) after one warm-up each; p50 and p95 per class and
user are printed, and whether both versions returned the same rows. Same rows, same plans for everything
else, same pages in cache: the difference is the function's.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

from stepsync_dev.bench import search as bench  # noqa: E402

FROZEN = ROOT / "db" / "migrations" / "sql"


def frozen_at(name: str, revision: str) -> str | None:
    """NAME as the newest frozen copy at or before REVISION has it (one node's), or None."""
    found = sorted(p.parent.name for p in FROZEN.glob(f"stepsync_*/{name}") if p.parent.name <= revision)
    return (FROZEN / found[-1] / name).read_text(encoding="utf-8") if found else None


def versions(base: str) -> list[tuple[str, list[str]]]:
    """(revision, the statements that create its search_steps and _search_ranked under the revision's
    names) for BASE and the newest revision that froze either."""
    newest = sorted(p.parent.name for n in ("search_steps.sql", "_search_ranked.sql")
                    for p in FROZEN.glob(f"stepsync_*/{n}"))[-1]
    out = []
    for rev in dict.fromkeys([base, newest]):
        statements = []
        for name in ("_search_ranked.sql", "search_steps.sql"):
            text = frozen_at(name, rev)
            if text is None:
                continue
            body = re.sub(r"(?m)^DROP FUNCTION .*$", "", text.split("\nCOMMENT ON FUNCTION")[0])
            body = body.replace("stepsync._search_ranked(", f"stepsync._search_ranked_{rev}(")
            body = body.replace("FUNCTION stepsync.search_steps(", f"FUNCTION stepsync.search_steps_{rev}(")
            statements.append(body)
        out.append((rev, statements))
    return out


def main() -> None:
    url = sys.argv[1]
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    base = sys.argv[3] if len(sys.argv) > 3 else "stepsync_0002"
    conn = psycopg.connect(url, autocommit=True, prepare_threshold=None)
    names = []
    for revision, statements in versions(base):
        for body in statements:
            conn.execute(body)
        names.append(f"search_steps_{revision}")
    terms = bench.choose_terms(conn, 8)
    users = bench.choose_users(conn)
    print(f"{'class':24s} {'user':10s} " + "  ".join(f"{n.removeprefix('search_steps_'):>22s}" for n in names)
          + "  (p50 / p95 ms)  same rows")
    for cls in bench.CLASSES:
        for user_kind, user in users.items():
            times: dict[str, list[float]] = {n: [] for n in names}
            same = True
            for q, kind in terms[cls]:
                answers = {n: conn.execute(f"SELECT id FROM stepsync.{n}(%s, %s, p_step_type => %s)",
                                           (user, q, kind)).fetchall() for n in names}
                same = same and len({tuple(a) for a in answers.values()}) == 1
                for r in range(rounds):
                    for n in (names if r % 2 == 0 else names[::-1]):
                        t0 = time.perf_counter()
                        conn.execute(f"SELECT id FROM stepsync.{n}(%s, %s, p_step_type => %s)",
                                     (user, q, kind)).fetchall()
                        times[n].append((time.perf_counter() - t0) * 1000)
            print(f"{cls:24s} {user_kind:10s} " + "  ".join(
                f"{bench.percentile(t, 50):10.1f} / {bench.percentile(t, 95):7.1f}" for t in times.values())
                + f"  {'yes' if same else 'NO'}", flush=True)
    for n in names:
        conn.execute(f"DROP FUNCTION stepsync.{n}(uuid, text, text, text, uuid, integer)")
        conn.execute(f"DROP FUNCTION IF EXISTS stepsync.{n.replace('search_steps', '_search_ranked')}"
                     "(uuid, text, text, text, uuid, integer)")
    conn.close()


if __name__ == "__main__":
    main()
