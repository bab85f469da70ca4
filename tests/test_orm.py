"""stepsync from an application's ORM (docs/contract.md §10): SQLAlchemy sessions on psycopg (sync) and asyncpg
(async) publishing through flushes, the typed errors of stepsync.errors, the mapped columns of
stepsync.sqlalchemy, and alembic autogenerate with include_object against a database with stepsync.

The application is tests/orm_app: `models` declares only the application's own columns,
`models_synced` adds stepsync's through StepsyncColumns.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import psycopg
import psycopg2
import psycopg2.errors
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from psycopg.types.json import Jsonb
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import Session, sessionmaker

from flows import header, step
from orm_app import models, models_synced
from orm_app.models_synced import Step, Tree
from stepsync import owned
from stepsync import sqlalchemy as stepsync_sa
from stepsync.errors import (
    Diagnostics,
    FlowCheckFailed,
    NotFound,
    StepsyncDatabaseError,
    SyncedStepReadOnly,
    translate,
    translated,
)

TESTS_DIR = Path(__file__).resolve().parent

FIRST = {"steps": [
    header("Prepare"),
    step("s1", "Check power", description="Look at the LED", expected_outcome="The LED is green",
         commands=["ping host"]),
    step("s2", "Restart"),
]}
S1 = {"instructions": "Look at the LED", "help_text": "The LED is green",
      "commands": [{"label": "", "command": "ping host", "command_type": None}], "group_label": "Prepare"}
S2 = {"instructions": "Restart", "help_text": None, "commands": [], "group_label": "Prepare"}
# The republish: s1 retitled, s2 removed.
SECOND = {"steps": [
    header("Prepare"),
    step("s1", "Check the power", description="Look at the LED", expected_outcome="The LED is green",
         commands=["ping host"]),
]}
BAD = {"steps": [step("s1", "Fine"), step("s2", None)]}
BAD_HINT = 'Give the node a non-blank string "title".'
READ_ONLY_HINT = ("Fork it with stepsync.fork_step(step_id, user_id) to get an editable copy,"
                  " or change the flow and publish it again.")


@dataclass
class People:
    account: uuid.UUID
    author: uuid.UUID


def driver_url(url: str, driver: str) -> str:
    _, _, rest = url.partition("://")
    return f"postgresql+{driver}://{rest}"


@pytest.fixture
def people(db) -> People:
    account = db.value("INSERT INTO accounts (name) VALUES ('Acme') RETURNING id")
    author = db.value("INSERT INTO users (email, account_id) VALUES ('author@acme.test', %s) RETURNING id",
                      (account,))
    return People(account, author)


@pytest.fixture
def engine(db) -> Iterator[sa.Engine]:
    engine = sa.create_engine(driver_url(db.url, "psycopg"))
    yield engine
    engine.dispose()


def new_tree(people: People, structure: Any, status: str = "published", model: type = Tree, **values: Any):
    return model(id=uuid.uuid4(), name="Power", tree_type="procedural", tree_structure=structure, status=status,
                 account_id=people.account, author_id=people.author, **values)


def insert_tree(db, people: People, structure: Any, status: str = "published", tree_type: str = "procedural",
                name: str = "Power") -> uuid.UUID:
    return db.value(
        "INSERT INTO trees (name, tree_type, tree_structure, status, account_id, author_id)"
        " VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
        (name, tree_type, Jsonb(structure), status, people.account, people.author))


def entry(s: Step) -> tuple:
    return (s.source_node_id, s.title, s.step_type, s.content, s.visibility, s.account_id, s.created_by,
            s.is_flow_synced, s.is_active, s.last_synced_at)


def expected_entries(people: People, synced_at) -> list[tuple]:
    return [
        ("s1", "Check power", "action", S1, "team", people.account, people.author, True, True, synced_at),
        ("s2", "Restart", "action", S2, "team", people.account, people.author, True, True, synced_at),
    ]


def by_tree(tree_id: uuid.UUID):
    return select(Step).where(Step.source_tree_id == tree_id).order_by(Step.source_node_id)


def assert_bad_title(error: StepsyncDatabaseError | None, tree_id: uuid.UUID) -> None:
    assert isinstance(error, FlowCheckFailed)
    assert (error.sqlstate, error.tree_id, error.node_id, error.path, error.hint) == (
        "23514", tree_id, "s2", "$.steps[1].title", BAD_HINT)
    assert error.message == f'flow {tree_id} cannot be published: node "s2" has no usable "title": it is null'
    assert error.problem == 'node "s2" has no usable "title": it is null'
    assert error.detail == "JSON path: $.steps[1].title"


# --- publishing through a session (psycopg) ---------------------------------------------------


def test_flush_that_publishes_syncs_the_library_in_the_same_transaction(db, engine, people):
    with Session(engine) as session:
        tree = new_tree(people, FIRST)
        tree_id = tree.id
        session.add(tree)
        session.flush()
        now = session.scalar(select(func.now()))
        assert [entry(s) for s in session.scalars(by_tree(tree_id))] == expected_entries(people, now)
        assert [s.source_node_id for s in tree.steps] == ["s1", "s2"]
        assert db.value("SELECT count(*) FROM step_library") == 0  # not committed: others see nothing yet
        session.commit()
    assert db.rows("SELECT source_tree_id, source_node_id, title FROM step_library ORDER BY 2") == [
        (tree_id, "s1", "Check power"), (tree_id, "s2", "Restart")]


def test_models_without_the_sync_columns_publish_too(db, engine, people):
    with Session(engine) as session:
        session.add(new_tree(people, FIRST, model=models.Tree))
        session.flush()
        assert session.execute(
            select(models.Step.title, models.Step.content, models.Step.visibility).order_by(models.Step.title)
        ).all() == [("Check power", S1, "team"), ("Restart", S2, "team")]
        session.rollback()
    assert db.value("SELECT count(*) FROM step_library") == 0
    assert db.value("SELECT count(*) FROM trees") == 0


def test_failing_publish_translates_to_flow_check_failed(db, engine, people):
    with Session(engine) as session:
        tree = new_tree(people, BAD)
        session.add(tree)
        with pytest.raises(IntegrityError) as caught:
            session.flush()
        error = translate(caught.value)
        assert_bad_title(error, tree.id)
        assert error.orig is caught.value and error.__cause__ is caught.value
        assert isinstance(caught.value.orig, psycopg.errors.CheckViolation)
        assert translate(error) is error
        session.rollback()

        # The documented pattern: the typed error raised in place of SQLAlchemy's.
        tree = new_tree(people, BAD)
        session.add(tree)
        with pytest.raises(FlowCheckFailed) as typed, translated():
            session.flush()
        assert_bad_title(typed.value, tree.id)
        assert isinstance(typed.value.__cause__, IntegrityError)
        session.rollback()

        good = new_tree(people, FIRST)  # the session works again
        good_id = good.id
        session.add(good)
        session.commit()
    assert db.rows("SELECT id FROM trees") == [(good_id,)]
    assert db.rows("SELECT source_tree_id, source_node_id FROM step_library ORDER BY 2") == [
        (good_id, "s1"), (good_id, "s2")]


def test_translate_errors_makes_the_engine_raise_typed_errors(db, engine, people):
    stepsync_sa.translate_errors(engine)
    with Session(engine) as session:
        tree = new_tree(people, BAD)
        session.add(tree)
        with pytest.raises(FlowCheckFailed) as caught:
            session.flush()
        assert_bad_title(caught.value, tree.id)
        assert isinstance(caught.value.orig, IntegrityError)
        assert isinstance(caught.value.__cause__, psycopg.errors.CheckViolation)
        session.rollback()

        session.add(models_synced.User(email="author@acme.test"))  # not stepsync's: stays SQLAlchemy's
        with pytest.raises(IntegrityError):
            session.flush()
        session.rollback()

        missing = uuid.uuid4()
        with pytest.raises(NotFound) as not_found:
            session.execute(select(func.stepsync.sync_tree(missing)))
        assert not_found.value.tree_id == missing
        session.rollback()
        assert session.scalar(select(func.count()).select_from(Tree)) == 0


def test_editing_a_synced_step_raises_read_only_and_the_session_recovers(db, engine, people):
    tree_id = insert_tree(db, people, FIRST)
    with Session(engine) as session:
        s1, s2 = session.scalars(by_tree(tree_id)).all()
        s1_id, s2_id = s1.id, s2.id
        s1.title = "My own title"
        with pytest.raises(ProgrammingError) as caught:
            session.flush()
        error = translate(caught.value)
        assert isinstance(error, SyncedStepReadOnly)
        assert (error.sqlstate, error.operation, error.step_id, error.tree_id, error.changed_columns, error.hint) == (
            "42501", "update", s1_id, tree_id, ("title",), READ_ONLY_HINT)
        assert error.message == f"library step {s1_id} is managed by flow {tree_id} and is read-only"
        session.rollback()
        assert s1.title == "Check power"  # expired by the rollback, reloaded

        session.delete(s2)
        with pytest.raises(ProgrammingError) as caught:
            session.flush()
        error = translate(caught.value)
        assert isinstance(error, SyncedStepReadOnly)
        assert (error.operation, error.step_id, error.tree_id) == ("delete", s2_id, tree_id)
        session.rollback()

        session.add(Step(title="Forged", step_type="action", content=S2, is_flow_synced=True,
                         source_tree_id=tree_id, source_node_id="s9"))
        with pytest.raises(ProgrammingError) as caught:
            session.flush()
        error = translate(caught.value)
        assert isinstance(error, SyncedStepReadOnly)
        assert (error.operation, error.step_id, error.tree_id, error.message) == (
            "insert", None, None, "only the sync may create synced library steps")
        session.rollback()

        # usage_count, rating and rating_count stay the client's.
        s1.usage_count += 1
        s1.rating = Decimal("4.50")
        s1.rating_count = 1
        session.commit()
    assert db.rows("SELECT id, title, usage_count, rating, rating_count, is_active FROM step_library ORDER BY 2") == [
        (s1_id, "Check power", 1, Decimal("4.50"), 1, True), (s2_id, "Restart", 0, None, 0, True)]


def test_a_hand_made_step_cannot_be_made_synced(db, engine, people):
    with Session(engine) as session:
        mine = Step(title="Mine", step_type="action", content=S2, created_by=people.author)
        session.add(mine)
        session.commit()
        assert (mine.is_flow_synced, mine.source_tree_id, mine.visibility, mine.usage_count) == (
            False, None, "private", 0)
        mine_id = mine.id
        mine.source_node_id = "s1"
        with pytest.raises(ProgrammingError) as caught:
            session.flush()
        error = translate(caught.value)
        assert isinstance(error, SyncedStepReadOnly)
        assert (error.operation, error.step_id, error.tree_id) == ("update", mine_id, None)
        assert error.message == f"library step {mine_id} is hand-made and cannot be turned into a synced step"
        session.rollback()
        assert mine.source_node_id is None


def test_populate_existing_shows_the_synced_entries_after_a_republish(db, engine, people):
    tree_id = insert_tree(db, people, FIRST)
    first_sync = db.value("SELECT last_synced_at FROM step_library WHERE source_node_id = 's1'")
    with Session(engine) as session:
        loaded = session.scalars(by_tree(tree_id)).all()
        tree = session.get(Tree, tree_id)
        tree.tree_structure = SECOND
        session.flush()
        now = session.scalar(select(func.now()))

        stale = session.scalars(by_tree(tree_id)).all()  # the identity map keeps what it loaded
        assert stale == loaded
        assert [(s.title, s.is_active, s.last_synced_at) for s in stale] == [
            ("Check power", True, first_sync), ("Restart", True, first_sync)]

        fresh = session.scalars(by_tree(tree_id).execution_options(populate_existing=True)).all()
        assert fresh == loaded  # the same objects, refreshed
        assert [(s.title, s.is_active, s.last_synced_at, s.updated_at) for s in fresh] == [
            ("Check the power", True, now, now), ("Restart", False, first_sync, now)]
        session.commit()


def test_expire_library_on_publish_refreshes_loaded_steps(db, engine, people):
    tree_id = insert_tree(db, people, FIRST)
    factory = sessionmaker(engine)
    stepsync_sa.expire_library_on_publish(factory)
    with factory() as session:
        loaded = session.scalars(by_tree(tree_id)).all()
        session.get(Tree, tree_id).tree_structure = SECOND
        session.flush()
        assert [(s.title, s.is_active) for s in loaded] == [("Check the power", True), ("Restart", False)]

        session.get(Tree, tree_id).name = "Renamed"  # no publish, but trees were written: expired again
        session.flush()
        assert "title" not in loaded[0].__dict__
        assert stepsync_sa.expire_library(session) == 2
        session.rollback()


def test_updated_at_is_fetched_after_a_flush(db, engine, people):
    with Session(engine) as session:
        tree = new_tree(people, FIRST, status="draft")
        mine = Step(title="Mine", step_type="action", content=S2)
        session.add_all([tree, mine])
        session.commit()
        tree_before, step_before = tree.updated_at, mine.updated_at

        tree.name = "Renamed"
        mine.usage_count = 5
        session.flush()
        # server_onupdate=FetchedValue(): the flush brought the trigger's value back (RETURNING).
        assert "updated_at" in tree.__dict__ and "updated_at" in mine.__dict__
        now = session.scalar(select(func.now()))
        assert (tree.updated_at, mine.updated_at) == (now, now)
        assert tree.updated_at > tree_before and mine.updated_at > step_before
        session.commit()
    assert db.rows("SELECT updated_at FROM trees") == [(now,)]


def test_the_entries_view_model_reads_and_refuses_writes(db, engine, people):
    tree_id = insert_tree(db, people, FIRST, name="Power supply")
    Entry = stepsync_sa.StepLibraryEntry
    assert Entry.metadata is not models_synced.Base.metadata
    with Session(engine) as session:
        entries = session.scalars(
            select(Entry).where(Entry.source_tree_id == tree_id).order_by(Entry.source_node_id)).all()
        assert [(e.source_node_id, e.title, e.content, e.source_tree_name, e.is_flow_synced, e.usage_count)
                for e in entries] == [("s1", "Check power", S1, "Power supply", True, 0),
                                      ("s2", "Restart", S2, "Power supply", True, 0)]
        entries[0].usage_count = 3
        with pytest.raises(stepsync_sa.ReadOnlyViewError):
            session.flush()
        session.rollback()

        # A fork through the SQL API, seen through the mixin's columns.
        fork_id = session.scalar(select(func.stepsync.fork_step(entries[0].id, people.author)))
        fork = session.get(Step, fork_id)
        assert (fork.forked_from_id, fork.is_flow_synced, fork.source_tree_id, fork.visibility, fork.title) == (
            entries[0].id, False, None, "private", "Check power")
        session.commit()


def test_not_found_and_other_errors(db, engine, people):
    missing = uuid.uuid4()
    tree_id = insert_tree(db, people, FIRST)
    with Session(engine) as session:
        for call in (select(func.stepsync.sync_tree(missing)),
                     text("SELECT * FROM stepsync.preview(:tree_id)").bindparams(tree_id=missing)):
            with pytest.raises(DBAPIError) as caught:
                session.execute(call)
            error = translate(caught.value)
            assert isinstance(error, NotFound)
            assert (error.sqlstate, error.tree_id, error.step_id, error.message, error.hint) == (
                "P0002", missing, None, f"no flow with id {missing}", "Check the id against public.trees.")
            session.rollback()

        with pytest.raises(DBAPIError) as caught:
            session.execute(select(func.stepsync.fork_step(missing, people.author)))
        error = translate(caught.value)
        assert isinstance(error, NotFound)
        assert (error.step_id, error.user_id, error.tree_id) == (missing, people.author, None)
        assert error.message == f"step {missing} cannot be forked by user {people.author}"
        session.rollback()

        session.add(models_synced.User(email="author@acme.test"))  # 23505: not stepsync's
        with pytest.raises(IntegrityError) as caught:
            session.flush()
        assert translate(caught.value) is None
        session.rollback()

        session.get(Tree, tree_id).status = "bogus"  # 23514 from trees_status_check, not from a publish
        with pytest.raises(IntegrityError) as caught:
            session.flush()
        assert caught.value.orig.sqlstate == "23514"
        assert translate(caught.value) is None
        session.rollback()

        session.execute(text("SET LOCAL ROLE pg_read_all_data"))  # 42501 from a missing privilege
        with pytest.raises(ProgrammingError) as caught:
            session.execute(sa.update(Tree).values(name="x"))
        assert caught.value.orig.sqlstate == "42501"
        assert translate(caught.value) is None
        session.rollback()

        session.execute(text("SET LOCAL ROLE pg_write_all_data"))  # may write, but is not the owner
        session.execute(text("SET LOCAL stepsync.sync_writing = on"))
        with pytest.raises(ProgrammingError) as caught:
            session.execute(sa.update(Step).values(usage_count=0))
        error = translate(caught.value)
        assert isinstance(error, SyncedStepReadOnly)
        assert (error.operation, error.step_id, error.message) == (
            "marker", None, "stepsync.sync_writing is reserved for the sync")
        session.rollback()

    assert translate(ValueError("not a database error")) is None
    assert translate(RuntimeError("wrapped")) is None


# The diagnostics of a failed publish, as each driver reports them, without SQLAlchemy.
CHECK_CASES = [
    pytest.param(
        "procedural", {"steps": [step("s1", "Fine"), {"type": "procedure_step", "title": "No id"}]},
        'the node at $.steps[1] has no usable "id": it is missing', None, "$.steps[1].id",
        'Give every node that syncs a unique, non-empty string "id" of at most 255 characters.', id="no-id"),
    pytest.param(
        "troubleshooting",
        {"id": "q", "type": "question", "children": [
            {"id": 'odd "id"', "type": "action", "title": "Fine"},
            {"id": 'odd "id"', "type": "solution", "title": "Again"}]},
        'node "odd \\"id\\"" appears more than once in the flow (first at $.children[0])', 'odd "id"',
        "$.children[1].id", "Node ids must be unique within a flow: rename one of the nodes.", id="duplicate"),
    pytest.param(
        "maintenance", ["not", "an", "object"], "tree_structure is a JSON array, not a JSON object", None, "$",
        'Store the flow as a JSON object, for example {"steps": [...]}.', id="structure"),
]


@pytest.mark.parametrize(("tree_type", "structure", "problem", "node_id", "path", "hint"), CHECK_CASES)
def test_translate_reads_every_driver(db, people, tree_type, structure, problem, node_id, path, hint):
    tree_id = insert_tree(db, people, structure, status="draft", tree_type=tree_type)
    publish = "UPDATE trees SET status = 'published' WHERE id = $1"

    def check(error: StepsyncDatabaseError | None, orig: BaseException) -> None:
        assert isinstance(error, FlowCheckFailed)
        assert (error.tree_id, error.problem, error.node_id, error.path, error.hint, error.sqlstate) == (
            tree_id, problem, node_id, path, hint, "23514")
        assert error.message == f"flow {tree_id} cannot be published: {problem}"
        assert error.orig is orig

    with pytest.raises(psycopg.errors.CheckViolation) as caught:
        db.conn.execute(publish.replace("$1", "%s"), (tree_id,))
    check(translate(caught.value), caught.value)

    conn2 = psycopg2.connect(db.url)
    try:
        with pytest.raises(psycopg2.errors.CheckViolation) as caught2, conn2.cursor() as cursor:
            cursor.execute(publish.replace("$1", "%s"), (str(tree_id),))
        check(translate(caught2.value), caught2.value)
    finally:
        conn2.close()

    async def with_asyncpg() -> BaseException:
        conn = await asyncpg.connect(db.url)
        try:
            await conn.execute(publish, tree_id)
        except asyncpg.PostgresError as exc:
            return exc
        finally:
            await conn.close()
        raise AssertionError("the publish did not fail")

    caught3 = asyncio.run(with_asyncpg())
    assert isinstance(caught3, asyncpg.exceptions.CheckViolationError)
    check(translate(caught3), caught3)
    assert db.rows("SELECT status FROM trees") == [("draft",)]
    assert db.value("SELECT count(*) FROM step_library") == 0


def test_read_only_details_parse_without_a_server():
    diag = Diagnostics(
        sqlstate="42501", message="library step 6f1c0a1e-4f5b-4c41-9d1e-2b8a4b3f9c10 is managed by flow <NULL>"
        " and is read-only", detail="The update changes content, title; only usage_count, rating and"
        " rating_count may change.", hint=READ_ONLY_HINT)
    error = SyncedStepReadOnly(diag)
    assert (error.operation, error.step_id, error.tree_id, error.changed_columns, error.orig) == (
        "update", uuid.UUID("6f1c0a1e-4f5b-4c41-9d1e-2b8a4b3f9c10"), None, ("content", "title"), None)
    assert str(error) == f"{diag.message}\nDETAIL: {diag.detail}\nHINT: {READ_ONLY_HINT}"
    copy = pickle.loads(pickle.dumps(error))
    assert (type(copy), copy.diagnostics, copy.step_id, copy.changed_columns) == (
        SyncedStepReadOnly, diag, error.step_id, ("content", "title"))


def test_errors_need_neither_sqlalchemy_nor_the_other_drivers(db, people):
    tree_id = insert_tree(db, people, BAD, status="draft")
    script = (
        "import sys\n"
        "for name in ('sqlalchemy', 'asyncpg', 'psycopg2'): sys.modules[name] = None  # unimportable\n"
        "import psycopg\n"
        "from stepsync.errors import FlowCheckFailed, translate\n"
        f"conn = psycopg.connect({db.url!r}, autocommit=True)\n"
        "try:\n"
        f"    conn.execute(\"UPDATE trees SET status = 'published' WHERE id = '{tree_id}'\")\n"
        "except psycopg.Error as exc:\n"
        "    error = translate(exc)\n"
        "    assert isinstance(error, FlowCheckFailed), error\n"
        "    print(error.node_id, error.path)\n"
        "assert 'sqlalchemy' not in sys.modules or sys.modules['sqlalchemy'] is None\n"
    )
    result = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True,
                            timeout=60)
    assert (result.returncode, result.stdout, result.stderr) == (0, "s2 $.steps[1].title\n", "")


# --- the same through an async engine (asyncpg) -----------------------------------------------


def run_async(db, scenario, *, translate_errors: bool = False):
    async def main():
        engine = create_async_engine(driver_url(db.url, "asyncpg"))
        if translate_errors:
            stepsync_sa.translate_errors(engine)
        try:
            async with AsyncSession(engine) as session:
                return await scenario(session)
        finally:
            await engine.dispose()

    return asyncio.run(main())


def test_async_flush_that_publishes_syncs_in_the_same_transaction(db, people):
    tree = new_tree(people, FIRST)
    tree_id = tree.id

    async def scenario(session: AsyncSession):
        session.add(tree)
        await session.flush()
        now = await session.scalar(select(func.now()))
        rows = [entry(s) for s in await session.scalars(by_tree(tree_id))]
        seen_elsewhere = db.value("SELECT count(*) FROM step_library")
        updated_at = tree.updated_at  # fetched by the INSERT's RETURNING: no lazy load in async
        await session.commit()
        return now, rows, seen_elsewhere, updated_at

    now, rows, seen_elsewhere, updated_at = run_async(db, scenario)
    assert rows == expected_entries(people, now)
    assert (seen_elsewhere, updated_at) == (0, now)
    assert db.rows("SELECT source_tree_id, source_node_id FROM step_library ORDER BY 2") == [
        (tree_id, "s1"), (tree_id, "s2")]


def test_async_failing_publish_raises_flow_check_failed(db, people):
    bad, good = new_tree(people, BAD), new_tree(people, FIRST)
    bad_id, good_id = bad.id, good.id

    async def scenario(session: AsyncSession):
        session.add(bad)
        try:
            await session.flush()
        except IntegrityError as exc:
            caught = exc
        else:
            raise AssertionError("the publish did not fail")
        await session.rollback()
        session.add(good)  # the session works again
        await session.commit()
        return caught

    caught = run_async(db, scenario)
    assert_bad_title(translate(caught), bad_id)
    driver_error = caught.orig.__cause__  # SQLAlchemy's asyncpg adapter error wraps asyncpg's
    assert isinstance(driver_error, asyncpg.exceptions.CheckViolationError)
    assert_bad_title(translate(caught.orig), bad_id)
    assert_bad_title(translate(driver_error), bad_id)
    assert db.rows("SELECT id FROM trees") == [(good_id,)]
    assert db.value("SELECT count(*) FROM step_library WHERE source_tree_id = %s", (good_id,)) == 2


def test_async_translate_errors_raises_typed_errors(db, people):
    bad = new_tree(people, BAD)
    bad_id = bad.id

    async def scenario(session: AsyncSession):
        session.add(bad)
        with pytest.raises(FlowCheckFailed) as caught:
            await session.flush()
        await session.rollback()
        return caught.value

    error = run_async(db, scenario, translate_errors=True)
    assert_bad_title(error, bad_id)
    assert isinstance(error.orig, IntegrityError)
    assert db.value("SELECT count(*) FROM trees") == 0


def test_async_editing_a_synced_step_raises_read_only_and_the_session_recovers(db, people):
    tree_id = insert_tree(db, people, FIRST)

    async def scenario(session: AsyncSession):
        s1 = (await session.scalars(by_tree(tree_id))).first()
        s1_id = s1.id
        s1.content = {**S1, "instructions": "Mine"}
        try:
            await session.flush()
        except DBAPIError as exc:
            caught = exc
        else:
            raise AssertionError("the edit did not fail")
        await session.rollback()
        await session.refresh(s1)
        title, content = s1.title, s1.content
        s1.usage_count += 1
        await session.commit()
        return s1_id, caught, title, content

    s1_id, caught, title, content = run_async(db, scenario)
    error = translate(caught)
    assert isinstance(error, SyncedStepReadOnly)
    assert isinstance(caught.orig.__cause__, asyncpg.exceptions.InsufficientPrivilegeError)
    assert (error.sqlstate, error.operation, error.step_id, error.tree_id, error.changed_columns, error.hint) == (
        "42501", "update", s1_id, tree_id, ("content",), READ_ONLY_HINT)
    assert (title, content) == ("Check power", S1)
    assert db.rows("SELECT usage_count, content FROM step_library WHERE id = %s", (s1_id,)) == [(1, S1)]


def test_async_populate_existing_after_a_republish(db, people):
    tree_id = insert_tree(db, people, FIRST)
    first_sync = db.value("SELECT last_synced_at FROM step_library WHERE source_node_id = 's1'")

    async def scenario(session: AsyncSession):
        loaded = (await session.scalars(by_tree(tree_id))).all()
        tree = await session.get(Tree, tree_id)
        before = tree.updated_at
        tree.tree_structure = SECOND
        await session.flush()
        now = await session.scalar(select(func.now()))
        stale = [(s.title, s.is_active) for s in await session.scalars(by_tree(tree_id))]
        fresh = (await session.scalars(by_tree(tree_id).execution_options(populate_existing=True))).all()
        result = (now, before, tree.updated_at, stale, fresh == loaded,
                  [(s.title, s.is_active, s.last_synced_at) for s in fresh])
        await session.commit()
        return result

    now, before, after, stale, same_objects, fresh = run_async(db, scenario)
    assert stale == [("Check power", True), ("Restart", True)]
    assert same_objects
    assert fresh == [("Check the power", True, now), ("Restart", False, first_sync)]
    assert after == now and after > before


# --- alembic autogenerate ---------------------------------------------------------------------


def diff(url: str, metadata: sa.MetaData, **opts: Any) -> list:
    engine = sa.create_engine(driver_url(url, "psycopg"))
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "compare_server_default": True, **opts})
            return compare_metadata(context, metadata)
    finally:
        engine.dispose()


def flat(ops: list) -> list[tuple]:
    """autogenerate's ops with column modifications (nested lists) flattened."""
    out: list[tuple] = []
    for op in ops:
        out.extend(op if isinstance(op, list) else [op])
    return out


