"""The `stepsync` command line: the click group, its commands and their options; nothing else.

Each command's code is in stepsync/commands/<command>.py (its `run`); this module
declares the commands (names, arguments, options, help text) and calls into them.
With no --database-url and no STEPSYNC_DATABASE_URL a command works on an
embedded PostgreSQL whose data lives in ./.stepsync/ (created on first use).
Errors are one line on stderr, exit status 1; never a traceback (`main`,
stepsync.output.exit_for).
"""

from __future__ import annotations

import logging
import os
import sys
import uuid
from pathlib import Path

import click

from stepsync import database


class Context:
    """Holds the chosen URL; resolves it (and starts the embedded server) lazily."""

    def __init__(self, explicit_url: str | None) -> None:
        self.explicit_url = explicit_url
        self._url: str | None = None

    @property
    def url(self) -> str:
        if self._url is None:
            self._url = database.resolve_url(self.explicit_url)
        return self._url


pass_ctx = click.make_pass_decorator(Context)


@click.group()
@click.option(
    "--database-url",
    metavar="URL",
    help="postgresql:// URL of the database"
         " (default: $STEPSYNC_DATABASE_URL, else the embedded server in ./.stepsync/).",
)
@click.version_option(package_name="stepsync")
@click.pass_context
def cli(ctx: click.Context, database_url: str | None) -> None:
    """stepsync keeps a reusable step library in sync with published flows, inside PostgreSQL."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    ctx.obj = Context(database_url)


@cli.command()
@pass_ctx
def migrate(ctx: Context) -> None:
    """The standalone path: create the four tables when the database has none, then install (demo, tests)."""
    from stepsync.commands import migrate as command

    command.run(ctx.url)


@cli.command()
@click.option("--shard-count", type=click.IntRange(1, 64000), default=None,
              help="Shards of trees and step_library (default: the coordinator's citus.shard_count). Search asks"
                   " every shard of a worker: a library you search wants few, such as 2 a worker (docs/scaling.md).")
@pass_ctx
def distribute(ctx: Context, shard_count: int | None) -> None:
    """On a Citus coordinator: lay the tables out as docs/contract.md §11.1 (reference and distributed
    tables, keys with tree_key), keeping every row, then install stepsync."""
    from stepsync.commands import distribute as command

    command.run(ctx.url, shard_count)


ROW_SECURITY_HELP = ("Enforce the library's visibility rule as row-level security on step_library for every"
                     " role but the owner; VIEWER is the SQL expression giving the current user's uuid, such as"
                     " auth.uid() (Supabase) or"
                     " (nullif(current_setting('request.jwt.claims', true), '')::json->>'sub')::uuid (PostgREST).")


@cli.command()
@click.option("--no-backfill", is_flag=True,
              help="Do not sync the flows listed now (on a large database: then `stepsync resync --all`, or"
                   " `stepsync install` again).")
@click.option("--row-security", "viewer", metavar="VIEWER", default=None, help=ROW_SECURITY_HELP)
@click.option("--no-row-security", is_flag=True,
              help="Stop enforcing it (without either option, an install keeps what is set).")
@pass_ctx
def install(ctx: Context, no_backfill: bool, viewer: str | None, no_row_security: bool) -> None:
    """Install stepsync into the application's existing tables, or upgrade it
    (checks first, changes nothing on a problem); finishes a backfill an earlier install left unfinished.

    Ctrl-C in the backfill stops after the batch in progress commits (twice: rolls it back at once);
    `stepsync install` again goes on from there.
    """
    from stepsync.commands import install as command

    if viewer is not None and no_row_security:
        raise click.UsageError("--row-security and --no-row-security exclude each other")
    command.run(ctx.url, no_backfill, viewer=viewer, no_row_security=no_row_security)


@cli.command()
@click.option("--drop-columns", is_flag=True,
              help="Also delete the synced rows and drop every column, key and index stepsync added.")
@pass_ctx
def uninstall(ctx: Context, drop_columns: bool) -> None:
    """Remove stepsync (schema, triggers, view, search index, version table); the application's tables and rows stay."""
    from stepsync.commands import uninstall as command

    command.run(ctx.url, drop_columns)


@cli.command("sql")
@click.option("--no-backfill", is_flag=True, help="Leave the backfill out of the script.")
@click.option("--row-security", "viewer", metavar="VIEWER", default=None, help=ROW_SECURITY_HELP)
def sql_command(no_backfill: bool, viewer: str | None) -> None:
    """Print the install as a psql script (for a database without stepsync), without connecting anywhere."""
    from stepsync.commands import sql as command

    command.run(no_backfill, viewer=viewer)


@cli.command()
@click.argument("psql_args", nargs=-1, type=click.UNPROCESSED)
@pass_ctx
def psql(ctx: Context, psql_args: tuple[str, ...]) -> None:
    """Open psql on the database (extra arguments are passed to psql)."""
    from stepsync.commands import psql as command

    sys.exit(command.run(ctx.url, psql_args))


@cli.command()
@pass_ctx
def demo(ctx: Context) -> None:
    """Migrate, load the example flows, publish, re-publish with an edit, deactivate one."""
    from stepsync.commands import demo as command

    command.run(ctx.url)


@cli.command()
@click.argument("tree_id", type=click.UUID)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of a table.")
@pass_ctx
def preview(ctx: Context, tree_id: uuid.UUID, as_json: bool) -> None:
    """Show the entries a publish of TREE_ID would write now (nothing is written)."""
    from stepsync.commands import preview as command

    command.run(ctx.url, tree_id, as_json)


