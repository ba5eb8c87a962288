"""A clean PostgreSQL schema per test, on the server named by MULTICHANNEL_TEST_POSTGRES_URL.

When no server answers, a test that asks for one is skipped with a message
naming the URL and the variable; when ``CI`` is set it fails instead, so a
pipeline that lost its database cannot pass by skipping. Each test gets its own
schema (``mc_test_<hex>``), dropped afterwards, so repeated or parallel runs
never see each other's rows or anything else in the database.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import quote

import pytest
from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.exc import OperationalError

from multichannel import SQLStore

__all__ = ["DEFAULT_URL", "URL_VARIABLE", "PostgresSchema", "postgres_schema", "postgres_url"]

URL_VARIABLE = "MULTICHANNEL_TEST_POSTGRES_URL"
DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

# Whether the server answered, asked once per test session.
_reachable: dict[str, str | None] = {}


def postgres_url() -> str:
    """The server the PostgreSQL tests use: the variable's value, else the local default."""
    return os.environ.get(URL_VARIABLE) or DEFAULT_URL


def _shown(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _problem(url: str) -> str | None:
    """None if a server answers at ``url``, else why not."""
    if url not in _reachable:
        engine = create_engine(url, connect_args={"connect_timeout": 5})
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            _reachable[url] = None
        except OperationalError as err:
            first_line = str(err.orig or err).strip().splitlines()[0]
            _reachable[url] = first_line
        finally:
            engine.dispose()
    return _reachable[url]


def _unavailable(url: str, problem: str) -> None:
    message = (
        f"no PostgreSQL server answers at {_shown(url)} ({problem}); "
        f"set {URL_VARIABLE} to a server's SQLAlchemy URL to run these tests"
    )
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI is set, so this fails instead of skipping)", pytrace=False)
    pytest.skip(message)


@dataclass
class PostgresSchema:
    """One test's private schema: a URL and engines whose search_path is that schema."""

    name: str
    server_url: str
    _engines: list[Engine] = field(default_factory=list)

    @property
    def url(self) -> str:
        """A URL string that puts every connection in this schema, e.g. for a subprocess."""
        separator = "&" if "?" in self.server_url else "?"
        return f"{self.server_url}{separator}options={quote(f'-csearch_path={self.name}')}"

    def engine(self) -> Engine:
        """A new Engine whose connections use this schema; disposed when the test ends."""
        engine = create_engine(
            self.server_url,
            connect_args={"options": f"-csearch_path={self.name}", "connect_timeout": 5},
            pool_pre_ping=True,
        )
        self._engines.append(engine)
        return engine

    def store(self, *, migrate: bool = True) -> SQLStore:
        """A SQLStore on this schema."""
        return SQLStore(self.engine(), migrate=migrate)

    def tables(self) -> list[str]:
        """The names of the tables in this schema, sorted."""
        with self.engine().connect() as connection:
            rows = connection.execute(
                text("SELECT table_name FROM information_schema.tables WHERE table_schema = :s"),
                {"s": self.name},
            )
            return sorted(row.table_name for row in rows)

    def dispose(self) -> None:
        """Close every engine handed out, so that the schema can be dropped."""
        for engine in self._engines:
            engine.dispose()
        self._engines.clear()


@contextmanager
def postgres_schema() -> Iterator[PostgresSchema]:
    """A fresh schema for one test, dropped afterwards; skips or fails without a server."""
    url = postgres_url()
    problem = _problem(url)
    if problem is not None:
        _unavailable(url, problem)
    name = f"mc_test_{uuid.uuid4().hex[:16]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{name}"'))
        schema = PostgresSchema(name=name, server_url=url)
        try:
            yield schema
        finally:
            schema.dispose()
            with admin.connect() as connection:
                connection.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
    finally:
        admin.dispose()