OP_KINDS = {"remove_table": "table", "add_table": "table", "remove_column": "column", "add_column": "column",
            "remove_index": "index", "add_index": "index", "remove_constraint": "unique_constraint",
            "add_constraint": "unique_constraint", "remove_fk": "foreign_key_constraint",
            "add_fk": "foreign_key_constraint"}


def op_object(op: tuple) -> tuple[str, Any]:
    kind = op[0]
    return OP_KINDS[kind], op[3] if kind.endswith("_column") else op[1]


def summary(ops: list) -> set[tuple]:
    """(op, table, name) for each op, to compare without the objects."""
    out = set()
    for op in flat(ops):
        if op[0].startswith("modify_"):
            out.add((op[0], op[2], op[3]))
            continue
        type_, obj = op_object(op)
        if type_ == "table":
            out.add((op[0], obj.name, None))
        elif type_ == "column":
            out.add((op[0], op[2], obj.name))
        else:
            out.add((op[0], obj.table.name, obj.name))
    return out


def copy_metadata(metadata: sa.MetaData) -> sa.MetaData:
    copy = sa.MetaData()
    for table in metadata.sorted_tables:
        table.to_metadata(copy)
    return copy


@pytest.mark.parametrize("app", [models, models_synced], ids=["app-columns-only", "with-StepsyncColumns"])
def test_autogenerate_proposes_nothing_for_what_stepsync_owns(db, app):
    metadata = app.Base.metadata
    assert diff(db.url, metadata, include_object=stepsync_sa.include_object) == []
    assert diff(db.url, metadata, include_object=stepsync_sa.include_object, include_schemas=True) == []
    assert diff(db.url, metadata, include_object=stepsync_sa.include_object, include_schemas=True,
                include_name=stepsync_sa.include_name) == []
    with_view = copy_metadata(metadata)
    stepsync_sa.StepLibraryEntry.__table__.to_metadata(with_view)  # the view's model on the app's metadata
    assert diff(db.url, with_view, include_object=stepsync_sa.include_object) == []