@cli.command()
@click.argument("tree_id", required=False, type=click.UUID)
@click.option("--all", "all_flows", is_flag=True,
              help="Resync every flow that can need it (listed, or retired with active entries).")
@click.option("--batch", default=100, show_default=True, type=click.IntRange(min=1), help="Flows per transaction.")
@click.option("--after", type=click.UUID, default=None,
              help="With --all: start after this flow id (resume an interrupted run).")
@click.option("--json", "as_json", is_flag=True, help="Print what changed as one JSON document.")
@pass_ctx
def resync(ctx: Context, tree_id: uuid.UUID | None, all_flows: bool, batch: int, after: uuid.UUID | None,
           as_json: bool) -> None:
    """Bring the library of TREE_ID (or --all flows) to what the flows say, in batches, with a progress bar.

    Each batch is its own transaction. Ctrl-C stops after the batch in progress commits (twice: rolls it
    back at once); running the command again is safe and finishes the work.
    """
    if bool(tree_id) == all_flows:
        raise click.UsageError("give either a TREE_ID or --all")
    if after is not None and not all_flows:
        raise click.UsageError("--after goes with --all")
    from stepsync.commands import resync as command

    sys.exit(command.run(ctx.url, tree_id, all_flows, batch, after, as_json))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of tables.")
@pass_ctx
def check(ctx: Context, as_json: bool) -> None:
    """List every flow that would fail the publish checks, and any library inconsistency. Changes nothing."""
    from stepsync.commands import check as command

    sys.exit(command.run(ctx.url, as_json))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of tables.")
@pass_ctx
def status(ctx: Context, as_json: bool) -> None:
    """Show the installed revision, the flows, the library, the last sync and who owns the tables."""
    from stepsync.commands import status as command

    command.run(ctx.url, as_json)


@cli.command()
@click.option("--exact", is_flag=True,
              help="Compare definitions by applying the packaged SQL in a rolled-back transaction"
                   " (needs the owner's rights; takes brief locks).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of lines.")
@pass_ctx
def doctor(ctx: Context, exact: bool, as_json: bool) -> None:
    """Check the installation: triggers, definitions, owners, revision, replication, row-level security, library, flows.

    One line per finding, naming the object and the fix; exit status 1 when there is any.
    """
    from stepsync.commands import doctor as command

    sys.exit(command.run(ctx.url, exact, as_json))


@cli.command()
@click.argument("query")
@click.option("--as", "user_id", required=True, type=click.UUID, metavar="USER_ID",
              help="Search as this user (what they may see: public, their team's, their own).")
@click.option("--type", "step_type", type=click.Choice(["action", "solution"]), default=None,
              help="Only this step type.")
@click.option("--section", default=None, help="Only steps under this section (group label), exactly.")
@click.option("--flow", type=click.UUID, default=None, help="Only steps synced from this flow.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1), help="At most this many results.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of a table.")
@pass_ctx
def search(ctx: Context, query: str, user_id: uuid.UUID, step_type: str | None, section: str | None,
           flow: uuid.UUID | None, limit: int, as_json: bool) -> None:
    """Search the library as a user sees it (stepsync.search_steps), best match first."""
    from stepsync.commands import search as command

    command.run(ctx.url, query, user_id, step_type, section, flow, limit, as_json)


@cli.command()
@click.option("--enable-always", "action", flag_value="always",
              help="Subscriber that receives only trees: the sync triggers fire for replicated writes (ENABLE ALWAYS).")
@click.option("--reset", "action", flag_value="reset",
              help="Back to the default: the triggers fire for local writes only"
                   " (a primary, or a subscriber that receives step_library too).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of a table.")
@pass_ctx
def replica(ctx: Context, action: str | None, as_json: bool) -> None:
    """Show or switch how stepsync's triggers fire under logical replication (see docs/replication.md)."""
    from stepsync.commands import replica as command

    sys.exit(command.run(ctx.url, action, as_json))


@cli.command()
@click.option("--rounds", default=5, show_default=True, help="Rounds per scenario (medians are reported).")
@click.option("--quick", is_flag=True, help="Smaller sizes, for a smoke run.")
@click.option("--only", "sections", multiple=True, type=click.Choice(["writes", "search", "install", "citus"]),
              help="Run only these parts (repeat the option); default: writes, search and install. citus: the"
                   " coordinator in $STEPSYNC_CITUS_DSN against one node of the same PostgreSQL.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the report as Markdown here (for example docs/benchmarks.md).")
@click.pass_context
def bench(click_ctx: click.Context, rounds: int, quick: bool, sections: tuple[str, ...],
          output: Path | None) -> None:
    """Measure the sync against the bare UPDATE and the set-based limits, search, and a live install."""
    from stepsync.commands import bench as command

    ctx: Context = click_ctx.obj
    command.run(ctx.explicit_url, rounds, quick, sections, output)


def main() -> None:
    """Console-script entry point: run the CLI; every error is one line on stderr, never a traceback.

    Exit status (docs/contract.md §7): 0 done, 1 an error (or findings, for check and doctor), 2 a usage error,
    130 interrupted. STEPSYNC_DEBUG=1 shows the traceback of an unexpected error.
    """
    from stepsync.output import exit_for

    try:
        cli(standalone_mode=False)
    except SystemExit:
        raise
    except BaseException as exc:  # the last line of defence against tracebacks
        if os.environ.get("STEPSYNC_DEBUG") and not isinstance(exc, (click.ClickException, click.exceptions.Abort)):
            raise
        sys.exit(exit_for(exc))


if __name__ == "__main__":
    main()
