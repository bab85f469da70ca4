"""Alembic environment for stepsync.

The database is STEPSYNC_DATABASE_URL (postgresql:// or postgresql+psycopg://),
or the URL a caller put in config.attributes["database_url"] (the stepsync
command line and the tests do). Each revision runs in its own transaction.
PostgreSQL notices and warnings raised by a migration (the backfill's
"flow skipped" warnings) are forwarded to the `stepsync.migrate` logger, so
they show in `alembic upgrade head`'s output.
"""

from __future__ import annotations

import logging
import os
import sys
from logging.config import fileConfig
from pathlib import Path

from alembic import context
from sqlalchemy import create_engine, event, pool

config = context.config
if config.config_file_name and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name)

log = logging.getLogger("stepsync.migrate")

# Revisions import their frozen-SQL loader from the stepsync package (tools/).
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))


def _database_url() -> str:
    url = config.attributes.get("database_url") or os.environ.get("STEPSYNC_DATABASE_URL")
    if not url:
        raise SystemExit(
            "STEPSYNC_DATABASE_URL is not set: export it as postgresql://user:password@host:port/dbname"
        )
    scheme, sep, rest = url.strip().partition("://")
    if not sep or scheme not in ("postgresql", "postgres", "postgresql+psycopg"):
        raise SystemExit(f"STEPSYNC_DATABASE_URL must be a postgresql:// URL, not {scheme or url!r}")
    return f"postgresql+psycopg://{rest}"


_LEVELS = {"WARNING": logging.WARNING, "NOTICE": logging.INFO, "INFO": logging.INFO}


def _forward_notice(diag) -> None:
    level = _LEVELS.get(diag.severity_nonlocalized or diag.severity or "", logging.INFO)
    message = diag.message_primary or ""
    if diag.message_detail:
        message += f" ({diag.message_detail})"
    log.log(level, "%s", message)


def run_migrations_offline() -> None:
    context.configure(url=_database_url(), literal_binds=True, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_engine(_database_url(), poolclass=pool.NullPool)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        dbapi_connection.add_notice_handler(_forward_notice)

    with engine.connect() as connection:
        context.configure(connection=connection, transaction_per_migration=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
