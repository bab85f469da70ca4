"""Operating stepsync from the command line: status, doctor, search, check/preview --json, resync, replica.

Every test drives the real command line (a subprocess, as a user would) against
a real database and asserts the exit status, the output and the JSON.
"""

from __future__ import annotations

import json
import os
import pty
import re
import signal
import subprocess
import sys
import time
import uuid

import psycopg
import pytest

from flows import Flows, header, step
from stepsync.sqltext import packaged

ENV = {k: v for k, v in os.environ.items() if k not in ("STEPSYNC_DATABASE_URL", "STEPSYNC_DEBUG")}
ENV["COLUMNS"] = "250"   # rich tables unwrapped, so rows can be matched whole


def stepsync(*args: str, url: str | None, cwd=None, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stepsync.cli", "--database-url", url, *args] if url else
                          [sys.executable, "-m", "stepsync.cli", *args],
                          cwd=cwd, env=ENV, capture_output=True, text=True, timeout=timeout,
                          check=False)


def as_json(result: subprocess.CompletedProcess):
    assert "Traceback" not in result.stderr, result.stderr
    return json.loads(result.stdout)


def revisions(db) -> tuple[str, str | None]:
    try:
        from stepsync import history

        return history.installed_revision(db.conn), history.head_revision()
    except (ImportError, AttributeError):
        return db.value("SELECT version_num FROM stepsync_version"), None


def load_without_triggers(db, sql: str, params=()) -> None:
    """Write as a bulk load with the triggers off would (session_replication_role = replica)."""
    with db.connect(autocommit=False) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute(sql, params)
        conn.commit()


@pytest.fixture
def flows(db) -> Flows:
    return Flows(db.conn)


STRUCTURE = {"steps": [header("Network"), step("a", "Restart the router", description="Power cycle it"),
                       step("b", "Check the cable")]}


# --- status -------------------------------------------------------------------------------------

def test_status_json_counts_flows_library_and_owner(db, flows):
    listed = flows.create(STRUCTURE, status="published", name="Listed")
    flows.create({"steps": []}, tree_type="troubleshooting", name="Draft")
    inactive = flows.create(STRUCTURE, tree_type="maintenance", status="published", name="Inactive")
    flows.update(inactive, is_active=False)
    flows.create(STRUCTURE, status="archived", name="Archived")
    flows.publish(listed, {"steps": [step("a", "Restart the router")]})          # b retired
    db.conn.execute("INSERT INTO step_library (title, step_type, content) VALUES ('Mine', 'action',"
                    " '{\"instructions\": \"x\", \"help_text\": null, \"commands\": [], \"group_label\": null}')")
    entry = db.value("SELECT id FROM step_library WHERE source_node_id = 'a' AND source_tree_id = %s", (listed,))
    db.value("SELECT stepsync.fork_step(%s, %s)", (entry, flows.actors.author))

    result = stepsync("status", "--json", url=db.url)
    assert result.returncode == 0, result.stderr
    status = as_json(result)
    revision, head = revisions(db)
    assert status["revision"] == revision
    if head is not None:
        assert status["head_revision"] == head and status["up_to_date"] is True
    assert status["install_mode"] == "standalone"
    assert status["flows"] == {"total": 4, "listed": 1, "draft": 1, "inactive": 1, "archived": 1}
    assert status["flows_by_type"] == {
        "troubleshooting": {"total": 1, "listed": 0, "draft": 1, "inactive": 0, "archived": 0},
        "procedural": {"total": 2, "listed": 1, "draft": 0, "inactive": 0, "archived": 1},
        "maintenance": {"total": 1, "listed": 0, "draft": 0, "inactive": 1, "archived": 0},
    }
    assert status["library"] == {"total": 6, "synced_active": 1, "synced_retired": 3, "hand_made": 1, "forks": 1,
                                 "synced_orphaned": 0}
    last = db.value("SELECT max(last_synced_at) FROM step_library WHERE is_flow_synced")
    assert status["last_synced_at"] == last.isoformat()
    assert status["owner"]["role"] == db.value("SELECT pg_get_userbyid(relowner) FROM pg_class"
                                               " WHERE oid = 'public.trees'::regclass")
    assert status["owner"]["connected_as_owner"] is True
    assert status["triggers"] == "default"
    assert any("can bypass the read-only rule" in w for w in status["warnings"])


