"""stepsync carried as a branch of an application's own alembic (docs/contract.md §9.7; the README's "Carry stepsync in
your own alembic").

tests/app_alembic/ is a small application alembic project of its own: an env.py written as applications
write theirs (sync engine, or the async template's async_engine_from_config + run_sync), revisions
029_initial and 030_add_tags that create and alter the application's tables (the schema of
tests/app_schema.py), and 031_needs_stepsync, which `depends_on = "stepsync_0002"`. Each test writes the
application's alembic.ini the way the README says (its versions folder plus stepsync's packaged one, the
package resource `stepsync.db:migrations/versions`) and runs the real `alembic` command line, connected as
the application's owner role, under psycopg 3, psycopg2 and SQLAlchemy's asyncpg dialect.

What alembic does with the branch, as these tests pin it:
  * `alembic upgrade heads` runs stepsync's branch *before* the application's revisions on an empty
    database (its order between unrelated branches follows the dependency walk, not the file names):
    stepsync_0001 then refuses in one line and nothing is created. On an empty database, upgrade the
    application's revisions first (`alembic upgrade 030_add_tags`), then `alembic upgrade heads`.
  * With stepsync installed and no application revision depending on it, alembic_version holds both
    heads (030_add_tags, stepsync_0002); once 031_needs_stepsync (which depends on stepsync_0002) is
    applied, it holds only 031_needs_stepsync: stepsync_0002 is then its "effective head" (`alembic
    current` shows both).
"""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util import coerce_resource_to_filename
from psycopg.types.json import Jsonb

from app_schema import APP_OWNER, create_app_roles
from catalog import schema_snapshot
from stepsync import alembic_branch, history
from stepsync.paths import VERSIONS_DIR
from stepsync.pgbin import find_bin_dir

APP_DIR = Path(__file__).resolve().parent / "app_alembic"
APP_HEAD = "031_needs_stepsync"
STEPSYNC_HEAD = history.head_revision()  # stepsync_0002 today
# With every head applied, alembic_version holds the application's head and, once stepsync has revisions
# past the one 031_needs_stepsync depends on, stepsync's head too (until then it is an "effective head").
AT_HEADS = {APP_HEAD} | ({STEPSYNC_HEAD} if STEPSYNC_HEAD != alembic_branch.INSTALL_REVISION else set())
STEPSYNC_HEAD_IS = "effective head" if STEPSYNC_HEAD == alembic_branch.INSTALL_REVISION else "head"
DRIVERS = ("psycopg", "psycopg2", "asyncpg")

# The application's alembic.ini, as the README recipe has it (plus the usual logging sections).
INI = """\
[alembic]
script_location = {app}
# space, not os: the os separator (':' on POSIX) would split the package resource in two
path_separator = space
version_locations = {app}/versions stepsync.db:migrations/versions
sqlalchemy.url = {url}

[loggers]
keys = root,sqlalchemy,alembic

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARNING
handlers = console
qualname =

[logger_sqlalchemy]
level = WARNING
handlers =
qualname = sqlalchemy.engine

[logger_alembic]
level = INFO
handlers =
qualname = alembic

[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = NOTSET
formatter = generic

[formatter_generic]
format = %(levelname)-5.5s [%(name)s] %(message)s
"""

_LOG_LINE = re.compile(r"^(DEBUG|INFO|WARNI|ERROR|CRITI) +\[")

STEPSYNC_TRIGGERS = {
    "trees": {"t10_set_updated_at", "t20_retire_on_delete", "t30_sync_on_insert", "t31_sync_on_update"},
    "step_library": {"t04_check_marker", "t05_guard_delete", "t05_guard_insert", "t05_guard_update",
                     "t10_set_updated_at"},
}


