"""Postgres, as the loader sees it: connect with clear errors, prepare, count."""

from __future__ import annotations

import hashlib
import io
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources

import psycopg2
import psycopg2.errors
from dlt.destinations.impl.postgres.configuration import PostgresCredentials
from psycopg2 import sql
from psycopg2.extensions import connection as Connection

from loader.attached_code import refuse_attached_code, refuse_shadowing_code
from loader.errors import ConfigurationError, PostgresUnavailable
from loader.settings import describe_postgres

CONNECT_TIMEOUT_SECONDS = 10
# Every connection of the CLI resolves unqualified names in pg_catalog only (pg_temp last, and
# never for functions or operators): no other role can shadow a built-in function or operator
# there (the transformer may create in the marts schema, often `public`). Names are qualified.
PINNED_SEARCH_PATH = "-c search_path=pg_catalog,pg_temp"
# dlt's own connections resolve names through `<dataset>,public` (its Postgres client sets it).
DLT_EXTRA_SCHEMA = "public"


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


def install_masking(conn: Connection, owner_role: str | None = None) -> None:
    """pgcrypto, the pii schema (keys, vault, audit log, masking) and pipeline_lib; idempotent.
    With `owner_role`, every object of both schemas is given to it."""
    with conn.cursor() as cursor:
        cursor.execute("create schema if not exists pii")
        # a schema no pipeline role may create in, so no overload of its functions can appear
        cursor.execute("create extension if not exists pgcrypto with schema pii")
        setup = _sql_file("pii_setup.sql").replace("@pgcrypto@", _pgcrypto(conn))
        cursor.execute(setup)
    install_lib(conn)
    if owner_role:
        _give_schema(conn, "pii", owner_role)
        _give_schema(conn, "pipeline_lib", owner_role)
        with conn.cursor() as cursor:
            if pgcrypto_schema(conn) == "pii":
                cursor.execute(
                    sql.SQL(
                        "grant execute on function pii.hmac(bytea, bytea, text),"
                        " pii.gen_random_bytes(integer), pii.pgp_pub_encrypt(text, bytea, text),"
                        " pii.pgp_sym_encrypt(text, text, text), pii.digest(bytea, text) to {}"
                    ).format(sql.Identifier(owner_role))
                )


def install_lib(conn: Connection) -> None:
    """pipeline_lib: the functions every pipeline role may call (idempotent)."""
    with conn.cursor() as cursor:
        cursor.execute(_sql_file("pipeline_lib.sql"))


def has_lib(conn: Connection) -> bool:
    with conn.cursor() as cursor:
        cursor.execute("select to_regprocedure('pipeline_lib.is_json(text)') is not null")
        row = cursor.fetchone()
    return bool(row and row[0])


def _sql_file(name: str) -> str:
    return resources.files("loader").joinpath(f"sql/{name}").read_text()


def _give_schema(conn: Connection, schema: str, owner: str) -> None:
    """The schema and everything in it but extension members, to `owner`."""
    role = sql.Identifier(owner)
    with conn.cursor() as cursor:
        cursor.execute(sql.SQL("alter schema {} owner to {}").format(sql.Identifier(schema), role))
        cursor.execute(
            "select c.oid::regclass::text from pg_class c"
            " where c.relnamespace = %s::regnamespace and c.relkind in ('r', 'v', 'p')"
            " and not exists (select from pg_depend d where d.objid = c.oid and d.deptype = 'e')",
            (schema,),
        )
        for (table,) in cursor.fetchall():
            cursor.execute(sql.SQL("alter table {} owner to {}").format(sql.SQL(table), role))
        cursor.execute(
            "select p.oid::regprocedure::text from pg_proc p"
            " where p.pronamespace = %s::regnamespace"
            " and not exists (select from pg_depend d where d.objid = p.oid and d.deptype = 'e')",
            (schema,),
        )
        for (function,) in cursor.fetchall():
            cursor.execute(sql.SQL("alter function {} owner to {}").format(sql.SQL(function), role))


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
# validity is a function with an exception block (pipeline_lib.is_json). Such a block is a
# subtransaction, which Postgres refuses in a parallel query: computed here, as each row is
# landed (a few us a row of Postgres time, during COPY), staging reads a plain boolean and runs
# in parallel. The function belongs to the owner role, not to raw's owner: an erasure that
# rewrites a body recomputes the column with code the loader cannot change.
BODY_IS_JSON = "body_is_json"
IS_JSON_FUNCTION = "pipeline_lib.is_json"