def test_status_text_and_a_non_owner(db, flows):
    flows.create(STRUCTURE, status="published")
    role = f"reader_{uuid.uuid4().hex[:8]}"
    db.conn.execute(f"CREATE ROLE {role} LOGIN")
    try:
        db.conn.execute(f"GRANT USAGE ON SCHEMA stepsync TO {role}")
        db.conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
        result = stepsync("status", url=db.url)
        assert result.returncode == 0, result.stderr
        revision, _ = revisions(db)
        assert result.stdout.startswith(f"stepsync revision {revision} (package's newest: ")
        assert "│ procedural      │      1 │     0 │        0 │        0 │     1 │" in result.stdout
        assert "│ synced, active  │       2 │" in result.stdout
        assert "connected as postgres (an owner)" in result.stdout
        assert result.stderr.startswith("warning: connected as postgres, a superuser: an owner can bypass")

        reader_url = db.url.replace("postgresql://postgres@", f"postgresql://{role}@")
        result = stepsync("status", "--json", url=reader_url)
        assert result.returncode == 0, result.stderr
        status = as_json(result)
        assert status["owner"]["connected_as"] == role
        assert status["owner"]["connected_as_owner"] is False and status["owner"]["superuser"] is False
        assert status["warnings"] == [] and result.stderr == ""
    finally:
        db.conn.execute(f"DROP OWNED BY {role}")
        db.conn.execute(f"DROP ROLE {role}")


def test_status_on_a_database_without_stepsync(empty_db):
    result = stepsync("status", url=empty_db.url)
    assert result.returncode == 1
    assert result.stderr == (f"stepsync: error: stepsync is not installed in database {empty_db.name}:"
                             " run `stepsync install` (or `stepsync migrate` for a new database)\n")
    assert result.stdout == ""


# --- doctor -------------------------------------------------------------------------------------

def test_doctor_finds_nothing_on_a_fresh_install(db, flows):
    flows.create(STRUCTURE, status="published")
    for args in ((), ("--exact",)):
        result = stepsync("doctor", *args, url=db.url)
        assert result.returncode == 0, result.stdout + result.stderr
        method = "exact" if args else "read-only"
        assert result.stdout == ("no findings (checked installed, revision, triggers, definitions, ownership,"
                                 " replication, backfill, row_security, library, flows;"
                                 f" definitions compared {method})\n")
        report = as_json(stepsync("doctor", "--json", *args, url=db.url))
        assert report["findings"] == [] and report["method"] == method


def test_doctor_exact_leaves_the_applications_own_objects_alone(db):
    # An application view over stepsync's view, and an application trigger on trees: --exact drops and
    # re-creates the view inside its rolled-back transaction (CASCADE takes the application's view along),
    # and neither is reported.
    db.conn.execute("CREATE VIEW public.popular_steps AS SELECT id, title FROM public.step_library_entries"
                    " WHERE usage_count > 10")
    db.conn.execute("CREATE FUNCTION public.app_audit() RETURNS trigger LANGUAGE plpgsql AS"
                    " 'BEGIN RETURN NEW; END'")
    db.conn.execute("CREATE TRIGGER app_audit BEFORE UPDATE ON public.trees FOR EACH ROW"
                    " EXECUTE FUNCTION public.app_audit()")
    for args in ((), ("--exact",)):
        report = as_json(stepsync("doctor", "--json", *args, url=db.url))
        assert report["findings"] == [], args
    assert db.value("SELECT to_regclass('public.popular_steps') IS NOT NULL") is True


def _body_changed(db, function: str) -> None:
    definition = db.value(f"SELECT pg_get_functiondef('{function}'::regprocedure)")
    db.conn.execute(definition.replace("$function$\n", "$function$\n-- hot fix\n", 1))