class App:
    """The sample application's database and its alembic, through one driver."""

    def __init__(self, db, tmp_path: Path, driver: str, role: str = APP_OWNER) -> None:
        self.db = db
        self.driver = driver
        parts = urlsplit(db.url)
        self.owner_url = f"postgresql://{APP_OWNER}@{parts.hostname}:{parts.port}/{db.name}"
        url = f"postgresql+{driver}://{role}@{parts.hostname}:{parts.port}/{db.name}"
        self.ini = tmp_path / f"alembic-{driver}-{role}.ini"
        self.ini.write_text(INI.format(app=APP_DIR, url=url), encoding="utf-8")
        self.cwd = tmp_path

    def alembic(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run([sys.executable, "-m", "alembic", "-c", str(self.ini), *args],
                                cwd=self.cwd, capture_output=True, text=True, timeout=300, check=False)
        assert "Traceback" not in result.stderr + result.stdout, result.stderr
        if ok:
            assert result.returncode == 0, f"alembic {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
        return result

    def versions(self) -> set[str]:
        return {row[0] for row in self.db.rows("SELECT version_num FROM public.alembic_version")}

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(self.owner_url, autocommit=True)


def said(result: subprocess.CompletedProcess) -> list[str]:
    """What alembic printed besides its log lines."""
    return [line for line in (result.stdout + result.stderr).splitlines() if line.strip() and not _LOG_LINE.match(line)]


def one_line_failure(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0
    lines = said(result)
    assert len(lines) == 1 and lines[0].startswith("FAILED: "), result.stdout + result.stderr
    return lines[0].removeprefix("FAILED: ")


@pytest.fixture
def app_db(empty_db, server):
    """An empty database owned by the application's owner role (who runs its alembic)."""
    with server.admin() as conn:
        create_app_roles(conn)
        conn.execute(f'ALTER DATABASE "{empty_db.name}" OWNER TO {APP_OWNER}')
    return empty_db


def steps(*titles: str) -> dict:
    return {"steps": [{"id": f"s{i}", "type": "procedure_step", "title": title} for i, title in enumerate(titles)]}


def add_rows(app: App) -> dict[str, uuid.UUID]:
    """The application's rows before stepsync: a published flow, a draft, a broken listed flow, a hand-made step."""
    ids = {name: uuid.uuid4() for name in ("account", "author", "published", "draft", "broken", "hand_made")}
    with app.connect() as conn:
        conn.execute("INSERT INTO accounts (id, name) VALUES (%s, 'Acme')", (ids["account"],))
        conn.execute("INSERT INTO users (id, email, account_id) VALUES (%s, 'a@acme.test', %s)",
                     (ids["author"], ids["account"]))
        for name, status, structure in (("published", "published", steps("Open valve", "Close valve")),
                                        ("draft", "draft", steps("Check pressure")),
                                        ("broken", "published", steps("   "))):  # a blank title: skipped
            conn.execute("INSERT INTO trees (id, name, tree_type, tree_structure, status, account_id, author_id,"
                         " tags) VALUES (%s, %s, 'procedural', %s, %s, %s, %s, '{pumps}')",
                         (ids[name], f"Flow {name}", Jsonb(structure), status, ids["account"], ids["author"]))
        conn.execute("INSERT INTO step_library (id, title, step_type, content, account_id)"
                     " VALUES (%s, 'Hand-made step', 'action', '{\"instructions\": \"by hand\"}', %s)",
                     (ids["hand_made"], ids["account"]))
    return ids


def synced(app: App) -> dict[str, set[str]]:
    """Active synced entries: flow name -> titles."""
    out: dict[str, set[str]] = {}
    for name, title in app.db.rows("SELECT t.name, s.title FROM step_library s JOIN trees t ON t.id = s.source_tree_id"
                                   " WHERE s.is_flow_synced AND s.is_active"):
        out.setdefault(name, set()).add(title)
    return out


def triggers(app: App) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for table, name in app.db.rows("SELECT tgrelid::regclass::text, tgname FROM pg_trigger WHERE NOT tgisinternal"):
        out.setdefault(table, set()).add(name)
    return out


def app_rows(app: App) -> dict[str, list[tuple]]:
    """The application's own rows (what stepsync must never drop or rewrite)."""
    return {
        "accounts": app.db.rows("SELECT id, name, plan FROM accounts ORDER BY id"),
        "users": app.db.rows("SELECT id, email FROM users ORDER BY id"),
        "trees": app.db.rows("SELECT id, name, status, tree_structure::text, tags FROM trees ORDER BY id"),
        # Without stepsync every library row is hand-made (its downgrade deletes the synced ones).
        "step_library": app.db.rows("SELECT id, title, content::text, usage_count FROM step_library ORDER BY id"),
    }


def assert_installed(app: App) -> None:
    """stepsync is installed for real: schema, functions owned by the tables' owner, triggers, the library view."""
    assert app.db.value("SELECT to_regnamespace('stepsync')") is not None
    assert app.db.value("SELECT count(*) FROM pg_proc WHERE pronamespace = 'stepsync'::regnamespace") > 10
    assert app.db.rows("SELECT DISTINCT pg_get_userbyid(proowner) FROM pg_proc"
                       " WHERE pronamespace = 'stepsync'::regnamespace") == [(APP_OWNER,)]
    found = triggers(app)
    for table, names in STEPSYNC_TRIGGERS.items():
        assert names <= found.get(table, set()), (table, found)
    assert "trg_trees_audit" in found["trees"]  # the application's own trigger is kept
    assert app.db.value("SELECT to_regclass('public.step_library_entries')") is not None
    assert app.db.value("SELECT to_regclass('public.stepsync_version')") is None  # never its own table here


def assert_not_installed(app: App) -> None:
    assert app.db.value("SELECT to_regnamespace('stepsync')") is None
    assert triggers(app) == {"trees": {"trg_trees_audit"}}
    assert app.db.value("SELECT to_regclass('public.step_library_entries')") is None
    assert app.db.value("SELECT to_regclass('public.stepsync_version')") is None


# --- the revision graph --------------------------------------------------------------------------------------

def test_the_branch_as_the_application_sees_it():
    config = Config()
    config.set_main_option("script_location", str(APP_DIR))
    config.set_main_option("path_separator", "space")
    config.set_main_option("version_locations", f"{APP_DIR / 'versions'} {alembic_branch.version_location()}")
    script = ScriptDirectory.from_config(config)

    # The package resource the README puts in alembic.ini is the same folder as version_location().
    assert coerce_resource_to_filename(alembic_branch.VERSION_LOCATION).resolve() == VERSIONS_DIR.resolve()
    assert alembic_branch.version_location() == str(VERSIONS_DIR)

    revisions = {rev.revision: rev for rev in script.walk_revisions()}
    packaged = {rev.revision for rev in history.script_directory().walk_revisions()}
    assert set(revisions) == {"029_initial", "030_add_tags", APP_HEAD} | packaged  # no id collides
    assert set(script.get_heads()) == {APP_HEAD, STEPSYNC_HEAD}
    assert revisions[APP_HEAD].dependencies == alembic_branch.INSTALL_REVISION == "stepsync_0002"
    # Why depends_on names the install revision: the branch label names the branch's first revision,
    # stepsync_0001, which installs nothing in an application's database.
    assert script.get_revision(alembic_branch.BRANCH).revision == "stepsync_0001"
    assert script.get_revision("stepsync@head").revision == STEPSYNC_HEAD

    # alembic's upgrade order from an empty database: stepsync's branch first (see the module docstring).
    order = [rev.revision for rev in reversed(list(script.iterate_revisions("heads", "base")))]
    assert order.index("stepsync_0001") < order.index("029_initial")
    assert order.index(alembic_branch.INSTALL_REVISION) < order.index(APP_HEAD)


def test_new_application_revisions_go_to_the_application_folder(tmp_path):
    """`alembic revision` needs the application's head named (stepsync's is a head too) and writes the
    new file next to it, never into stepsync's packaged folder."""
    import shutil

    project = tmp_path / "app"
    shutil.copytree(APP_DIR, project, ignore=shutil.ignore_patterns("__pycache__"))
    ini = tmp_path / "alembic.ini"
    ini.write_text(INI.format(app=project, url="postgresql+psycopg://nobody@127.0.0.1:1/none"), encoding="utf-8")

    def alembic(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "alembic", "-c", str(ini), *args], cwd=tmp_path,
                              capture_output=True, text=True, timeout=120, check=False)

    heads = alembic("heads")
    assert heads.stdout.splitlines() == [f"{APP_HEAD} (head)", f"{STEPSYNC_HEAD} (stepsync) ({STEPSYNC_HEAD_IS})"]
    refused = alembic("revision", "-m", "add ratings")
    assert one_line_failure(refused) == ("Multiple heads are present; please specify the head revision on which"
                                         " the new revision should be based, or perform a merge.")
    packaged = sorted(p.name for p in VERSIONS_DIR.iterdir())
    made = alembic("revision", "-m", "add ratings", "--head", APP_HEAD, "--rev-id", "032_add_ratings")
    assert made.returncode == 0, made.stderr
    assert sorted(p.name for p in VERSIONS_DIR.iterdir()) == packaged
    new = project / "versions" / "032_add_ratings_add_ratings.py"
    assert f"down_revision = {APP_HEAD!r}" in new.read_text(encoding="utf-8")
    assert alembic("heads").stdout.splitlines()[0] == "032_add_ratings (head)"


# --- upgrade, downgrade, upgrade, under each driver -----------------------------------------------------------

@pytest.mark.parametrize("driver", DRIVERS)
def test_upgrade_and_downgrade_with_stepsync_inside(app_db, tmp_path, driver):
    app = App(app_db, tmp_path, driver)
    app.alembic("upgrade", "030_add_tags")
    assert app.versions() == {"030_add_tags"}
    assert_not_installed(app)
    ids = add_rows(app)
    with app.connect() as conn:
        before_catalog = schema_snapshot(conn)
    before_rows = app_rows(app)

    # stepsync alone first: both heads recorded in the application's alembic_version.
    result = app.alembic("upgrade", "stepsync@head")
    assert app.versions() == {"030_add_tags", STEPSYNC_HEAD}
    assert_installed(app)
    assert synced(app) == {"Flow published": {"Open valve", "Close valve"}}  # the backfill
    # The backfill's warning for the flow it skipped reaches the application's log, whatever the driver.
    assert f"stepsync backfill skipped flow {ids['broken']} (Flow broken)" in result.stderr

    # Then the application's revision that depends on it.
    app.alembic("upgrade", "heads")
    assert app.versions() == AT_HEADS  # {031_needs_stepsync}: stepsync_0002 is now its effective head
    current = app.alembic("current").stdout
    assert f"{STEPSYNC_HEAD} ({STEPSYNC_HEAD_IS})" in current and f"{APP_HEAD} (head)" in current
    assert {row[0] for row in app.db.rows("SELECT title FROM most_used_steps")} == {
        "Open valve", "Close valve", "Hand-made step"}

    # A publish syncs; the application's trigger still fires.
    with app.connect() as conn:
        conn.execute("UPDATE trees SET status = 'published' WHERE id = %s", (ids["draft"],))
    assert synced(app)["Flow draft"] == {"Check pressure"}
    assert app.db.value("SELECT count(*) FROM tree_audit WHERE tree_id = %s", (ids["draft"],)) == 1

    # Upgrading again is a no-op: nothing runs, not even the version row is rewritten.
    version_row = app.db.rows("SELECT xmin::text, version_num FROM alembic_version")
    with app.connect() as conn:
        at_head = schema_snapshot(conn)
    again = app.alembic("upgrade", "heads")
    assert "Running upgrade" not in again.stderr
    assert app.db.rows("SELECT xmin::text, version_num FROM alembic_version") == version_row
    with app.connect() as conn:
        assert schema_snapshot(conn) == at_head

    # Downgrading the application's own revision leaves stepsync alone.
    app.alembic("downgrade", "030_add_tags")
    assert app.versions() == {"030_add_tags", STEPSYNC_HEAD}
    assert app.db.value("SELECT to_regclass('public.most_used_steps')") is None
    assert_installed(app)
    with app.connect() as conn:
        conn.execute("UPDATE trees SET tree_structure = %s WHERE id = %s",
                     (Jsonb(steps("Open valve", "Close valve", "Vent")), ids["published"]))
    assert synced(app)["Flow published"] == {"Open valve", "Close valve", "Vent"}

    # Removing stepsync (alembic downgrades the application's revision that depends on it first)
    # leaves the application's tables and rows as they were before it came.
    app.alembic("upgrade", "heads")
    assert app.versions() == AT_HEADS
    app.alembic("downgrade", "stepsync@base")
    assert app.versions() == {"030_add_tags"}
    assert_not_installed(app)
    assert app.db.value("SELECT to_regclass('public.most_used_steps')") is None
    with app.connect() as conn:
        assert schema_snapshot(conn) == before_catalog
    after_rows = app_rows(app)
    assert after_rows["trees"] != before_rows["trees"]  # the two writes above, made through stepsync
    with app.connect() as conn:  # undo them as the application would, then compare everything
        conn.execute("UPDATE trees SET status = 'draft' WHERE id = %s", (ids["draft"],))
        conn.execute("UPDATE trees SET tree_structure = %s WHERE id = %s",
                     (Jsonb(steps("Open valve", "Close valve")), ids["published"]))
    assert app_rows(app) == before_rows

    # And installing again works.
    app.alembic("upgrade", "heads")
    assert app.versions() == AT_HEADS
    assert_installed(app)
    assert synced(app) == {"Flow published": {"Open valve", "Close valve"}}
    assert app.db.value("SELECT title FROM step_library WHERE id = %s", (ids["hand_made"],)) == "Hand-made step"


def test_backfill_and_keep_columns_options(app_db, tmp_path):
    """`-x backfill=false` installs without syncing the flows listed now; `-x keep_columns=true` removes stepsync
    but keeps the sync columns and the synced rows (as `stepsync uninstall` without --drop-columns)."""
    app = App(app_db, tmp_path, "psycopg")
    app.alembic("upgrade", "030_add_tags")
    ids = add_rows(app)
    app.alembic("-x", "backfill=false", "upgrade", "heads")
    assert_installed(app)
    assert synced(app) == {}
    with app.connect() as conn:
        conn.execute("UPDATE trees SET status = 'published' WHERE id = %s", (ids["draft"],))
    assert synced(app) == {"Flow draft": {"Check pressure"}}
    app.alembic("-x", "keep_columns=true", "downgrade", "stepsync@base")
    assert app.versions() == {"030_add_tags"}
    assert_not_installed(app)
    assert app.db.rows("SELECT title, is_flow_synced FROM step_library WHERE source_tree_id = %s",
                       (ids["draft"],)) == [("Check pressure", True)]


# --- refusals: one line, nothing changed ---------------------------------------------------------------------

@pytest.mark.parametrize("driver", DRIVERS)
def test_an_empty_database_needs_the_application_revisions_first(app_db, tmp_path, driver):
    """alembic runs stepsync's branch first on an empty database: stepsync_0001 refuses in one line."""
    app = App(app_db, tmp_path, driver)
    message = one_line_failure(app.alembic("upgrade", "heads", ok=False))
    assert message == ("stepsync: the application's tables accounts, users, trees and step_library do not exist"
                       " yet (Upgrade the application's revisions that create them first (alembic upgrade"
                       " <revision>), then alembic upgrade heads)")
    assert app_db.rows("SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace") == []
    assert app_db.value("SELECT to_regnamespace('stepsync')") is None

    # The recipe: the application's revisions first, then heads.
    app.alembic("upgrade", "030_add_tags")
    app.alembic("upgrade", "heads")
    assert app.versions() == AT_HEADS
    assert_installed(app)


@pytest.mark.parametrize("driver", DRIVERS)
def test_the_preflight_refuses_in_one_line(app_db, tmp_path, driver):
    app = App(app_db, tmp_path, driver)
    app.alembic("upgrade", "030_add_tags")
    with app.connect() as conn:  # a column the sync could not fill
        conn.execute("ALTER TABLE step_library ADD COLUMN tenant_code varchar(20) NOT NULL,"
                     " ADD COLUMN region varchar(20) NOT NULL")
        before = schema_snapshot(conn)
    message = one_line_failure(app.alembic("upgrade", "heads", ok=False))
    # Every problem, as `stepsync install` lists them, on the one line.
    problem = ("public.step_library.{0}: column is NOT NULL without a default, and the sync does not fill it:"
               " ALTER TABLE public.step_library ALTER COLUMN {0} SET DEFAULT ... (or DROP NOT NULL)")
    assert message == ("stepsync cannot be installed into this database: "
                       + "; ".join(sorted((problem.format("tenant_code"), problem.format("region")),
                                          key=message.index))
                       + " (Fix each problem listed (stepsync install lists them too), then run again)")
    assert app.versions() == {"030_add_tags"}
    assert_not_installed(app)
    with app.connect() as conn:
        assert schema_snapshot(conn) == before


def test_removing_stepsync_refuses_while_the_application_depends_on_it(app_db, tmp_path):
    """A view of the application's over stepsync's, made without depends_on: the downgrade refuses in one line."""
    app = App(app_db, tmp_path, "psycopg")
    app.alembic("upgrade", "030_add_tags")
    app.alembic("upgrade", "stepsync@head")
    with app.connect() as conn:
        conn.execute("CREATE VIEW public.ad_hoc_steps AS SELECT id, title FROM public.step_library_entries")
        before = schema_snapshot(conn)
    message = one_line_failure(app.alembic("downgrade", "stepsync@base", ok=False))
    assert message == ("stepsync cannot be uninstalled: the application's objects depend on it:"
                       " rule _RETURN on view public.ad_hoc_steps"
                       " (Drop or change them first; stepsync drops only its own objects)")
    assert app.versions() == {"030_add_tags", STEPSYNC_HEAD}
    assert_installed(app)
    with app.connect() as conn:
        assert schema_snapshot(conn) == before


@pytest.mark.parametrize("driver", DRIVERS)
def test_a_deploy_role_installs_as_the_tables_owner(app_db, tmp_path, driver):
    """Run by a role that does not own the tables (a member of the owner role), each step acts as their owner."""
    App(app_db, tmp_path, driver).alembic("upgrade", "030_add_tags")
    ids = add_rows(App(app_db, tmp_path, driver))
    app = App(app_db, tmp_path, driver, role="deployer")
    app.alembic("upgrade", "heads")
    assert app.versions() == AT_HEADS
    assert_installed(app)  # functions owned by app_owner, not deployer
    assert app.db.value("SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'stepsync'") == APP_OWNER
    assert app.db.value("SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = 'public.most_used_steps'::regclass"
                        ) == "deployer"  # the application's own revision ran as the role that connected
    assert synced(app) == {"Flow published": {"Open valve", "Close valve"}}
    with app.connect() as conn:
        conn.execute("UPDATE trees SET status = 'published' WHERE id = %s", (ids["draft"],))
    assert synced(app)["Flow draft"] == {"Check pressure"}
    app.alembic("downgrade", "stepsync@base")
    assert_not_installed(app)


def test_an_unsupported_driver_refuses_in_one_line(app_db, tmp_path):
    pytest.importorskip("pg8000")
    App(app_db, tmp_path, "psycopg").alembic("upgrade", "030_add_tags")
    app = App(app_db, tmp_path, "pg8000")
    message = one_line_failure(app.alembic("upgrade", "heads", ok=False))
    assert message == ("stepsync's migrations run on psycopg (3), psycopg2 or asyncpg, not 'pg8000': use a"
                       " postgresql+psycopg://, postgresql+psycopg2:// or postgresql+asyncpg:// URL")
    assert app.versions() == {"030_add_tags"}
    assert_not_installed(app)


# --- offline: alembic upgrade --sql, applied with psql -----------------------------------------------------

def psql(app: App, script: str) -> subprocess.CompletedProcess:
    path = app.cwd / f"script-{uuid.uuid4().hex[:8]}.sql"
    path.write_text(script, encoding="utf-8")
    return subprocess.run([str(find_bin_dir() / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", app.owner_url,
                           "-f", str(path)], capture_output=True, text=True, timeout=300, check=False)


def test_offline_script_installs_stepsync_with_psql(app_db, server, tmp_path):
    """`alembic upgrade 030_add_tags:heads --sql` on a database at 030_add_tags gives what the online upgrade gives."""
    app = App(app_db, tmp_path, "psycopg")
    app.alembic("upgrade", "030_add_tags")
    ids = add_rows(app)
    script = app.alembic("upgrade", "030_add_tags:heads", "--sql").stdout
    assert "\\gexec" in script and "CREATE INDEX CONCURRENTLY" in script
    assert not re.search(r"(CREATE TABLE|INSERT INTO|UPDATE|DELETE FROM) (public\.)?stepsync_version", script)
    applied = psql(app, script)
    assert applied.returncode == 0, applied.stderr
    assert f"stepsync backfill skipped flow {ids['broken']}" in applied.stderr
    assert app.versions() == AT_HEADS
    assert_installed(app)
    assert synced(app) == {"Flow published": {"Open valve", "Close valve"}}
    with app.connect() as conn:
        conn.execute("UPDATE trees SET status = 'published' WHERE id = %s", (ids["draft"],))
    assert synced(app)["Flow draft"] == {"Check pressure"}
    with app.connect() as conn:
        offline = schema_snapshot(conn)

    # The same application database upgraded online has the same catalog.
    from conftest import Db

    name = server.new_name("online")
    server.create_database(name)
    other = Db(server, name)
    try:
        with server.admin() as conn:
            conn.execute(f'ALTER DATABASE "{name}" OWNER TO {APP_OWNER}')
        (tmp_path / "online").mkdir()
        online_app = App(other, tmp_path / "online", "psycopg")
        online_app.alembic("upgrade", "030_add_tags")
        add_rows(online_app)
        online_app.alembic("upgrade", "heads")
        with online_app.connect() as conn:
            assert schema_snapshot(conn) == offline
    finally:
        other.close()
        server.drop_database(name)


def test_offline_script_from_an_empty_database(app_db, tmp_path):
    """The whole history as one script stops at stepsync_0001 (stepsync's branch comes first); the application's
    revisions as a first script, then the rest, install everything."""
    app = App(app_db, tmp_path, "psycopg")
    whole = app.alembic("upgrade", "heads", "--sql").stdout
    order = re.findall(r"^-- Running upgrade .*-> (\S+)$", whole, re.MULTILINE)
    assert order[0] == "stepsync_0001" and order[-1] == APP_HEAD
    applied = psql(app, whole)
    assert applied.returncode != 0
    assert ("ERROR:  stepsync: the application's tables accounts, users, trees and step_library do not exist yet"
            in applied.stderr)
    assert "HINT:  Upgrade the application's revisions that create them first" in applied.stderr
    assert app_db.rows("SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace") == []

    first = app.alembic("upgrade", "030_add_tags", "--sql").stdout
    rest = app.alembic("upgrade", "030_add_tags:heads", "--sql").stdout
    applied = psql(app, first + rest)
    assert applied.returncode == 0, applied.stderr
    assert app.versions() == AT_HEADS
    assert_installed(app)