def test_without_include_object_autogenerate_would_drop_stepsync(db):
    ops = flat(diff(db.url, models.Base.metadata))
    assert ops, "expected autogenerate to propose dropping stepsync's objects"
    for op in ops:  # every proposal is about something stepsync owns: include_object silences exactly these
        assert op[0].startswith("remove_"), op
        assert stepsync_sa.is_stepsync_object(op_object(op)[1], op_object(op)[0]), op
    names = summary(ops)
    assert {("remove_column", "step_library", column) for column in owned.LIBRARY_COLUMNS} <= names
    assert {("remove_index", "step_library", index) for index in owned.LIBRARY_INDEXES} <= names
    assert {("remove_fk", "step_library", "step_library_source_tree_id_fkey"),
            ("remove_fk", "step_library", "step_library_forked_from_id_fkey"),
            ("remove_constraint", "step_library", "step_library_source_key")} <= names


@pytest.mark.parametrize("app", [models, models_synced], ids=["app-columns-only", "with-StepsyncColumns"])
def test_autogenerate_still_sees_the_applications_changes(db, app):
    db.conn.execute("CREATE INDEX step_library_created_by_idx ON public.step_library (created_by)")
    metadata = copy_metadata(app.Base.metadata)
    metadata.tables["trees"].append_column(sa.Column("priority", sa.Integer))
    metadata.tables["step_library"].append_column(sa.Column("difficulty", sa.SmallInteger))
    sa.Index("step_library_title_idx", metadata.tables["step_library"].c.title)
    sa.Table("tags", metadata, sa.Column("id", sa.Integer, primary_key=True), sa.Column("name", sa.Text))
    metadata.tables["users"].c.display_name.type = sa.String(80)

    ops = diff(db.url, metadata, include_object=stepsync_sa.include_object)
    assert summary(ops) == {
        ("add_table", "tags", None),
        ("add_column", "trees", "priority"),
        ("add_column", "step_library", "difficulty"),
        ("add_index", "step_library", "step_library_title_idx"),
        ("remove_index", "step_library", "step_library_created_by_idx"),
        ("modify_type", "users", "display_name"),
    }