# (what a DBA did by hand, the object doctor must name, what it must say differs in read-only mode)
DRIFT = [
    (lambda db: _body_changed(db, "stepsync.preview(uuid)"), "stepsync.preview(uuid)", "body"),
    (lambda db: db.conn.execute("COMMENT ON FUNCTION stepsync.sync_tree(uuid) IS 'mine'"),
     "stepsync.sync_tree(uuid)", "comment"),
    (lambda db: db.conn.execute("ALTER FUNCTION stepsync.check_library() SET jit = on"),
     "stepsync.check_library()", ("SET (search_path=pg_catalog, pg_temp, jit=on; the file says"
                                  " search_path=pg_catalog, pg_temp, jit=off)")),
    (lambda db: db.conn.execute("ALTER FUNCTION stepsync.tg_trees__sync() SECURITY INVOKER"),
     "stepsync.tg_trees__sync()", "SECURITY DEFINER"),
    (lambda db: db.conn.execute("GRANT EXECUTE ON FUNCTION stepsync.sync_tree(uuid) TO PUBLIC"),
     "stepsync.sync_tree(uuid)", "EXECUTE granted to PUBLIC"),
    (lambda db: db.conn.execute("CREATE OR REPLACE TRIGGER t30_sync_on_insert AFTER INSERT ON public.trees"
                                " FOR EACH ROW WHEN (NEW.status = 'published')"
                                " EXECUTE FUNCTION stepsync.tg_trees__sync()"),
     "trigger t30_sync_on_insert on public.trees", "WHEN clause"),
    (lambda db: db.conn.execute("CREATE OR REPLACE TRIGGER t31_sync_on_update AFTER UPDATE OF status ON public.trees"
                                " FOR EACH ROW EXECUTE FUNCTION stepsync.tg_trees__sync()"),
     "trigger t31_sync_on_update on public.trees", "UPDATE OF columns (status)"),
    (lambda db: db.conn.execute("CREATE OR REPLACE VIEW public.step_library_entries WITH (security_invoker = false)"
                                " AS " + packaged()[2][0].query),
     "view public.step_library_entries", "options (security_invoker=false)"),
]


@pytest.mark.parametrize("change, obj, difference", DRIFT, ids=[d[2].split(" (")[0] + " " + d[1] for d in DRIFT])
def test_doctor_finds_drift_from_the_packaged_sql(db, change, obj, difference):
    change(db)
    result = stepsync("doctor", "--json", url=db.url)
    assert result.returncode == 1, result.stdout + result.stderr
    findings = [f for f in as_json(result)["findings"] if f["check"] == "definitions"]
    assert [f["object"] for f in findings] == [obj]
    assert difference in findings[0]["differences"]
    assert "differs from the packaged SQL" in findings[0]["message"]

    exact = as_json(stepsync("doctor", "--json", "--exact", url=db.url))
    assert [f["object"] for f in exact["findings"] if f["check"] == "definitions"] == [obj]

    text = stepsync("doctor", url=db.url)
    assert text.returncode == 1
    kind = "function " if obj.startswith("stepsync.") else ""
    assert text.stdout.splitlines()[0].startswith(f"definitions: {kind}{obj} differs from the packaged SQL (")


def test_doctor_finds_a_function_the_package_does_not_have_and_a_missing_one(db):
    db.conn.execute("CREATE FUNCTION stepsync.hand_made() RETURNS int LANGUAGE sql AS 'SELECT 1'")
    db.conn.execute("DROP FUNCTION stepsync.fork_step(uuid, uuid)")
    report = as_json(stepsync("doctor", "--json", url=db.url))
    assert sorted((f["check"], f["object"]) for f in report["findings"]) == [
        ("definitions", "stepsync.fork_step(uuid, uuid)"), ("definitions", "stepsync.hand_made()")]
    messages = {f["object"]: f["message"] for f in report["findings"]}
    assert messages["stepsync.hand_made()"].startswith("function stepsync.hand_made() is not in the packaged SQL")
    assert messages["stepsync.fork_step(uuid, uuid)"] == (
        "function stepsync.fork_step(uuid, uuid) is missing: re-create it from the packaged SQL (fork_step.sql),"
        " or run `stepsync install`")


def test_doctor_finds_disabled_and_missing_triggers(db):
    db.conn.execute("ALTER TABLE public.trees DISABLE TRIGGER t31_sync_on_update")
    db.conn.execute("DROP TRIGGER t05_guard_delete ON public.step_library")
    result = stepsync("doctor", url=db.url)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[:2] == [
        ("triggers: trigger t31_sync_on_update on public.trees is disabled (a bulk load that never re-enabled it?):"
         " ALTER TABLE public.trees ENABLE TRIGGER t31_sync_on_update; then `stepsync resync --all`"),
        ("triggers: trigger t05_guard_delete on public.step_library is missing: re-create it from the packaged SQL"
         " (step_library__t05_guard_delete.sql), then `stepsync resync --all`"),
    ]
    assert lines[-1].startswith("2 findings (checked installed, revision, triggers, definitions,")
    db.conn.execute("ALTER TABLE public.trees ENABLE REPLICA TRIGGER t31_sync_on_update")
    report = as_json(stepsync("doctor", "--json", url=db.url))
    assert [f["object"] for f in report["findings"]] == ["trigger t31_sync_on_update on public.trees",
                                                         "trigger t05_guard_delete on public.step_library"]
    assert "ENABLE REPLICA" in report["findings"][0]["message"]


