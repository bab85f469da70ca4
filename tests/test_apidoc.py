"""docs/api.md is generated from the database's own COMMENTs (tools/stepsync_dev/apidoc.py).

The committed page must equal what a freshly migrated database gives, so that
a COMMENT or a function changed without regenerating the page fails here.
To regenerate: `PYTHONPATH=tools python -m stepsync_dev.apidoc --database-url URL > docs/api.md`
against a database at the newest revision, or run this file with
STEPSYNC_UPDATE_API_DOC=1, which writes the page from the test's database.
"""

from __future__ import annotations

import difflib
import os
import subprocess
import sys
from pathlib import Path

from repo import REPO_ROOT
from stepsync_dev import apidoc

API_DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"
UPDATE_ENV = "STEPSYNC_UPDATE_API_DOC"


def test_committed_api_doc_is_current(db):
    page = apidoc.render(db.conn)
    if os.environ.get(UPDATE_ENV):
        API_DOC.write_text(page, encoding="utf-8")
    committed = API_DOC.read_text(encoding="utf-8") if API_DOC.exists() else ""
    if committed != page:
        diff = "".join(list(difflib.unified_diff(
            committed.splitlines(keepends=True), page.splitlines(keepends=True),
            "docs/api.md (committed)", "docs/api.md (from a freshly migrated database)"))[:80])
        raise AssertionError(
            "docs/api.md is stale. Regenerate it with\n"
            f"    {apidoc.REGENERATE}\n"
            "against a database at the newest revision, or with\n"
            f"    {UPDATE_ENV}=1 python -m pytest tests/test_apidoc.py\n"
            f"then commit it. First differences:\n{diff}")


def test_render_is_deterministic_and_leaves_the_session_as_it_was(db):
    db.conn.execute("SET search_path = public, stepsync")
    first = apidoc.render(db.conn)
    assert db.value("SHOW search_path") == "public, stepsync"
    assert apidoc.render(db.conn) == first
    db.conn.execute("RESET search_path")
    assert apidoc.render(db.conn) == first


def test_every_function_view_and_trigger_of_ours_is_on_the_page(db):
    page = apidoc.render(db.conn)
    db.conn.execute("SET search_path = pg_catalog")   # names print schema-qualified, as on the page
    functions = [r[0] for r in db.rows(
        "SELECT p.oid::regprocedure::text FROM pg_proc p WHERE p.pronamespace = 'stepsync'::regnamespace")]
    triggers = db.rows("SELECT t.tgname, t.tgrelid::regclass::text FROM pg_trigger t"
                       " JOIN pg_proc p ON p.oid = t.tgfoid"
                       " WHERE NOT t.tgisinternal AND p.pronamespace = 'stepsync'::regnamespace")
    assert functions and triggers
    for function in functions:
        assert f"### `{function}`" in page
    for name, table in triggers:
        assert f"### `{name}` on `{table}`" in page
    assert "### `public.step_library_entries`" in page
    assert "| `source_tree_name` |" in page
    assert "*(no COMMENT)*" not in page.split("## Internal functions")[0], "a public object has no COMMENT"


def test_body_comment_is_what_a_function_body_starts_with():
    assert apidoc.body_comment("\n-- first line\n--  indented\n--\nDECLARE\n-- not this") == [
        "first line", " indented", ""]
    assert apidoc.body_comment("\nDECLARE\n    v integer;") == []
    assert apidoc.body_comment(None) == []


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "tools")}
    env.pop("STEPSYNC_DATABASE_URL", None)
    return subprocess.run([sys.executable, "-m", "stepsync_dev.apidoc", *args],
                          check=False, capture_output=True, text=True, env=env, timeout=120)


def test_command_line_prints_the_page(db):
    result = _run("--database-url", db.url)
    assert result.returncode == 0, result.stderr
    assert result.stdout == apidoc.render(db.conn)


def test_command_line_errors_are_one_line(empty_db):
    no_schema = _run("--database-url", empty_db.url)
    assert no_schema.returncode == 1
    assert no_schema.stderr.count("\n") == 1 and "no schema stepsync" in no_schema.stderr
    bad_url = _run("--database-url", "mysql://nowhere/db")
    assert bad_url.returncode == 1 and "Traceback" not in bad_url.stderr
    missing = _run()
    assert missing.returncode == 2 and "--database-url" in missing.stderr
