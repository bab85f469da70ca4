"""stepsync's own alembic environment (`alembic upgrade head` from the repository root, `stepsync`).

The database is STEPSYNC_DATABASE_URL (postgresql:// or postgresql+psycopg://),
or the URL a caller put in config.attributes["database_url"] (the stepsync
command line and the tests do).

stepsync keeps its history in its own version table, public.stepsync_version,
and never reads or writes the application's alembic_version. A database that
an earlier stepsync migrated with the old revision ids (0001 ... 0005 in
public.alembic_version) is moved to the new table first (stepsync.history).

Options, as `-x name=value` or config.attributes["stepsync_<name>"]:
  backfill=false      install without syncing the flows listed now (then
                      `stepsync resync --all`);
  keep_columns=true   a downgrade past the install keeps the sync columns,
                      their keys and the synced rows (`stepsync uninstall`).

Each revision runs in its own transaction; steps that must not hold locks for
long run outside it (see stepsync.frozen).

An upgrade (even one with nothing to do, at head already) then finishes a
backfill that an earlier install left unfinished (a row in
stepsync.backfill_progress: the install was cut off), batch after batch from
its cursor, unless backfill=false (`stepsync install` passes that and does the
same with a progress bar). An application's own alembic environment does not
do this: there `stepsync resync --all` (or `stepsync install`) finishes it. PostgreSQL notices and warnings
(the backfill's "flow skipped" warnings) are forwarded to the
`stepsync.migrate` logger.
"""

from __future__ import annotations

import logging
import os
from logging.config import fileConfig
from typing import Any

from alembic import context
from sqlalchemy import create_engine, event, pool

config = context.config
if config.config_file_name and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name)

log = logging.getLogger("stepsync.migrate")

# The revisions and this file import the stepsync package: install it (`pip install -e .` in a
# checkout, or the wheel); it finds its SQL through importlib.resources.
from stepsync import history

VERSION_TABLE = history.VERSION_TABLE


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


def _options() -> dict[str, Any]:
    """stepsync options for the revisions, from -x arguments or config attributes."""
    xargs = context.get_x_argument(as_dictionary=True)
    options = {}
    for name in ("backfill", "keep_columns"):
        value = config.attributes.get(f"stepsync_{name}", xargs.get(name))
        if value is not None:
            options[f"stepsync_{name}"] = str(value).lower() in ("1", "true", "yes", "on")
    return options


_LEVELS = {"WARNING": logging.WARNING, "NOTICE": logging.INFO, "INFO": logging.INFO}


def _forward_notice(diag: Any) -> None:
    level = _LEVELS.get(diag.severity_nonlocalized or diag.severity or "", logging.INFO)
    message = diag.message_primary or ""
    if diag.message_detail:
        message += f" ({diag.message_detail})"
    log.log(level, "%s", message)


def run_migrations_offline() -> None:
    url = config.attributes.get("database_url") or os.environ.get("STEPSYNC_DATABASE_URL")
    kwargs: dict[str, Any] = {"url": _database_url()} if url else {"dialect_name": "postgresql"}
    context.configure(literal_binds=True, transaction_per_migration=True, version_table=VERSION_TABLE,
                      **kwargs, **_options())
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_engine(_database_url(), poolclass=pool.NullPool)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.add_notice_handler(_forward_notice)

    with engine.connect() as connection:
        history.adopt_legacy_version(connection)
        context.configure(connection=connection, transaction_per_migration=True,
                          version_table=VERSION_TABLE, **_options())
        with context.begin_transaction():
            context.run_migrations()
        upgrading = getattr(context.get_context().opts.get("fn"), "__name__", None) == "upgrade"
    engine.dispose()
    if upgrading and _options().get("stepsync_backfill", True):
        _resume_backfill()


def _resume_backfill() -> None:
    """Finish a backfill an earlier install left unfinished (stepsync.backfill_progress), if there is one."""
    from stepsync import database
    from stepsync import install as installer

    url = _database_url()
    with database.connect(url) as conn:
        pending = installer.unfinished_backfill(conn)
    if pending is None:
        return
    log.info("stepsync: resuming the backfill an earlier install left unfinished (after %d flows)",
             pending.flows_done)
    flows, written, skipped = installer.backfill(url, warn=lambda line: log.warning("%s", line))
    log.info("stepsync: backfill finished: %d flows in step, %d library rows written or retired, %d skipped",
             flows - skipped, written, skipped)


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