def test_include_object_knows_adopted_names_and_search_additions(db):
    db.conn.execute("""
        ALTER TABLE public.step_library RENAME CONSTRAINT step_library_source_key TO uq_step_library_source;
        ALTER TABLE public.step_library RENAME CONSTRAINT step_library_source_tree_id_fkey TO fk_library_tree;
        ALTER INDEX public.step_library_forked_from_id_idx RENAME TO ix_step_library_forked_from;
        ALTER INDEX public.step_library_search_vector_idx RENAME TO ix_step_library_search;
        ALTER TABLE public.step_library ADD COLUMN search_document tsvector
            GENERATED ALWAYS AS (stepsync._search_document(title, content)) STORED;
        CREATE INDEX step_library_search_document_idx ON public.step_library USING gin (search_document);
        CREATE INDEX step_library_synced_idx ON public.step_library (source_tree_id, last_synced_at);
        CREATE TABLE IF NOT EXISTS public.stepsync_version (version_num varchar(32) PRIMARY KEY);
        CREATE TABLE stepsync.scratch (id integer PRIMARY KEY);
    """)
    names = summary(diff(db.url, models.Base.metadata, include_schemas=True))
    assert {("remove_column", "step_library", "search_document"),
            ("remove_index", "step_library", "step_library_search_document_idx"),
            ("remove_index", "step_library", "ix_step_library_search"),
            ("remove_index", "step_library", "step_library_synced_idx"),
            ("remove_constraint", "step_library", "uq_step_library_source"),
            ("remove_fk", "step_library", "fk_library_tree"),
            ("remove_table", "stepsync_version", None),
            ("remove_table", "scratch", None)} <= names
    for app in (models, models_synced):
        assert diff(db.url, app.Base.metadata, include_object=stepsync_sa.include_object) == []
        assert diff(db.url, app.Base.metadata, include_object=stepsync_sa.include_object, include_schemas=True) == []