def test_doctor_finds_the_sync_owned_by_another_role(db):
    role = f"other_{uuid.uuid4().hex[:8]}"
    db.conn.execute(f"CREATE ROLE {role}")
    try:
        db.conn.execute(f"ALTER FUNCTION stepsync.tg_trees__sync() OWNER TO {role}")
        report = as_json(stepsync("doctor", "--json", url=db.url))
        assert [(f["check"], f["object"]) for f in report["findings"]] == [("ownership", "stepsync.tg_trees__sync()")]
        assert report["findings"][0]["message"] == (
            f"stepsync.tg_trees__sync() (SECURITY DEFINER, part of the sync) is owned by {role} but"
            " public.step_library by postgres, so publishing fails with 42501:"
            " ALTER FUNCTION stepsync.tg_trees__sync() OWNER TO postgres (or `stepsync install` as postgres)")
    finally:
        db.conn.execute("ALTER FUNCTION stepsync.tg_trees__sync() OWNER TO postgres")
        db.conn.execute(f"DROP ROLE {role}")


def test_doctor_finds_a_revision_behind_the_package(db):
    _, head = revisions(db)
    if head is None:
        pytest.skip("the package's newest revision is not known yet (stepsync.history missing)")
    db.conn.execute("UPDATE stepsync_version SET version_num = 'stepsync_0001'")
    report = as_json(stepsync("doctor", "--json", url=db.url))
    assert [(f["check"], f["revision"], f["head_revision"]) for f in report["findings"]] == [
        ("revision", "stepsync_0001", head)]
    assert "definitions" not in report["checks"]      # an older revision has older definitions: not drift
    assert report["findings"][0]["message"].startswith(
        f"installed revision stepsync_0001 is not the package's newest ({head}): run `stepsync install`")


def test_doctor_counts_library_differences_and_failing_flows(db, flows):
    author = flows.actors.author
    for i in range(7):
        load_without_triggers(db, "INSERT INTO trees (name, tree_type, tree_structure, status, author_id)"
                                  " VALUES (%s, 'procedural', %s, 'published', %s)",
                              (f"Bulk {i}", json.dumps({"steps": [step("a", "A")]}), author))
    bad = flows.create({"steps": [step("a", "  ")]}, name="Bad draft")
    report = as_json(stepsync("doctor", "--json", url=db.url))
    by_check = {f["check"]: f for f in report["findings"]}
    assert sorted(by_check) == ["flows", "library"]
    assert by_check["library"]["count"] == 7 and len(by_check["library"]["first"]) == 5
    assert by_check["library"]["first"][0]["difference"] == "missing"
    assert by_check["library"]["message"].endswith("; and 2 more: run `stepsync resync --all`")
    assert by_check["flows"]["count"] == 1 and by_check["flows"]["listed"] == 0
    assert by_check["flows"]["first"] == [{"tree_id": str(bad), "problem": by_check["flows"]["first"][0]["problem"],
                                           "path": "$.steps[0].title"}]

    assert stepsync("resync", "--all", url=db.url).returncode == 0
    db.conn.execute("DELETE FROM trees WHERE id = %s", (bad,))
    result = stepsync("doctor", url=db.url)
    assert result.returncode == 0, result.stdout


