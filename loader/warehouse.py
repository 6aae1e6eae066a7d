"""Postgres, as the loader sees it: connect with clear errors, prepare, count."""

from __future__ import annotations

import hashlib
import io
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources

import psycopg2
from dlt.destinations.impl.postgres.configuration import PostgresCredentials
from psycopg2 import sql
from psycopg2.extensions import connection as Connection

from loader.errors import ConfigurationError, PostgresUnavailable
from loader.settings import describe_postgres

CONNECT_TIMEOUT_SECONDS = 10


@contextmanager
def connect(credentials: PostgresCredentials, database: str | None = None) -> Iterator[Connection]:
    """A connection in autocommit mode; refusals become one line naming the fix."""
    try:
        conn = psycopg2.connect(
            host=credentials.host,
            port=credentials.port,
            user=credentials.username,
            password=str(credentials.password or ""),
            dbname=database or credentials.database,
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            application_name="logins",
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
def advisory_lock(credentials: PostgresCredentials, name: str, waiting: str) -> Iterator[int]:
    """Holds the advisory lock keyed hashtext(`name`), session-level on a connection of its
    own, for the `with` block; prints `waiting` (one line) if another session holds it first.
    Closing the connection releases it, even if this process dies. Yields the session's pid."""
    with connect(credentials) as conn, conn.cursor() as cursor:
        try:
            cursor.execute("select pg_try_advisory_lock(hashtext(%s))", (name,))
            row = cursor.fetchone()
            if not (row and row[0]):
                print(waiting, file=sys.stderr, flush=True)
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


def pgcrypto_schema(conn: Connection) -> str | None:
    with conn.cursor() as cursor:
        cursor.execute(
            "select n.nspname from pg_extension e join pg_namespace n on n.oid = e.extnamespace"
            " where e.extname = 'pgcrypto'"
        )
        row = cursor.fetchone()
    return row[0] if row else None


def _pgcrypto(conn: Connection) -> str:
    schema = pgcrypto_schema(conn)
    if schema is None:
        raise ConfigurationError("pgcrypto is not installed: run `logins db init`")
    return sql.Identifier(schema).as_string(conn)


def may_manage_pii(conn: Connection) -> bool:
    """True unless the pii schema exists and belongs to another role (an admin's setup)."""
    with conn.cursor() as cursor:
        cursor.execute(
            "select pg_has_role(current_user, nspowner, 'MEMBER') from pg_namespace"
            " where nspname = 'pii'"
        )
        row = cursor.fetchone()
    return row is None or bool(row[0])


def install_masking(conn: Connection) -> None:
    """pgcrypto, the pii schema, the key table and pii.mask(); idempotent."""
    setup = resources.files("loader").joinpath("sql/pii_setup.sql").read_text()
    with conn.cursor() as cursor:
        cursor.execute("create extension if not exists pgcrypto")
        cursor.execute(setup.replace("@pgcrypto@", _pgcrypto(conn)))


def install_hmac_key(conn: Connection, key: bytes | None) -> str:
    """Install `key` as the current HMAC key unless one is already there.

    Returns what happened: "installed", "present" or "missing" (no key anywhere). A different
    key than the one installed is refused: every mask would change and duplicates across the
    change would no longer match.
    """
    with conn.cursor() as cursor:
        cursor.execute("select key_version from pii.hmac_keys where is_current")
        current = cursor.fetchone()
        if current is None:
            if key is None:
                return "missing"
            # COPY carries the key as data, so it never appears in a statement's text
            # (statement logs, pg_stat_activity).
            cursor.copy_expert(
                "copy pii.hmac_keys (key_version, key, is_current) from stdin",
                io.StringIO(f"1\t\\\\x{key.hex()}\tt\n"),
            )
            return "installed"
        if key is not None:
            # compare digests, so the key is not sent again; after `logins pii rotate` the
            # configured key is an older version, still valid for comparing
            cursor.execute(
                f"select encode({_pgcrypto(conn)}.digest(key, 'sha256'), 'hex') from pii.hmac_keys"
            )
            installed = {row[0] for row in cursor.fetchall()}
            if hashlib.sha256(key).hexdigest() not in installed:
                raise ConfigurationError(
                    "the configured HMAC key (PII__HMAC_KEY or the key file) differs from the one "
                    "installed in the database: masks would change. Configure the installed key, "
                    "or unset the configured one to keep using it"
                )
        return "present"


# Postgres 15 has no pg_input_is_valid: a cast that fails aborts the statement, so JSON
# validity is a function with an exception block. Such a block is a subtransaction, which
# Postgres refuses in a parallel query: computed here, as each row is landed (a few us a row
# of Postgres time, during COPY), staging reads a plain boolean and runs in parallel.
BODY_IS_JSON = "body_is_json"
_IS_JSON_FUNCTION = """
create or replace function {schema}.is_json(value text)
returns boolean
language plpgsql immutable strict parallel unsafe
as $fn$
begin
    return value::jsonb is not null;
exception when others then
    return false;
end
$fn$
"""


def prepare_raw_table(conn: Connection, dataset: str, table: str) -> bool:
    """What staging relies on beyond dlt's columns: indexes for its dedupe and the marts'
    incremental filter, and `body_is_json` (stored, computed by Postgres from the body, so it
    follows every change of it, erasure included). Idempotent; concurrent loaders wait for
    each other. Adding the column to a table that already holds rows rewrites it, once.
    Returns whether it added the column."""
    names = {"schema": sql.Identifier(dataset), "table": sql.Identifier(table)}
    with conn.cursor() as cursor:
        cursor.execute("begin")
        cursor.execute("select pg_advisory_xact_lock(hashtext(%s))", (f"{dataset}.{table}",))
        for column in ("message_id", "_dlt_load_id"):
            cursor.execute(
                sql.SQL("create index if not exists {} on {schema}.{table} ({})").format(
                    sql.Identifier(f"{table}__{column}_idx"), sql.Identifier(column), **names
                )
            )
        added = not has_json_flag(conn, dataset, table)
        if added:
            cursor.execute(sql.SQL(_IS_JSON_FUNCTION).format(schema=names["schema"]))
            cursor.execute(
                sql.SQL(
                    "alter table {schema}.{table} add column {column} boolean"
                    " generated always as ({schema}.is_json(body)) stored"
                ).format(column=sql.Identifier(BODY_IS_JSON), **names)
            )
        cursor.execute("commit")
    return added


def has_json_flag(conn: Connection, dataset: str, table: str) -> bool:
    """Whether the raw table has `body_is_json` (a loader from before it did not add it)."""
    with conn.cursor() as cursor:
        cursor.execute(
            "select 1 from information_schema.columns"
            " where table_schema = %s and table_name = %s and column_name = %s",
            (dataset, table, BODY_IS_JSON),
        )
        return cursor.fetchone() is not None


def analyze(conn: Connection, schema: str, tables: list[str]) -> None:
    """Fresh planner statistics. dbt's incremental plans estimate new rows through
    `_dlt_loads`: never analyzed, it reads as two rows, and staging's dedupe then hashed all of
    raw (0.9 s at 1M) instead of probing the message-id index for the new rows (0.1 s)."""
    with conn.cursor() as cursor:
        for table in tables:
            cursor.execute(
                sql.SQL("analyze {}.{}").format(sql.Identifier(schema), sql.Identifier(table))
            )


def table_exists(conn: Connection, schema: str, table: str) -> bool:
    with conn.cursor() as cursor:
        cursor.execute("select to_regclass(%s) is not null", (f'"{schema}"."{table}"',))
        row = cursor.fetchone()
    return bool(row and row[0])


def count_rows(conn: Connection, schema: str, table: str) -> int | None:
    """Row count, or None when the table does not exist yet."""
    if not table_exists(conn, schema, table):
        return None
    with conn.cursor() as cursor:
        cursor.execute(
            sql.SQL("select count(*) from {}.{}").format(
                sql.Identifier(schema), sql.Identifier(table)
            )
        )
        row = cursor.fetchone()
    return int(row[0]) if row else 0