# The seed design's migration 030, as an application ran it: the four sync columns and the unique
# key under the application's own names.
SEED_030 = """
    ALTER TABLE public.step_library
        ADD COLUMN source_tree_id uuid,
        ADD COLUMN source_node_id varchar(255),
        ADD COLUMN is_flow_synced boolean NOT NULL DEFAULT false,
        ADD COLUMN last_synced_at timestamptz,
        ADD CONSTRAINT fk_library_source_tree FOREIGN KEY (source_tree_id) REFERENCES public.trees (id)
            ON DELETE SET NULL,
        ADD CONSTRAINT uq_step_library_source UNIQUE (source_tree_id, source_node_id);
    CREATE INDEX ix_step_library_source_tree_id ON public.step_library (source_tree_id);
"""


def test_autogenerate_is_quiet_on_an_adopted_database(empty_db):
    from stepsync import database

    engine = sa.create_engine(driver_url(empty_db.url, "psycopg"))
    try:
        models.Base.metadata.create_all(engine)  # the application made its schema from its models
        with engine.begin() as conn:
            conn.exec_driver_sql(SEED_030)
    finally:
        engine.dispose()
    database.migrate(empty_db.url)  # stepsync installs beside the application's own tables

    ops = flat(diff(empty_db.url, models.Base.metadata))
    assert {("remove_constraint", "step_library", "uq_step_library_source"),
            ("remove_fk", "step_library", "fk_library_source_tree"),
            ("remove_index", "step_library", "ix_step_library_source_tree_id")} <= summary(ops)
    assert all(stepsync_sa.is_stepsync_object(op_object(op)[1], op_object(op)[0]) for op in ops)
    for app in (models, models_synced):
        assert diff(empty_db.url, app.Base.metadata, include_object=stepsync_sa.include_object) == []


