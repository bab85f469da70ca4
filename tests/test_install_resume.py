"""An install cut off in its backfill is finished later (docs/contract.md §5.6, §9; docs/operating.md).

A DBA's bad night, on an application database as adopting teams have it (tests/app_schema.py), with
enough listed flows for several backfill batches. `stepsync install` marks the backfill pending
(stepsync.backfill_progress) in the transaction that installs the triggers, and every batch moves the
record's cursor on as it commits; the record is what the next `stepsync install`, `stepsync status`,
`stepsync doctor`, stepsync's own `alembic upgrade head` and `stepsync resync --all` go by:

 a. the terminal running `stepsync install` is killed (SIGKILL) mid-backfill: status and doctor show the
    unfinished backfill, `stepsync install` again resumes it and says so, a third says up to date;
 b. the server is stopped with an immediate shutdown mid-backfill (a cluster of its own): after the
    restart the version table says the newest revision, and `stepsync install` still finishes the work;
 c. Ctrl-C: SIGINT stops after the batch in progress commits and says how to resume; a KeyboardInterrupt
    in install.install() (from its progress callback) leaves the record where the batches got to;
 d. `alembic upgrade head` (stepsync's own environment) at head finishes an unfinished backfill;
 e. `stepsync install --no-backfill` leaves the backfill pending; `stepsync resync --all` finishes it;
 f. `stepsync resync --all --after ID` beyond the cursor neither clears nor moves the record.

To stop the backfill at a known place, a transaction of the test holds a row lock on one flow (as a
publish in progress would): the batch that reaches it waits. It takes that lock once the migration has
committed (an open transaction would hold up its CREATE INDEX CONCURRENTLY), while it holds the record's
row, which the first batch of the backfill must update before it commits.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from psycopg.types.json import Jsonb

from app_schema import APP_OWNER, build_app_database
from conftest import Db, Server
from repo import REPO_ROOT
from stepsync import history
from stepsync import install as installer
from stepsync_dev.cluster import ThrowawayCluster
from test_adopt import ACME, AUTHOR, as_role, seed

HEAD = history.head_revision()
UP_TO_DATE = f"stepsync is up to date (revision {HEAD}); nothing to do"
RESUMED = f"stepsync is at revision {HEAD}; resumed the backfill an earlier install left unfinished (after "
FLOWS = 600           # listed flows of the application (batches of at most 200: several of them)
MARKS = "stepsync_0004"   # the revision that marks a backfill pending (stepsync_0004; later ones keep its row)
AHEAD = 250           # the flow whose row lock stops the backfill: this many flows after the first batch's start
STEPS = 3

STEPSYNC = Path(sys.executable).with_name("stepsync")
PROGRESS = ("SELECT after_tree_id::text, flows_done, rows_written, revision FROM stepsync.backfill_progress")


# --- the application's database -----------------------------------------------------------------------------

def add_flows(conn: psycopg.Connection, n: int = FLOWS) -> list[str]:
    """N listed flows of STEPS steps each (written before stepsync: the library knows none); their ids in order."""
    structure = Jsonb({"steps": [{"id": f"s{j}", "type": "procedure_step", "title": f"Step {j}"}
                                 for j in range(STEPS)]})
    conn.execute("INSERT INTO public.trees (name, tree_type, tree_structure, status, account_id, author_id)"
                 " SELECT 'Bulk ' || g, 'procedural', %s, 'published', %s, %s FROM generate_series(1, %s) AS g",
                 (structure, ACME, AUTHOR, n))
    return [r[0] for r in conn.execute("SELECT id::text FROM public.trees WHERE name LIKE 'Bulk %' ORDER BY id")]


def make_app_database(server_admin_url: str, url: str, name: str) -> list[str]:
    """The seed application's database (test_adopt's, as its app_db fixture makes it) with FLOWS more flows."""
    with psycopg.connect(url, autocommit=True) as conn:
        build_app_database(conn)
        conn.execute(f"GRANT CREATE ON SCHEMA public TO {APP_OWNER}")
        conn.execute(f'GRANT CREATE ON DATABASE "{name}" TO {APP_OWNER}')
        seed(conn)
        return add_flows(conn)


@pytest.fixture
def app(server: Server):
    """A maker of application databases on the session's server: (Db, the bulk flows' ids)."""
    made: list[Db] = []

    def make() -> tuple[Db, list[str]]:
        name = server.new_name("resume")
        server.create_database(name)
        db = Db(server, name)
        made.append(db)
        return db, make_app_database(server.admin_url, db.url, name)

    yield make
    for db in made:
        db.close()
        server.drop_database(db.name)


# --- the command line ------------------------------------------------------------------------------------------

def command(url: str, *args: str) -> list[str]:
    exe = [str(STEPSYNC)] if STEPSYNC.exists() else [sys.executable, "-m", "stepsync.cli"]
    return [*exe, "--database-url", url, *args]


def environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("STEPSYNC_DATABASE_URL", "STEPSYNC_DEBUG")}


def stepsync(url: str, *args: str, expect: int | None = 0) -> subprocess.CompletedProcess:
    result = subprocess.run(command(url, *args), env=environ(), capture_output=True, text=True, timeout=600)
    assert "Traceback" not in result.stdout + result.stderr, result.stdout + result.stderr
    if expect is not None:
        assert result.returncode == expect, f"stepsync {' '.join(args)} exited {result.returncode}:\n{result.stderr}"
    return result


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def wait_for(predicate, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def progress_row(db: Db) -> tuple | None:
    if db.value("SELECT to_regclass('stepsync.backfill_progress')") is None:
        return None
    rows = db.rows(PROGRESS)
    return rows[0] if rows else None


def backfill_waiting(db: Db) -> bool:
    """The install's backfill has committed a batch and the next one waits for the test's row lock."""
    return db.value("SELECT count(*) FROM public.step_library WHERE is_flow_synced") > 0 and db.value(
        "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%%stepsync.backfill_batch(%%'"
        " AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()") == 1


def backfill_gone(db: Db) -> bool:
    return db.value("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%%stepsync.backfill_batch(%%'"
                    " AND state <> 'idle' AND pid <> pg_backend_pid()") == 0


def install_stopped_at_a_flow(db: Db, url: str) -> tuple[subprocess.Popen, psycopg.Connection, str]:
    """`stepsync install` in a subprocess, its backfill waiting for a flow's row lock that the returned
    transaction holds (as a publish in progress would), after at least one batch committed; and that flow."""
    proc = subprocess.Popen(command(url, "install"), env=environ(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    gate = psycopg.connect(db.url, autocommit=False)
    try:
        deadline = time.monotonic() + 120
        # The record's row, as soon as the upgrade is done (the revision that marks it, stepsync_0004, commits it
        # before the later ones run, and those take locks on trees that the test's locks must not hold up): the
        # first batch waits for it.
        version = f"SELECT version_num FROM public.{history.VERSION_TABLE}"
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, "the install did not get to its backfill"
            if gate.execute("SELECT to_regclass('stepsync.backfill_progress') IS NOT NULL"
                            f" AND to_regclass('public.{history.VERSION_TABLE}') IS NOT NULL").fetchone()[0] \
                    and gate.execute(version).fetchone() == (HEAD,):
                row = gate.execute("SELECT after_tree_id::text FROM stepsync.backfill_progress FOR UPDATE").fetchone()
                if row is not None:
                    break
            gate.rollback()
            time.sleep(0.002)
        listed = [r[0] for r in gate.execute(
            "SELECT id::text FROM public.trees WHERE status = 'published' AND is_active"
            " AND (%s::uuid IS NULL OR id > %s::uuid) ORDER BY id", (row[0], row[0]))]
        flow = listed[AHEAD]   # beyond the batch in progress (at most 200 flows), and not the last
        blocker = psycopg.connect(db.url, autocommit=False)
        blocker.execute("SELECT 1 FROM public.trees WHERE id = %s FOR UPDATE", (flow,))
    finally:
        gate.rollback()
        gate.close()
    wait_for(lambda: backfill_waiting(db), "the backfill to wait on the test's lock")
    return proc, blocker, flow


def library_complete(db: Db) -> None:
    assert db.rows("SELECT difference, tree_id, source_node_id FROM stepsync.check_library()") == []
    assert db.value("SELECT count(*) FROM public.step_library WHERE is_flow_synced AND is_active") \
        == FLOWS * STEPS + 4    # and the seed's two flows' four entries
    assert progress_row(db) is None


def check_unfinished(db: Db, url: str) -> tuple:
    """status and doctor show the unfinished backfill; returns the record's row."""
    row = progress_row(db)
    assert row is not None and 0 < row[1] < FLOWS + 2, row
    assert db.value(f"SELECT version_num FROM public.{history.VERSION_TABLE}") == HEAD

    status = json.loads(stepsync(url, "status", "--json").stdout)
    assert status["up_to_date"] is True
    unfinished = status["backfill"]
    assert unfinished is not None
    assert (unfinished["after_tree_id"], unfinished["flows_done"], unfinished["rows_written"],
            unfinished["revision"]) == row
    assert unfinished["flows_left"] == db.value(
        "SELECT count(*) FROM public.trees WHERE status = 'published' AND is_active AND id > %s::uuid", (row[0],))
    assert unfinished["flows_left"] > 0 and unfinished["started_at"]
    assert any("run `stepsync install` to finish it" in w for w in status["warnings"])
    text = stepsync(url, "status")
    assert "backfill: unfinished (started " in text.stdout
    assert f"{row[1]} flows done, {unfinished['flows_left']} left" in text.stdout

    doctor = stepsync(url, "doctor", "--json", expect=1)
    findings = json.loads(doctor.stdout)["findings"]
    backfill = [f for f in findings if f["check"] == "backfill"]
    assert len(backfill) == 1, findings
    assert backfill[0]["object"] == "stepsync.backfill_progress"
    assert backfill[0]["message"].endswith("run `stepsync install` to finish it (it goes on where it stopped)")
    assert (backfill[0]["flows_done"], backfill[0]["flows_left"]) == (row[1], unfinished["flows_left"])
    text = stepsync(url, "doctor", expect=1)
    assert any(line.startswith("backfill: the backfill the install of") for line in lines(text.stdout))
    return row