def prepare_raw_table(conn: Connection, dataset: str, table: str, guard: bool = False) -> bool:
    """What staging relies on beyond dlt's columns: indexes for its dedupe and the marts'
    incremental filter, and `body_is_json` (stored, computed by Postgres from the body, so it
    follows every change of it, erasure included). Idempotent; concurrent loaders wait for
    each other. Adding the column to a table that already holds rows rewrites it, once.
    Returns whether it added the column. `guard`: the caller is not the table's owner, so a
    table carrying its owner's code is refused (loader/attached_code.py)."""
    names = {"schema": sql.Identifier(dataset), "table": sql.Identifier(table)}
    with conn.cursor() as cursor:
        cursor.execute("begin")
        cursor.execute("select pg_advisory_xact_lock(hashtext(%s))", (f"{dataset}.{table}",))
        if guard:
            refuse_attached_code(cursor, [(dataset, table)], write=True)
        for column in ("message_id", "_dlt_load_id"):
            cursor.execute(
                sql.SQL("create index if not exists {} on {schema}.{table} ({})").format(
                    sql.Identifier(f"{table}__{column}_idx"), sql.Identifier(column), **names
                )
            )
        flag = json_flag(conn, dataset, table)
        added = flag != IS_JSON_FUNCTION
        if added:
            if not has_lib(conn):
                _install_lib_for_raw(conn)
            if flag is not None:  # an older loader's, computed by a function raw's owner owns
                cursor.execute(
                    sql.SQL("alter table {schema}.{table} drop column {column}").format(
                        column=sql.Identifier(BODY_IS_JSON), **names
                    )
                )
            cursor.execute(
                sql.SQL(
                    "alter table {schema}.{table} add column {column} boolean"
                    " generated always as (pipeline_lib.is_json(body)) stored"
                ).format(column=sql.Identifier(BODY_IS_JSON), **names)
            )
            # the older loaders' function, no longer used
            cursor.execute(
                sql.SQL("drop function if exists {schema}.is_json(text)").format(**names)
            )
        cursor.execute("commit")
    return added


def _install_lib_for_raw(conn: Connection) -> None:
    """An admin's first load installs pipeline_lib itself; any other role is told who may."""
    with conn.cursor() as cursor:
        cursor.execute("savepoint install_lib")
        try:
            cursor.execute(_sql_file("pipeline_lib.sql"))
        except psycopg2.errors.InsufficientPrivilege as error:
            cursor.execute("rollback to savepoint install_lib")
            raise ConfigurationError(
                "the database has no pipeline_lib schema, which raw's body_is_json column needs: "
                "run `logins db init` as an admin first"
            ) from error


def refuse_foreign_code(conn: Connection, schema: str, owner_role: str) -> None:
    """Before dlt writes into `schema` (a load, or erasure finishing pending packages): refuse
    any table there that carries its owner's code, when this role does not own it (an admin's
    `logins run`), and any function, operator or conversion another role made in a schema on
    dlt's search_path (`<schema>,public`: dlt sets it, so it cannot be pinned). Either would
    run with this role's rights. Checked before the load, not held through it: dlt writes on
    connections of its own."""
    with conn.cursor() as cursor:
        cursor.execute("begin")
        try:
            cursor.execute(
                "select c.relname from pg_class c"
                " join pg_roles me on me.rolname = current_user"
                " where c.relnamespace = to_regnamespace(%s) and c.relkind in ('r', 'v', 'p')"
                # a superuser is every role's member: its rights are not the owner's
                " and c.relowner != me.oid"
                " and (me.rolsuper or not pg_has_role(me.oid, c.relowner, 'USAGE'))"
                # what it cannot write, dlt cannot make it run code on
                " and has_table_privilege(c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE')",
                (schema,),
            )
            tables = [(schema, name) for (name,) in cursor.fetchall()]
            refuse_attached_code(cursor, tables, write=True, owner_role=owner_role)
            refuse_shadowing_code(
                cursor, [schema, DLT_EXTRA_SCHEMA], owner_role=owner_role, why="load with dlt"
            )
        finally:
            cursor.execute("rollback")


def has_json_flag(conn: Connection, dataset: str, table: str) -> bool:
    """Whether the raw table has an up-to-date `body_is_json`."""
    return json_flag(conn, dataset, table) == IS_JSON_FUNCTION


def json_flag(conn: Connection, dataset: str, table: str) -> str | None:
    """The function that computes raw's `body_is_json` (schema.name), or None without one."""
    with conn.cursor() as cursor:
        cursor.execute(
            "select coalesce(("
            "  select p.pronamespace::regnamespace::text || '.' || p.proname"
            "  from pg_attrdef d join pg_depend dep on dep.classid = 'pg_attrdef'::regclass"
            "   and dep.objid = d.oid and dep.refclassid = 'pg_proc'::regclass"
            "  join pg_proc p on p.oid = dep.refobjid"
            "  where d.adrelid = a.attrelid and d.adnum = a.attnum limit 1), '')"
            " from pg_attribute a"
            " where a.attrelid = to_regclass(%s) and a.attname = %s and not a.attisdropped",
            (f'"{dataset}"."{table}"', BODY_IS_JSON),
        )
        row = cursor.fetchone()
    return None if row is None else str(row[0])


def analyze(conn: Connection, schema: str, tables: list[str]) -> None:
    """Fresh planner statistics. dbt's incremental plans estimate new rows through
    `_dlt_loads`: never analyzed, it reads as two rows, and staging's dedupe then hashed all of
    raw (0.9 s at 1M) instead of probing the message-id index for the new rows (0.1 s)."""
    with conn.cursor() as cursor:
        for table in tables:
            cursor.execute(
                sql.SQL("analyze {}.{}").format(sql.Identifier(schema), sql.Identifier(table))
            )


def column_exists(conn: Connection, schema: str, table: str, column: str) -> bool:
    with conn.cursor() as cursor:
        cursor.execute(
            "select 1 from information_schema.columns"
            " where table_schema = %s and table_name = %s and column_name = %s",
            (schema, table, column),
        )
        return cursor.fetchone() is not None


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
