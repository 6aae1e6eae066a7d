"""`logins roles apply`: least-privilege database roles, created or brought up to date.

  loader       writes the raw schema, and nothing else
  transformer  what `dbt build` needs: reads raw, owns staging and the marts, calls
               pii.mask_rows() and pii.seal_new() to mask new rows and seal their values in
               the vault; cannot read the HMAC keys or the vault, and no private key is in
               the database
  analyst      reads the marts only: no raw, staging or pii (so not even pii.mask(), which
               would let them hash all 2^32 IPv4 addresses)
  pii_admin    recovery, erasure, retention and rotation, through pii's audited functions

Roles are made with LOGIN and no password: set one from your secret store (ALTER ROLE ...
PASSWORD) or grant the role to your own login users. Idempotent; run it as an admin after
`logins db init` (`logins up` does both).
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg2.errors
from dlt.destinations.impl.postgres.configuration import PostgresCredentials
from psycopg2 import sql
from psycopg2.extensions import cursor as Cursor

from loader.pii import REJECTS, Schemas, transaction
from loader.settings import RolesSettings
from loader.source import RAW_TABLE

PII_FUNCTIONS_FOR_TRANSFORMER = (
    "mask(text, text)",
    "mask_key_version()",
    "mask_rows(regclass, text[])",
    "seal_new(regclass)",
)
PII_FUNCTIONS_FOR_ADMIN = (
    *PII_FUNCTIONS_FOR_TRANSFORMER,
    "mask_new(regclass)",
    "recover(text, text[], text[])",
    "shred(text, text[], text[])",
    "audit(text, text, integer)",
    "rotate_hmac_key()",
)


@dataclass(frozen=True)
class Roles:
    loader: str
    transformer: str
    analyst: str
    pii_admin: str

    @classmethod
    def named(cls, settings: RolesSettings) -> Roles:
        return cls(*(f"{settings.prefix}{role}" for role in cls.__dataclass_fields__))

    def all(self) -> list[str]:
        return [self.loader, self.transformer, self.analyst, self.pii_admin]


def apply(credentials: PostgresCredentials, settings: RolesSettings, schemas: Schemas) -> list[str]:
    roles = Roles.named(settings)
    with transaction(credentials) as conn, conn.cursor() as cursor:
        cursor.execute("select pg_advisory_xact_lock(hashtext('logins roles apply'))")
        created = [role for role in roles.all() if _create_role(cursor, role)]
        _apply_grants(cursor, roles, schemas)
    lines = [f"created role {role}" for role in created]
    lines.append(f"roles up to date: {', '.join(roles.all())}")
    return lines


def _create_role(cursor: Cursor, role: str) -> bool:
    cursor.execute("select exists (select from pg_roles where rolname = %s)", (role,))
    if cursor.fetchone()[0]:
        return False
    # a concurrent `roles apply` in another database may create it first (roles are
    # cluster-wide; the advisory lock above is per database)
    cursor.execute("savepoint create_role")
    try:
        cursor.execute(sql.SQL("create role {} login").format(sql.Identifier(role)))
    except psycopg2.errors.DuplicateObject:
        cursor.execute("rollback to savepoint create_role")
        return False
    return True


def _apply_grants(cursor: Cursor, roles: Roles, schemas: Schemas) -> None:
    def run(statement: str, **names: str) -> None:
        cursor.execute(
            sql.SQL(statement).format(**{k: sql.Identifier(v) for k, v in names.items()})
        )

    r = {
        "loader": roles.loader,
        "transformer": roles.transformer,
        "analyst": roles.analyst,
        "admin": roles.pii_admin,
        "raw": schemas.raw,
        "staging": schemas.staging,
        "marts": schemas.marts,
    }
    cursor.execute("select current_database()")
    r["db"] = cursor.fetchone()[0]
    for role in roles.all():
        run("grant connect on database {db} to {role}", db=r["db"], role=role)
    # dbt creates the schemas its models name (and checks that it may, even when they exist)
    run("grant create on database {db} to {transformer}", **r)

    # raw: the loader's; dbt and the PII admin read it (the admin also erases bodies)
    run("create schema if not exists {raw} authorization {loader}", **r)
    run("alter schema {raw} owner to {loader}", **r)
    _give_tables(cursor, schemas.raw, roles.loader)
    run("grant usage on schema {raw} to {transformer}, {admin}", **r)
    run("grant select on all tables in schema {raw} to {transformer}, {admin}", **r)
    run(
        "alter default privileges for role {loader} in schema {raw}"
        " grant select on tables to {transformer}, {admin}",
        **r,
    )
    run(
        "alter default privileges for role {loader} in schema {raw}"
        " grant update on tables to {admin}",
        **r,
    )
    if _exists(cursor, schemas.raw, RAW_TABLE):
        run("grant update (body) on {raw}.{table} to {admin}", **r, table=RAW_TABLE)

    # staging and the marts: dbt's, as transformer
    run("create schema if not exists {staging} authorization {transformer}", **r)
    run("alter schema {staging} owner to {transformer}", **r)
    _give_tables(cursor, schemas.staging, roles.transformer)
    _give_functions(cursor, schemas.staging, roles.transformer)
    run("grant usage, create on schema {marts} to {transformer}", **r)
    if _exists(cursor, schemas.marts, "user_logins"):
        run("alter table {marts}.user_logins owner to {transformer}", **r)
    run("grant usage on schema {marts} to {analyst}, {admin}", **r)
    run("grant usage on schema {staging} to {admin}", **r)
    for grantee in ("analyst", "admin"):
        if _exists(cursor, schemas.marts, "user_logins"):
            run("grant select on {marts}.user_logins to {grantee}", **r, grantee=r[grantee])
        run(
            "alter default privileges for role {transformer} in schema {marts}"
            " grant select on tables to {grantee}",
            **r,
            grantee=r[grantee],
        )
    run(
        "alter default privileges for role {transformer} in schema {marts}"
        " grant update on tables to {admin}",
        **r,
    )
    run(
        "alter default privileges for role {transformer} in schema {staging}"
        " grant select, update on tables to {admin}",
        **r,
    )
    if _exists(cursor, schemas.marts, "user_logins"):
        # remask rewrites the masks (a pre-created table may lack mask_key_version until the
        # next build adds it, so the grant is on the table, as for tables dbt creates later)
        run("grant update on {marts}.user_logins to {admin}", **r)
    if _exists(cursor, schemas.staging, REJECTS):
        run("grant select, update (body) on {staging}.{table} to {admin}", **r, table=REJECTS)

    # pii: masking and sealing for dbt, the audited functions for the admin; keys for no one
    run("grant usage on schema pii to {transformer}, {admin}", **r)
    for function in PII_FUNCTIONS_FOR_TRANSFORMER:
        run(f"grant execute on function pii.{function} to {{transformer}}", **r)
    for function in PII_FUNCTIONS_FOR_ADMIN:
        run(f"grant execute on function pii.{function} to {{admin}}", **r)
    # dbt masked distinct values with it before pii.mask_rows(); now only remask does
    run("revoke execute on function pii.mask_new(regclass) from {transformer}", **r)
    # sealing happens inside pii.seal_new(), as its owner: no one writes the vault directly
    run("grant select, insert, update on pii.recovery_keys to {admin}", **r)
    for table in ("data_keys", "vault"):
        run(f"revoke all on pii.{table} from {{transformer}}, {{admin}}", **r)
    run("revoke all on pii.recovery_keys from {transformer}", **r)
    run("grant select on pii.audit_log to {admin}", **r)


def _exists(cursor: Cursor, schema: str, table: str) -> bool:
    cursor.execute("select to_regclass(%s) is not null", (f'"{schema}"."{table}"',))
    return bool(cursor.fetchone()[0])


def _give_tables(cursor: Cursor, schema: str, owner: str) -> None:
    """Tables and views made before the roles existed (e.g. by an admin's first run)."""
    cursor.execute(
        "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname = %s and c.relkind in ('r', 'v', 'p')",
        (schema,),
    )
    for (name,) in cursor.fetchall():
        cursor.execute(
            sql.SQL("alter table {}.{} owner to {}").format(
                sql.Identifier(schema), sql.Identifier(name), sql.Identifier(owner)
            )
        )


def _give_functions(cursor: Cursor, schema: str, owner: str) -> None:
    cursor.execute(
        "select p.oid::regprocedure::text from pg_proc p"
        " join pg_namespace n on n.oid = p.pronamespace where n.nspname = %s",
        (schema,),
    )
    for (signature,) in cursor.fetchall():
        cursor.execute(
            sql.SQL("alter function {} owner to {}").format(
                sql.SQL(signature), sql.Identifier(owner)
            )
        )
