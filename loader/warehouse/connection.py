"""Connections to Postgres: a pinned search_path, one-line errors that name the fix, and
advisory locks."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import psycopg2
import psycopg2.errors
from psycopg2.extensions import connection as Connection

from loader import logs
from loader.errors import PostgresUnavailable

if TYPE_CHECKING:
    from dlt.destinations.impl.postgres.configuration import PostgresCredentials

CONNECT_TIMEOUT_SECONDS = 10


# Every connection of the CLI resolves unqualified names in pg_catalog only (pg_temp last, and
# never for functions or operators): no other role can shadow a built-in function or operator
# there (the transformer may create in the marts schema, often `public`). Names are qualified.
PINNED_SEARCH_PATH = "-c search_path=pg_catalog,pg_temp"


@contextmanager
def connect(credentials: PostgresCredentials, database: str | None = None) -> Iterator[Connection]:
    """A connection in autocommit mode, with a pinned search_path; refusals become one line
    naming the fix."""
    try:
        conn = psycopg2.connect(
            host=credentials.host,
            port=credentials.port,
            user=credentials.username,
            password=str(credentials.password or ""),
            dbname=database or credentials.database,
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            application_name="logins",
            # libpq's `options` replaces PGOPTIONS: keep the user's, the pinned path last
            options=f"{os.environ.get('PGOPTIONS', '')} {PINNED_SEARCH_PATH}".strip(),
        )
    except psycopg2.OperationalError as error:
        raise PostgresUnavailable(
            f"cannot connect to Postgres {describe_postgres(credentials)}: "
            f"{_first_line(error)}; {_connection_hint(str(error))}"
        ) from error
    conn.autocommit = True
    try:
        yield conn
    finally:
        conn.close()


@contextmanager
def opened(source: PostgresCredentials | Connection) -> Iterator[Connection]:
    """`source` itself when it is an open connection (a console session's, which stays open
    after the block), else a new connection to the credentials, closed after it."""
    if isinstance(source, Connection):
        yield source
        return
    with connect(source) as conn:
        yield conn


@contextmanager
def advisory_lock(credentials: PostgresCredentials, name: str, waiting: str) -> Iterator[int]:
    """Holds the advisory lock keyed hashtext(`name`), session-level on a connection of its
    own, for the `with` block; prints `waiting` (one line) if another session holds it first.
    Closing the connection releases it, even if this process dies. Yields the session's pid."""
    with connect(credentials) as conn, conn.cursor() as cursor:
        try:
            cursor.execute("select pg_try_advisory_lock(hashtext(%s))", (name,))
            row = cursor.fetchone()
            if not (row and row[0]):
                logs.say("lock.waiting", waiting, lock=name)
                cursor.execute("select pg_advisory_lock(hashtext(%s))", (name,))
        except psycopg2.Error as error:
            raise PostgresUnavailable(
                f"could not take the lock '{name}' in Postgres {describe_postgres(credentials)}: "
                f"{_first_line(error)}"
            ) from error
        yield conn.get_backend_pid()


def check(credentials: PostgresCredentials) -> None:
    with connect(credentials) as conn, conn.cursor() as cursor:
        cursor.execute("select 1")


def _connection_hint(error: str) -> str:
    if "password authentication failed" in error or "no password supplied" in error:
        return "check PGUSER / PGPASSWORD (or DESTINATION__POSTGRES__CREDENTIALS)"
    if "does not exist" in error:
        return "create the database or set PGDATABASE"
    return "start Postgres (`logins up` starts a local one) or set PGHOST / PGPORT"


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def describe_postgres(credentials: PostgresCredentials) -> str:
    """host:port/database as user, never the password."""
    return f"{credentials.username}@{credentials.host}:{credentials.port}/{credentials.database}"
