"""The application's tables, on the standalone path only (docs/contract.md §1, §9).

Base of stepsync's branch (label `stepsync`). On an empty database it creates
accounts, users, trees and step_library as the application had them before
the sync (db/migrations/sql/stepsync_0001/application_tables.sql) and notes
in the comment of public.stepsync_version that stepsync created them. On a
database that has all four (an application adopting stepsync) it does
nothing. Some but not all of them is an error that names them.

Downgrading drops the four tables only when this revision created them (the
comment says so): never an application's tables.

When an application carries stepsync in its own alembic (its own version
table), this revision never creates tables: the application's revisions do.

Revision ID: stepsync_0001
Revises:
Create Date: 2026-12-01
"""

from alembic import op

from stepsync import frozen, history

revision = "stepsync_0001"
down_revision = None
branch_labels = ("stepsync",)
depends_on = None

_PRESENT = ("ARRAY(SELECT t FROM pg_catalog.unnest(ARRAY['accounts', 'users', 'trees', 'step_library']) AS t"
            " WHERE pg_catalog.to_regclass('public.' || t) IS NOT NULL)")


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# The install revision's preflight, run here first when the tables exist (an adopted database), so that
# a database the install would refuse is refused before anything, this revision's row included, is
# written. (It reads the frozen copy of the newest install revision: landed files never change.)
PREFLIGHT = ("stepsync_0002", "preflight.sql")


def upgrade() -> None:
    frozen.execute(op, frozen.refuse_if_any(
        f"SELECT p.* FROM ({frozen.read(*PREFLIGHT).rstrip().rstrip(';')}) AS p"
        f" WHERE pg_catalog.cardinality({_PRESENT}) = 4",
        "stepsync cannot be installed into this database",
        "Fix each problem listed (stepsync install lists them too), then run again."))
    standalone = op.get_context().version_table == history.VERSION_TABLE
    if standalone:
        create = (f"EXECUTE $tables$\n{frozen.read(revision, 'application_tables.sql')}$tables$;\n"
                  f"        COMMENT ON TABLE public.{history.VERSION_TABLE} IS {_quote(history.STANDALONE_COMMENT)};")
        adopted = (f"COMMENT ON TABLE public.{history.VERSION_TABLE} IS {_quote(history.ADOPTED_COMMENT)};")
    else:
        create = ("RAISE EXCEPTION 'stepsync: the application''s tables accounts, users, trees and step_library"
                  " do not exist yet'\n            USING ERRCODE = 'object_not_in_prerequisite_state',"
                  " HINT = 'Upgrade the application''s revisions that create them first (alembic upgrade"
                  " <revision>), then alembic upgrade heads.';")
        adopted = "NULL;"
    frozen.execute(op, f"""
DO $stepsync$
DECLARE
    v_present text[] := {_PRESENT};
BEGIN
    IF pg_catalog.cardinality(v_present) = 4 THEN
        {adopted}
    ELSIF pg_catalog.cardinality(v_present) > 0 THEN
        RAISE EXCEPTION 'stepsync: the database has some of its tables but not all: %',
            pg_catalog.array_to_string(v_present, ', ')
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Create the others (docs/contract.md §1), then run stepsync install.';
    ELSE
        {create}
    END IF;
END;
$stepsync$;
""")


def downgrade() -> None:
    frozen.execute(op, f"""
DO $stepsync$
BEGIN
    IF pg_catalog.obj_description(pg_catalog.to_regclass('public.{history.VERSION_TABLE}'), 'pg_class')
       = {_quote(history.STANDALONE_COMMENT)} THEN
        DROP TABLE public.step_library, public.trees, public.users, public.accounts;
        COMMENT ON TABLE public.{history.VERSION_TABLE} IS NULL;
    END IF;
END;
$stepsync$;
""")