def test_combine_include_object_keeps_both_filters(db):
    db.conn.execute("CREATE TABLE public.legacy_audit (id integer PRIMARY KEY)")

    def app_filter(object, name, type_, reflected, compare_to) -> bool:
        return not (type_ == "table" and name.startswith("legacy_"))

    assert summary(diff(db.url, models.Base.metadata, include_object=stepsync_sa.include_object)) == {
        ("remove_table", "legacy_audit", None)}
    assert ("remove_column", "step_library", "source_tree_id") in summary(
        diff(db.url, models.Base.metadata, include_object=app_filter))
    combined = stepsync_sa.combine_include_object(app_filter)
    assert diff(db.url, models.Base.metadata, include_object=combined) == []
    assert diff(db.url, models.Base.metadata, include_object=combined, include_schemas=True,
                include_name=stepsync_sa.combine_include_name(None)) == []


ENV_PY = '''
"""The application's alembic env.py, as the README shows it."""
import os

from alembic import context
from sqlalchemy import Column, Integer, create_engine

from orm_app.models import Base
from stepsync.sqlalchemy import include_object

target_metadata = Base.metadata
if os.environ.get("ORM_APP_PRIORITY"):  # the application's next change
    Base.metadata.tables["trees"].append_column(Column("priority", Integer))

engine = create_engine(os.environ["ORM_APP_DATABASE_URL"])
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=target_metadata,
                      include_object=include_object, compare_server_default=True)
    with context.begin_transaction():
        context.run_migrations()
'''