def test_doctor_without_stepsync_and_as_a_role_without_rights(db, empty_db):
    result = stepsync("doctor", "--json", url=empty_db.url)
    assert result.returncode == 1
    assert as_json(result)["findings"] == [{
        "check": "installed", "object": empty_db.name,
        "message": f"stepsync is not installed in database {empty_db.name}: run `stepsync install`"
                   " (or `stepsync migrate` for a new database)"}]

    role = f"nobody_{uuid.uuid4().hex[:8]}"
    db.conn.execute(f"CREATE ROLE {role} LOGIN")
    db.conn.execute(f"GRANT SELECT ON public.stepsync_version TO {role}")
    try:
        url = db.url.replace("postgresql://postgres@", f"postgresql://{role}@")
        result = stepsync("doctor", url=url)
        assert result.returncode == 1
        assert "Traceback" not in result.stderr
        assert "library: could not check the library: permission denied for table trees [42501]" in result.stdout
        result = stepsync("doctor", "--exact", url=url)
        assert result.returncode == 1 and len(result.stderr.splitlines()) == 1
        assert result.stderr.startswith("stepsync: error: doctor --exact applies the packaged SQL in a transaction")
    finally:
        db.conn.execute(f"DROP OWNED BY {role}")
        db.conn.execute(f"DROP ROLE {role}")


# --- search, preview, check ------------------------------------------------------------------

def test_search_as_a_user(db, flows):
    other = flows.create({"steps": [step("x", "Restart the router firmware", library_visibility="public")]},
                         status="published", name="Firmware", account=flows.actors.other_account)
    tree = flows.create(STRUCTURE, status="published", name="Network basics")
    result = stepsync("search", "router", "--as", str(flows.actors.author), url=db.url)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [c.strip() for c in lines[1].split("┃")[1:-1]] == ["title", "type", "visibility", "source flow", "uses",
                                                              "rank"]
    assert "│ Restart the router          │ action │ team       │ Network basics │    0 │" in result.stdout
    assert "│ Restart the router firmware │ action │ public     │ Firmware       │    0 │" in result.stdout
    assert "2 results" in lines[-1]

    rows = as_json(stepsync("search", "router", "--as", str(flows.actors.author), "--json", url=db.url))
    expected = db.rows("SELECT id::text, title, rank FROM stepsync.search_steps(%s, 'router')", (flows.actors.author,))
    assert [(r["id"], r["title"], pytest.approx(r["rank"])) for r in rows] == expected
    assert {r["source_tree_id"] for r in rows} == {str(tree), str(other)}

    outsider = as_json(stepsync("search", "router", "--as", str(flows.actors.outsider), "--json", url=db.url))
    assert [r["title"] for r in outsider] == ["Restart the router firmware"]
    narrowed = as_json(stepsync("search", "router OR cable", "--as", str(flows.actors.author), "--flow", str(tree),
                                "--section", "Network", "--type", "action", "--limit", "1", "--json", url=db.url))
    assert len(narrowed) == 1 and narrowed[0]["source_tree_id"] == str(tree)
    assert as_json(stepsync("search", "the", "--as", str(flows.actors.author), "--json", url=db.url)) == []


@pytest.mark.parametrize("args, message", [
    (("router", "--as", "me"), "Invalid value for '--as': 'me' is not a valid UUID."),
    (("router",), "Missing option '--as'."),
    (("router", "--as", str(uuid.UUID(int=1)), "--type", "question"), "Invalid value for '--type'"),
    (("router", "--as", str(uuid.UUID(int=1)), "--limit", "0"), "Invalid value for '--limit'"),
])
def test_search_usage_errors(db, args, message):
    result = stepsync("search", *args, url=db.url)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_preview_json(db, flows):
    tree = flows.create(STRUCTURE)
    assert as_json(stepsync("preview", str(tree), "--json", url=db.url)) == [
        {"source_node_id": "a", "title": "Restart the router", "step_type": "action", "visibility": "team",
         "content": {"instructions": "Power cycle it", "help_text": None, "commands": [], "group_label": "Network"}},
        {"source_node_id": "b", "title": "Check the cable", "step_type": "action", "visibility": "team",
         "content": {"instructions": "Check the cable", "help_text": None, "commands": [], "group_label": "Network"}},
    ]


def test_check_json(db, flows):
    bad = flows.create({"steps": [step("a", "A"), step("b", 7)]}, name="Bad")
    listed = flows.create(STRUCTURE, status="published")
    load_without_triggers(db, "UPDATE trees SET tree_structure = %s WHERE id = %s",
                          (json.dumps({"steps": [step("a", "Restart the router")]}), listed))
    result = stepsync("check", "--json", url=db.url)
    assert result.returncode == 1
    report = as_json(result)
    assert [(f["tree_id"], f["path"], f["status"]) for f in report["flows"]] == [
        (str(bad), "$.steps[1].title", "draft")]
    assert "title" in report["flows"][0]["problem"]
    assert [(d["difference"], d["tree_id"], d["node_id"]) for d in report["differences"]] == [
        ("missing", str(listed), "a"), ("unexpected", str(listed), "a"), ("unexpected", str(listed), "b")]


