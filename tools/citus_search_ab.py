"""Two revisions of search on Citus, on the same library, interleaved (a developer's tool; not shipped).

    python tools/citus_search_ab.py CITUS_URL ONE_NODE_URL [CYCLES] [BASE] [CLASS,CLASS...]

CITUS_URL is a coordinator's database and ONE_NODE_URL a one-node database holding the same library,
as the Citus benchmark builds them (stepsync_dev.bench.citus: build_search). The search's files
(_search*.sql, _prepared.sql, search_steps.sql and the search's row types) as a coordinator had them
at BASE (default stepsync_0008) and at the newest revision with a distributed variant (the variant's
frozen copy, else the one-node one) are installed in turn, CYCLES times (default 2); after each install
every query of the chosen classes of the benchmark (default: all) runs twice on Citus and on one node,
the two interleaved, and each result is compared with one node's. Every client connection is without
SSL, as the benchmark's (Citus turns SSL on on its nodes; a one-node server may have it off). p50 and
p95 per class are printed for one node and for both revisions. The newest revision's files are
installed again at the end. Same library, same cache, same cluster: the difference is the
functions'. It changes the database's functions while it runs: use it on a benchmark's database only.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

from stepsync_dev.bench import search as bench  # noqa: E402
from stepsync_dev.bench.citus import SEARCH_SQL as SEARCH  # noqa: E402
from stepsync_dev.bench.citus import connect  # noqa: E402

FROZEN = ROOT / "db" / "migrations" / "sql"
# The search's row types first (each file creates its type only when it is missing), then its functions.
TYPES = ("search_row.sql", "search_request.sql", "search_walk.sql", "search_found.sql", "search_gathered.sql")


def files_at(revision: str) -> list[Path]:
    """The search's files as a coordinator had them at REVISION: for each, the newest frozen copy at or before
    REVISION of its distributed variant, else of the one-node file (as stepsync.citus.frozen_file chooses)."""
    def search(name: str) -> bool:
        return name.startswith("_search") or name in ("_prepared.sql", "search_steps.sql", *TYPES)

    variants: dict[str, Path] = {}
    one_node: dict[str, Path] = {}
    for path in sorted(FROZEN.glob("stepsync_*/**/*.sql")):
        citus = path.parent.name == "citus"
        rev = (path.parent.parent if citus else path.parent).name
        if rev <= revision and search(path.name):
            (variants if citus else one_node)[path.name] = path
    newest = {**one_node, **variants}
    types = [newest[n] for n in TYPES if n in newest]
    return types + sorted(p for n, p in newest.items() if n not in TYPES)


def install(conn: psycopg.Connection[Any], files: list[Path]) -> None:
    """FILES on the coordinator, after dropping the search's functions and row types: a revision's file
    replaces a function with CREATE OR REPLACE, which cannot change its result type, and creates a row type
    only when it is missing (another revision's may differ: stepsync_0012 added two attributes to
    stepsync.search_walk)."""
    conn.execute("DROP TYPE IF EXISTS " + ", ".join(f"stepsync.{t.removesuffix('.sql')}" for t in TYPES)
                 + " CASCADE")
    dropped = conn.execute("SELECT string_agg(p.oid::regprocedure::text, ', ') FROM pg_proc AS p"
                           " WHERE p.pronamespace = 'stepsync'::regnamespace"
                           " AND (p.proname LIKE '\\_search%' OR p.proname IN ('_prepared', 'search_steps'))"
                           ).fetchone()
    if dropped and dropped[0]:
        conn.execute(f"DROP FUNCTION {dropped[0]}")
    for path in files:
        conn.execute(path.read_text(encoding="utf-8"))


def main() -> None:
    citus_url, one_url = sys.argv[1], sys.argv[2]
    cycles = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    base = sys.argv[4] if len(sys.argv) > 4 else "stepsync_0008"
    newest = sorted(p.name for p in FROZEN.glob("stepsync_*") if (p / "citus").is_dir())[-1]
    revisions = {base: files_at(base), newest: files_at(newest)}
    with connect(one_url, prepare_threshold=None) as one, connect(citus_url) as admin:
        terms = bench.choose_terms(one, 8)
        classes = sys.argv[5].split(",") if len(sys.argv) > 5 else [c for c, qs in terms.items() if qs]
        users = bench.choose_users(one)
        times: dict[tuple[str, str], list[float]] = {}
        mismatches = 0
        try:
            for _ in range(cycles):
                for rev, files in revisions.items():
                    install(admin, files)
                    with connect(citus_url, prepare_threshold=None) as ci:
                        for cls in classes:
                            for q, kind in terms[cls]:
                                for user in users.values():
                                    params = {"user": user, "q": q, "kind": kind}
                                    expected = one.execute(SEARCH, params).fetchall()
                                    if ci.execute(SEARCH, params).fetchall() != expected:
                                        mismatches += 1
                                        print(f"different rows: {rev}, {cls}, {q!r}")
                                    for r in range(2):
                                        for side, conn in ((rev, ci), ("one node", one))[:: 1 if r == 0 else -1]:
                                            t0 = time.perf_counter()
                                            conn.execute(SEARCH, params).fetchall()
                                            times.setdefault((cls, side), []).append(
                                                (time.perf_counter() - t0) * 1000)
        finally:
            install(admin, revisions[newest])
    print(f"| class | one node p50 / p95 | {base} p50 / p95 | ratio p95 | {newest} p50 / p95 | ratio p95 |")
    print("|---|---:|---:|---:|---:|---:|")
    for cls in classes:
        row = []
        one_p95 = 0.0
        for side in ("one node", base, newest):
            xs = sorted(times[(cls, side)])
            p50, p95 = statistics.median(xs), bench.percentile(xs, 95)
            row.append(f"{p50:.1f} / {p95:.1f}")
            if side == "one node":
                one_p95 = p95
            else:
                row.append(f"{p95 / one_p95:.2f}")
        print(f"| {cls} | " + " | ".join(row) + " |")
    print(f"{mismatches} results differed from one node's")


if __name__ == "__main__":
    main()
