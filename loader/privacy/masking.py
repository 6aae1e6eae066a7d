"""The `pii` schema (`sql/pii_setup.sql`): pgcrypto, the HMAC keys, the vault, the audit
log and the masking functions, owned by the pipeline's owner role."""

from __future__ import annotations

import hashlib
import io
from importlib import resources

from psycopg2 import sql
from psycopg2.extensions import connection as Connection

from loader.errors import ConfigurationError
from loader.names import PII_SCHEMA, PIPELINE_LIB_SCHEMA
from loader.warehouse.pipeline_lib import install_lib


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
        setup = (
            resources.files("loader.privacy")
            .joinpath("sql/pii_setup.sql")
            .read_text()
            .replace("@pgcrypto@", _pgcrypto(conn))
        )
        cursor.execute(setup)
    install_lib(conn)
    if owner_role:
        _give_schema(conn, PII_SCHEMA, owner_role)
        _give_schema(conn, PIPELINE_LIB_SCHEMA, owner_role)
        with conn.cursor() as cursor:
            # pii.mask_values() keeps a call's masks in a temporary table, as this role
            cursor.execute("select current_database()")
            database = sql.Identifier(cursor.fetchone()[0])
            cursor.execute(
                sql.SQL("grant temporary on database {} to {}").format(
                    database, sql.Identifier(owner_role)
                )
            )
            if pgcrypto_schema(conn) == PII_SCHEMA:
                cursor.execute(
                    sql.SQL(
                        "grant execute on function pii.hmac(bytea, bytea, text),"
                        " pii.gen_random_bytes(integer), pii.pgp_pub_encrypt(text, bytea, text),"
                        " pii.pgp_sym_encrypt(text, text, text), pii.digest(bytea, text) to {}"
                    ).format(sql.Identifier(owner_role))
                )


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