# --- resync -------------------------------------------------------------------------------------

def _bulk(db, author, n: int, steps: int = 3, prefix: str = "Bulk") -> list[str]:
    """N listed flows written with the triggers off: the library knows nothing of them."""
    structure = json.dumps({"steps": [step(f"s{j}", f"Step {j}") for j in range(steps)]})
    values = ", ".join(f"('{prefix} {i:05d}', 'procedural', '{structure}', 'published', '{author}')" for i in range(n))
    load_without_triggers(db, f"INSERT INTO trees (name, tree_type, tree_structure, status, author_id) VALUES {values}")
    return [str(r[0]) for r in db.rows("SELECT id FROM trees WHERE name LIKE %s ORDER BY id", (f"{prefix} %",))]


def test_resync_says_what_it_changed(db, flows):
    tree = flows.create({"steps": [step("a", "A"), step("b", "B"), step("c", "C")]}, status="published", name="Edited")
    load_without_triggers(db, "UPDATE trees SET tree_structure = %s WHERE id = %s",
                          (json.dumps({"steps": [step("a", "A"), step("b", "B, edited"), step("d", "D")]}), tree))
    untouched = flows.create(STRUCTURE, status="published", name="In step")
    result = stepsync("resync", "--all", url=db.url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "resynced 2 flows: 3 library rows written or retired",
        "changed 1 flows: 1 entries inserted, 1 updated, 1 retired",
        f"  {tree}  Edited: 1 inserted, 1 updated, 1 retired",
    ]
    assert re.fullmatch(r"stepsync: 2 flows in \d+\.\d s: [\d,]+ flows/s, [\d,]+ entries/s\n", result.stderr), \
        result.stderr   # not a terminal: no bar, the rates in one line
    assert db.rows("SELECT source_node_id, title, is_active FROM step_library WHERE source_tree_id = %s"
                   " ORDER BY source_node_id", (tree,)) == [
        ("a", "A", True), ("b", "B, edited", True), ("c", "C", False), ("d", "D", True)]
    again = stepsync("resync", "--all", "--json", url=db.url)
    assert again.returncode == 0
    report = as_json(again)
    assert (report["flows"], report["done"], report["written"], report["changed"], report["interrupted"]) == \
        (2, 2, 0, [], False)
    one = stepsync("resync", str(untouched), url=db.url)
    assert one.stdout == "resynced 1 flows: 0 library rows written or retired\n"


def test_resync_batches_are_separate_transactions(db, flows):
    ids = _bulk(db, flows.actors.author, 5)
    report = as_json(stepsync("resync", "--all", "--batch", "2", "--json", url=db.url))
    assert (report["done"], report["batches"], report["written"], report["inserted"]) == (5, 3, 15, 15)
    assert [c["tree_id"] for c in report["changed"]] == ids
    xmins = db.rows("SELECT source_tree_id::text, xmin::text FROM step_library ORDER BY source_tree_id")
    by_batch = {}
    for tree, xmin in xmins:
        by_batch.setdefault(xmin, set()).add(tree)
    assert sorted(sorted(t) for t in by_batch.values()) == [ids[0:2], ids[2:4], ids[4:5]]
    assert db.rows("SELECT * FROM stepsync.check_library()") == []


def test_resync_skips_flows_that_fail_the_checks_and_goes_on(db, flows):
    ids = _bulk(db, flows.actors.author, 4)
    load_without_triggers(db, "UPDATE trees SET tree_structure = '{\"steps\": [{\"id\": \"a\","
                              " \"type\": \"procedure_step\", \"title\": \" \"}]}' WHERE id = %s", (ids[1],))
    result = stepsync("resync", "--all", "--batch", "10", url=db.url)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0] == "resynced 4 flows: 9 library rows written or retired"
    assert lines[-2].startswith("skipped 1 flows that fail the publish checks")
    name = db.value("SELECT name FROM trees WHERE id = %s", (ids[1],))
    assert lines[-1].startswith(f"  {ids[1]}  {name}: flow {ids[1]} cannot be published")
    assert db.value("SELECT count(DISTINCT source_tree_id) FROM step_library") == 3