def alembic_revision(tmp_path: Path, url: str, message: str, **env: str) -> str:
    """Run `alembic revision --autogenerate` in a fresh project of the application; return the revision file."""
    from alembic import command
    from alembic.config import Config

    project = tmp_path / message
    project.mkdir()
    command.init(Config(str(project / "alembic.ini")), str(project / "migrations"))
    (project / "migrations" / "env.py").write_text(ENV_PY)
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(project / "alembic.ini"), "revision", "--autogenerate",
         "-m", message, "--rev-id", "0001"],
        check=False, cwd=project, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS_DIR), os.environ.get("PYTHONPATH", "")]),
             "ORM_APP_DATABASE_URL": driver_url(url, "psycopg"), **env})
    assert result.returncode == 0, result.stderr
    (revision,) = (project / "migrations" / "versions").glob("0001_*.py")
    return revision.read_text()


def body(source: str, function: str) -> str:
    """The statements of `function` in a revision file, without comments and blank lines."""
    match = re.search(rf"^def {function}\(\).*?:\n(.*?)(?=^def |\Z)", source, re.MULTILINE | re.DOTALL)
    assert match, source
    lines = [line.strip() for line in match.group(1).splitlines()]
    return "\n".join(line for line in lines if line and not line.startswith(("#", '"""')))


def test_alembic_revision_autogenerate_is_empty_and_sees_a_new_column(db, tmp_path):
    # The application's own history starts empty here (stepsync keeps its own in stepsync_version).
    db.conn.execute("DROP TABLE IF EXISTS public.alembic_version")
    empty = alembic_revision(tmp_path, db.url, "nothing")
    assert (body(empty, "upgrade"), body(empty, "downgrade")) == ("pass", "pass")

    change = alembic_revision(tmp_path, db.url, "priority", ORM_APP_PRIORITY="1")
    assert body(change, "upgrade") == "op.add_column('trees', sa.Column('priority', sa.Integer(), nullable=True))"
    assert body(change, "downgrade") == "op.drop_column('trees', 'priority')"
