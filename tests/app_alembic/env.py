"""The sample application's alembic environment, written as an application's env.py is.

stepsync's revisions come in through the configuration's version_locations
(the application's own versions folder plus stepsync's packaged one: the
alembic.ini that tests/test_app_alembic.py writes, as the README's "Carry
stepsync in your own alembic" has it) and are recorded in this application's
alembic_version like its own. The one stepsync line here is include_object,
so that autogenerate never proposes dropping what stepsync added.

The URL is sqlalchemy.url. A synchronous driver (postgresql+psycopg://,
postgresql+psycopg2://) runs the usual engine_from_config pattern; an async
one (postgresql+asyncpg://) the async template's async_engine_from_config +
connection.run_sync(do_run_migrations).
"""

from __future__ import annotations

import asyncio
from logging.config import fileConfig

from alembic import context
from sqlalchemy import engine_from_config, pool
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import async_engine_from_config

from stepsync.sqlalchemy import include_object

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name)

target_metadata = None  # the application's MetaData, for autogenerate


def run_migrations_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, include_object=include_object)
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations() -> None:
    connectable = async_engine_from_config(config.get_section(config.config_ini_section, {}),
                                           prefix="sqlalchemy.", poolclass=pool.NullPool)
    async with connectable.connect() as connection:
        await connection.run_sync(do_run_migrations)
    await connectable.dispose()


def run_migrations_online() -> None:
    if make_url(config.get_main_option("sqlalchemy.url") or "").get_dialect().is_async:
        asyncio.run(run_async_migrations())
        return
    connectable = engine_from_config(config.get_section(config.config_ini_section, {}),
                                     prefix="sqlalchemy.", poolclass=pool.NullPool)
    with connectable.connect() as connection:
        do_run_migrations(connection)
    connectable.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