def _wait_for(predicate, timeout=60.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _blocked_resync(db, flows, n=40):
    """A resync --all --batch 5 that is stuck on a row lock the test holds on the 23rd flow (batch 5)."""
    ids = _bulk(db, flows.actors.author, n, steps=2)
    blocker = db.connect(autocommit=False)
    blocker.execute("SELECT 1 FROM trees WHERE id = %s FOR UPDATE", (ids[22],))
    proc = subprocess.Popen([sys.executable, "-m", "stepsync.cli", "--database-url", db.url, "resync", "--all",
                             "--batch", "5"], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: db.value("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'stepsync resync'"
                               " AND wait_event_type = 'Lock'") == 1, what="the resync to wait on the lock")
    assert db.value("SELECT count(DISTINCT source_tree_id) FROM step_library") == 20   # 4 batches committed
    return ids, blocker, proc


def _stderr_line(proc: subprocess.Popen) -> str:
    """The next line the process writes on stderr (it says it got the Ctrl-C)."""
    line = proc.stderr.readline()
    assert line.startswith("stepsync: stopping after the batch in progress commits"), line
    return line


def test_resync_ctrl_c_stops_after_the_batch_in_progress(db, flows):
    ids, blocker, proc = _blocked_resync(db, flows)
    proc.send_signal(signal.SIGINT)
    first = _stderr_line(proc)   # the process has taken the Ctrl-C in
    blocker.rollback()   # the batch in progress can finish now
    out, err = proc.communicate(timeout=120)
    err = first + err
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert out.splitlines()[0] == "interrupted after 25 of 40 flows: 50 library rows written or retired"
    assert "stepsync: stopping after the batch in progress commits (Ctrl-C again to roll it back now)" in err
    assert "stepsync: stopped after the batch in progress committed" in err
    assert (f"stepsync: 25 of 40 flows done; run the same command again to finish: flows already in step are not"
            f" written again (or add --after {ids[24]} to skip the flows already done)") in err
    assert db.value("SELECT count(DISTINCT source_tree_id) FROM step_library") == 25
    blocker.close()

    resumed = stepsync("resync", "--all", "--after", ids[24], "--json", url=db.url)
    assert resumed.returncode == 0
    assert (as_json(resumed)["done"], as_json(resumed)["inserted"]) == (15, 30)
    assert db.rows("SELECT * FROM stepsync.check_library()") == []


def test_resync_second_ctrl_c_rolls_the_batch_back(db, flows):
    _, blocker, proc = _blocked_resync(db, flows)
    proc.send_signal(signal.SIGINT)
    first = _stderr_line(proc)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    err = first + err
    blocker.rollback()
    blocker.close()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert out.splitlines()[0] == "interrupted after 20 of 40 flows: 40 library rows written or retired"
    assert "stepsync: the batch in progress was rolled back; every batch before it is committed" in err
    assert db.value("SELECT count(DISTINCT source_tree_id) FROM step_library") == 20
    _wait_for(lambda: db.value("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'stepsync resync'")
              == 0, what="the resync's session to end")

    again = stepsync("resync", "--all", url=db.url)   # safe to re-run: finishes the rest, rewrites nothing else
    assert again.returncode == 0
    assert again.stdout.splitlines()[:2] == ["resynced 40 flows: 40 library rows written or retired",
                                             "changed 20 flows: 40 entries inserted, 0 updated, 0 retired"]
    assert db.rows("SELECT * FROM stepsync.check_library()") == []


def test_resync_progress_bar_shows_rates_on_a_terminal(db, flows):
    _bulk(db, flows.actors.author, 30)
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "stepsync.cli", "--database-url", db.url, "resync", "--all",
                             "--batch", "3"], env=ENV, stdout=subprocess.PIPE, stderr=follower, text=True)
    os.close(follower)
    screen = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        screen += chunk
    out, _ = proc.communicate(timeout=120)
    os.close(leader)
    assert proc.returncode == 0
    text = screen.decode(errors="replace")
    assert "30/30" in text and " flows/s" in text and " entries/s" in text
    assert out.splitlines()[0] == "resynced 30 flows: 90 library rows written or retired"