def resume_and_finish(db: Db, url: str, row: tuple) -> None:
    """`stepsync install` resumes from the cursor and says so; the library is complete; again: up to date."""
    before = db.value("SELECT count(*) FROM public.step_library WHERE is_flow_synced")
    result = stepsync(url, "install")
    out = lines(result.stdout)
    assert len(out) == 1 and out[0].startswith(f"{RESUMED}{row[1]} flows): "), out
    # Only the flows after the cursor were looked at: the line counts them, and the rows they got.
    left = FLOWS + 2 - row[1]
    assert out[0].endswith(f"{left} flows in step, {(FLOWS * STEPS + 4) - before} library rows written or"
                           " retired, 0 skipped"), out
    library_complete(db)
    again = stepsync(url, "install")
    assert lines(again.stdout) == [UP_TO_DATE]
    doctor = json.loads(stepsync(url, "doctor", "--json", expect=None).stdout)
    assert [f for f in doctor["findings"] if f["check"] in ("backfill", "library", "flows")] == []


# --- a. the terminal is killed -------------------------------------------------------------------------------

def test_install_killed_mid_backfill_is_finished_by_the_next_install(app):
    db, ids = app()
    url = as_role(db.url, APP_OWNER)
    proc, blocker, _ = install_stopped_at_a_flow(db, url)
    try:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
        blocker.rollback()   # the orphaned batch may finish now (its client is gone): either way is fine
        blocker.close()
    wait_for(lambda: backfill_gone(db), "the killed install's batch to end")

    row = check_unfinished(db, url)
    assert row[0] < ids[-1]
    resume_and_finish(db, url, row)