@pytest.mark.parametrize("args, message", [
    ((), "give either a TREE_ID or --all"),
    (("--all", "--batch", "0"), "Invalid value for '--batch'"),
    ((str(uuid.UUID(int=7)), "--after", str(uuid.UUID(int=7))), "--after goes with --all"),
])
def test_resync_usage_errors(db, args, message):
    result = stepsync("resync", *args, url=db.url)
    assert result.returncode == 2 and message in result.stderr


# --- replica -------------------------------------------------------------------------------------

def _enabled(db) -> dict[str, str]:
    return dict(db.rows("SELECT tgrelid::regclass::text || ' ' || tgname, tgenabled::text FROM pg_trigger"
                        " WHERE tgrelid IN ('public.trees'::regclass, 'public.step_library'::regclass)"
                        " AND (NOT tgisinternal OR (tgrelid = 'public.trees'::regclass AND (tgtype::int & 8) <> 0"
                        "      AND tgconstraint IN (SELECT oid FROM pg_constraint"
                        "                            WHERE conrelid = 'public.step_library'::regclass"
                        "                              AND confrelid = 'public.trees'::regclass)))"))


def test_replica_switches_the_sync_triggers_and_back(db):
    before = _enabled(db)
    assert set(before.values()) == {"O"}
    shown = as_json(stepsync("replica", "--json", url=db.url))
    assert shown["mode"] == "default" and shown["subscriptions"] == [] and shown["warnings"] == []
    assert {(t["table"], t["trigger"], t["enabled"]) for t in shown["triggers"]} >= {
        ("public.trees", "t10_set_updated_at", "origin"), ("public.trees", "t31_sync_on_update", "origin")}

    result = stepsync("replica", "--enable-always", url=db.url)
    assert result.returncode == 0, result.stderr
    assert "mode: always (replicated writes to public.trees sync this database's own library)" in result.stdout
    after = _enabled(db)
    fk = next(k for k in after if "RI_ConstraintTrigger" in k)
    kept = {name: after.pop(name) for name in list(after) if name.startswith("trees t1") and "updated_at" in name}
    assert kept and set(kept.values()) == {"O"}   # trees' updated_at triggers: replicated rows keep the publisher's
    assert set(after.values()) == {"A"}, after
    assert as_json(stepsync("doctor", "--json", url=db.url))["findings"] == []

    assert stepsync("replica", "--reset", url=db.url).returncode == 0
    assert _enabled(db) == before and fk in before


def test_replica_as_an_owner_who_is_not_a_superuser(db):
    role = f"deployer_{uuid.uuid4().hex[:8]}"
    db.conn.execute(f"CREATE ROLE {role} LOGIN")
    try:
        db.conn.execute(f"GRANT postgres TO {role}")
        url = db.url.replace("postgresql://postgres@", f"postgresql://{role}@")
        result = stepsync("replica", "--enable-always", url=url)
        assert result.returncode == 0
        assert result.stderr.startswith("warning: not a superuser: the foreign key step_library_source_tree_id_fkey")
        report = as_json(stepsync("doctor", "--json", url=db.url))
        assert [f["check"] for f in report["findings"]] == ["replication"]
        assert "run `stepsync replica --enable-always` as a superuser" in report["findings"][0]["message"]
    finally:
        stepsync("replica", "--reset", url=db.url)
        db.conn.execute(f"DROP ROLE {role}")


def test_replica_half_switched_is_a_doctor_finding(db):
    db.conn.execute("ALTER TABLE public.trees ENABLE ALWAYS TRIGGER t31_sync_on_update")
    report = as_json(stepsync("doctor", "--json", url=db.url))
    assert [(f["check"], f["object"]) for f in report["findings"]] == [
        ("triggers", "public.trees, public.step_library")]
    assert "half switched to ENABLE ALWAYS (t31_sync_on_update on public.trees)" in report["findings"][0]["message"]
    assert as_json(stepsync("replica", "--json", url=db.url))["mode"] == "mixed"


def test_ops_commands_write_nothing(db, flows):
    flows.create(STRUCTURE, status="published")
    before = flows.snapshot()
    for args in (("status",), ("doctor",), ("check",), ("replica",),
                 ("search", "router", "--as", str(flows.actors.author))):
        assert stepsync(*args, "--json", url=db.url).returncode == 0, args
    assert flows.snapshot() == before
    with psycopg.connect(db.url) as conn:
        assert conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                            " AND pid <> pg_backend_pid() AND state = 'idle in transaction'").fetchone()[0] == 0