# --- b. the server stops (immediate shutdown) ---------------------------------------------------------------

@pytest.fixture
def own_cluster():
    """A cluster of this test's own, to crash; commits acknowledged before the crash survive it."""
    cluster = ThrowawayCluster(extra_settings="-c synchronous_commit=on")
    try:
        yield cluster
    finally:
        cluster.stop()


def test_install_cut_off_by_an_immediate_shutdown_is_finished_after_the_restart(own_cluster):
    name = "resume_crash"
    with psycopg.connect(own_cluster.url(), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    server = Server(own_cluster.url())
    db = Db(server, name)
    make_app_database(own_cluster.url(), db.url, name)
    url = as_role(db.url, APP_OWNER)
    proc, blocker, _ = install_stopped_at_a_flow(db, url)
    try:
        db.close()
        own_cluster.crash()
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
        blocker.close()
    assert proc.returncode == 1, err
    assert "Traceback" not in out + err
    assert err.startswith("stepsync: "), err

    own_cluster.restart()
    db = Db(server, name)
    try:
        row = check_unfinished(db, url)
        resume_and_finish(db, url, row)
    finally:
        db.close()


# --- c. Ctrl-C ---------------------------------------------------------------------------------------------------

def test_ctrl_c_stops_after_the_batch_in_progress_and_install_resumes(app):
    db, _ = app()
    url = as_role(db.url, APP_OWNER)
    proc, blocker, flow = install_stopped_at_a_flow(db, url)
    try:
        done_before = progress_row(db)[1]
        proc.send_signal(signal.SIGINT)
        first = proc.stderr.readline()   # the process has taken the Ctrl-C in
        assert first == "stepsync: stopping after the step in progress commits (Ctrl-C again to stop at once)\n"
        blocker.rollback()               # the batch in progress can finish now
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
        blocker.close()
    assert proc.returncode == 130, err
    assert "Traceback" not in out + err and out == ""
    row = progress_row(db)
    assert row is not None and row[1] > done_before    # the batch in progress committed, and moved the cursor on
    assert row[0] >= flow
    assert lines(err) == [
        f"stepsync: interrupted: the backfill stopped after the batch in progress committed; {row[1]} of"
        f" {FLOWS + 2} flows done: run `stepsync install` again to finish it (it goes on after the flows already"
        " done)"]

    row = check_unfinished(db, url)
    resume_and_finish(db, url, row)


def test_keyboard_interrupt_in_install_keeps_the_batches_done(app):
    """install.install() (the library call): a KeyboardInterrupt from its progress callback, after the first
    batches committed, raises BackfillInterrupted; the record says where they got to."""
    db, _ = app()
    url = as_role(db.url, APP_OWNER)
    calls = []

    def progress(done: int, total: int, rows: int) -> None:
        calls.append((done, total, rows))
        if len(calls) == 2:
            raise KeyboardInterrupt

    with pytest.raises(installer.BackfillInterrupted) as stopped:
        installer.install(url, say=print, warn=print, progress=progress)
    # 10 flows, then at most 20 more (each batch is sized by the time the one before took: at most doubled)
    done = calls[1][0]
    assert calls[0] == (10, FLOWS + 2, 10 * STEPS) and 10 < done <= 30 and calls[1][1:] == (FLOWS + 2, done * STEPS)
    assert str(stopped.value) == (
        f"interrupted: the backfill stopped after the batch in progress committed; {done} of {FLOWS + 2} flows"
        " done: run `stepsync install` again to finish it (it goes on after the flows already done)")
    listed = [r[0] for r in db.rows("SELECT id::text FROM public.trees WHERE status = 'published' AND is_active"
                                    " ORDER BY id")]
    assert progress_row(db) == (listed[done - 1], done, done * STEPS, MARKS)
    assert db.value("SELECT count(DISTINCT source_tree_id) FROM public.step_library WHERE is_flow_synced") == done

    resumed = []
    line = installer.install(url, say=print, warn=print, progress=lambda *a: resumed.append(a))
    assert line.startswith(f"{RESUMED}{done} flows): {FLOWS + 2 - done} flows in step")
    assert resumed[0][0] > done and resumed[-1][:2] == (FLOWS + 2, FLOWS + 2)   # the bar goes on from there
    library_complete(db)


# --- d. alembic upgrade head ------------------------------------------------------------------------------------

def partial_backfill(db: Db, url: str) -> None:
    """`stepsync install --no-backfill`, then one batch of the backfill (10 flows), as a DBA could run it."""
    stepsync(url, "install", "--no-backfill")
    assert db.value("SELECT flows FROM stepsync.backfill_batch(NULL, 10)") == 10


def test_alembic_upgrade_head_at_head_finishes_an_unfinished_backfill(app):
    db, _ = app()
    url = as_role(db.url, APP_OWNER)
    partial_backfill(db, url)
    env = {**environ(), "STEPSYNC_DATABASE_URL": url}
    result = subprocess.run([sys.executable, "-m", "alembic", "upgrade", "head"], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    library_complete(db)
    assert lines(stepsync(url, "install").stdout) == [UP_TO_DATE]


# --- e. --no-backfill, then resync --all ------------------------------------------------------------------------

def test_no_backfill_leaves_it_pending_and_resync_all_finishes_it(app):
    db, _ = app()
    url = as_role(db.url, APP_OWNER)
    result = stepsync(url, "install", "--no-backfill")
    assert lines(result.stdout) == [
        f"installed stepsync revision {HEAD}; no backfill (run `stepsync install` again, or `stepsync resync --all`,"
        " later to sync the flows listed now)"]
    assert progress_row(db) == (None, 0, 0, MARKS)
    status = json.loads(stepsync(url, "status", "--json").stdout)
    assert status["backfill"]["flows_done"] == 0 and status["backfill"]["flows_left"] == FLOWS + 2
    again = stepsync(url, "install", "--no-backfill")
    assert lines(again.stdout) == [
        f"stepsync is at revision {HEAD}; the backfill an earlier install left unfinished is still pending"
        " (0 flows done): run `stepsync install` again, or `stepsync resync --all`, to finish it"]
    assert progress_row(db) == (None, 0, 0, MARKS)

    resync = stepsync(url, "resync", "--all", "--batch", "150")
    assert lines(resync.stdout)[0] == f"resynced {FLOWS + 2} flows: {FLOWS * STEPS + 4} library rows written or retired"
    library_complete(db)
    assert lines(stepsync(url, "install").stdout) == [UP_TO_DATE]


# --- f. resync --all --after beyond the cursor -----------------------------------------------------------------

def test_resync_after_an_id_beyond_the_cursor_leaves_the_record_alone(app):
    db, ids = app()
    url = as_role(db.url, APP_OWNER)
    partial_backfill(db, url)
    listed = [r[0] for r in db.rows("SELECT id::text FROM public.trees WHERE status = 'published' AND is_active"
                                    " ORDER BY id")]
    row = progress_row(db)
    assert row == (listed[9], 10, 10 * STEPS, MARKS)
    beyond = ids[300]
    assert beyond > row[0]

    resync = stepsync(url, "resync", "--all", "--after", beyond, "--json")
    report = json.loads(resync.stdout)
    assert report["done"] == db.value("SELECT count(*) FROM public.trees WHERE status = 'published' AND is_active"
                                      " AND id > %s::uuid", (beyond,))
    assert report["interrupted"] is False
    assert progress_row(db) == row                  # neither cleared nor moved: the flows before `beyond` are not done
    assert db.value("SELECT count(*) FROM stepsync.check_library() WHERE difference = 'missing'") > 0
    assert json.loads(stepsync(url, "status", "--json").stdout)["backfill"]["flows_done"] == 10

    # Resumed from the cursor, the backfill goes over the flows after `beyond` again: already in step.
    result = stepsync(url, "install")
    assert lines(result.stdout)[0].startswith(f"{RESUMED}10 flows): {FLOWS + 2 - 10} flows in step")
    library_complete(db)
