"""`logins roles apply`: least-privilege database roles, created or brought up to date.

  owner        NOLOGIN, not a superuser: owns the pii schema (keys, vault, audit log) and
               pipeline_lib; pii's SECURITY DEFINER functions run with its rights only
  loader       writes the raw schema, and nothing else
  transformer  what `dbt build` needs: reads raw, owns staging and the marts, passes the new
               rows' values to pii.mask_values() to mask them and seal them in the vault;
               cannot read the HMAC keys or the vault, and no private key is in the database
  analyst      reads the marts only: no raw, staging or pii (so not even pii.mask(), which
               would let them hash all 2^32 IPv4 addresses)
  pii_admin    recovery, erasure, retention and rotation, through pii's audited functions.
               NOINHERIT member of loader and transformer: it becomes them only to VACUUM
               what it erased (only a table's owner may)
  operator     `logins status`: reads the run history (ops.pipeline_runs) and what the
               analyst reads (a member of it), nothing with a body in it; the loader and the
               transformer write their runs only through ops.record_run()

transformer and pii_admin bypass row-level security (BYPASSRLS), so no policy a table's owner
adds runs with their rights; the CLI also refuses tables that carry such code
(loader/attached_code.py). TEMP is revoked from PUBLIC and granted to the transformer (dbt's
temporary tables). Roles are made with no password: set one from your secret store (ALTER ROLE
... PASSWORD) or grant the role to your own login users. Idempotent; run it as an admin after
`logins db init` (`logins up` does both, `logins run` as an admin again after each build).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import psycopg2.errors
from psycopg2 import sql
from psycopg2.extensions import cursor as Cursor

from loader.names import RAW_TABLE, USER_LOGINS, Schemas
from loader.privacy.guards import transaction

if TYPE_CHECKING:
    from dlt.destinations.impl.postgres.configuration import PostgresCredentials

    from loader.settings import RolesSettings

# pii's functions and the roles that may call each: the `callers:` line of each function's
# comment in sql/pii_setup.sql (only the schema's owner can write a comment)
_PII_CALLERS = """
select p.oid::pg_catalog.regprocedure::text, pg_catalog.obj_description(p.oid, 'pg_proc')
from pg_catalog.pg_proc p
where p.pronamespace = 'pii'::pg_catalog.regnamespace
    and pg_catalog.obj_description(p.oid, 'pg_proc') like 'callers:%'
"""


@dataclass(frozen=True)
class Roles:
    loader: str
    transformer: str
    analyst: str
    pii_admin: str
    owner: str
    operator: str

    @classmethod
    def named(cls, settings: RolesSettings) -> Roles:
        return cls(*(settings.role(role) for role in cls.__dataclass_fields__))

    def all(self) -> list[str]:
        """The roles people and jobs log in as (the owner role never logs in)."""
        return [self.loader, self.transformer, self.analyst, self.pii_admin, self.operator]


def apply(credentials: PostgresCredentials, settings: RolesSettings, schemas: Schemas) -> list[str]:
    roles = Roles.named(settings)
    notes: list[str] = []
    with transaction(credentials) as conn, conn.cursor() as cursor:
        cursor.execute("select pg_advisory_xact_lock(hashtext('logins roles apply'))")
        created = [role for role in [*roles.all(), roles.owner] if create_role(cursor, role)]
        notes += _set_attributes(cursor, roles)
        _apply_grants(cursor, roles, schemas)
    lines = [f"created role {role}" for role in created] + notes
    lines.append(f"roles up to date: {', '.join(roles.all())} (owner {roles.owner})")
    return lines


def reapply_after_build(
    credentials: PostgresCredentials, settings: RolesSettings, schemas: Schemas
) -> bool:
    """After a load and build run by a superuser (`make demo`), the tables it created belong
    to it: give them to the pipeline's roles and grant them, as `roles apply` does, when the
    roles exist. Returns whether it did."""
    roles = Roles.named(settings)
    with transaction(credentials) as conn, conn.cursor() as cursor:
        cursor.execute(
            "select rolsuper and exists (select from pg_catalog.pg_roles where rolname = %s)"
            " from pg_catalog.pg_roles where rolname = current_user",
            (roles.loader,),
        )
        row = cursor.fetchone()
    if not (row and row[0]):
        return False
    apply(credentials, settings, schemas)
    return True


def create_role(cursor: Cursor, role: str) -> bool:
    """Creates `role` if missing (LOGIN, except the owner role: NOLOGIN, set after)."""
    cursor.execute("select exists (select from pg_catalog.pg_roles where rolname = %s)", (role,))
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


def ensure_owner_role(cursor: Cursor, settings: RolesSettings) -> str:
    """The owner role, created NOLOGIN and without any attribute if it is missing."""
    owner = Roles.named(settings).owner
    create_role(cursor, owner)
    _strip_owner_role(cursor, owner)
    return owner


def _strip_owner_role(cursor: Cursor, owner: str) -> None:
    """The owner role never logs in and holds no attribute: the definer functions run as it."""
    cursor.execute(
        sql.SQL(
            "alter role {} nologin nosuperuser nocreatedb nocreaterole noreplication nobypassrls"
        ).format(sql.Identifier(owner))
    )


def _set_attributes(cursor: Cursor, roles: Roles) -> list[str]:
    """Login roles are never superusers; the transformer and the admin bypass row-level
    security (only a superuser may grant that: otherwise say so, the CLI's checks still
    refuse tables with policies)."""

    def alter(role: str, attributes: str) -> None:
        cursor.execute(sql.SQL("alter role {} " + attributes).format(sql.Identifier(role)))

    _strip_owner_role(cursor, roles.owner)
    for role in roles.all():
        alter(role, "login nosuperuser nocreatedb nocreaterole noreplication")
    alter(roles.loader, "nobypassrls")
    alter(roles.analyst, "nobypassrls")
    alter(roles.operator, "nobypassrls")
    alter(roles.pii_admin, "noinherit")
    notes = []
    cursor.execute("select rolsuper from pg_catalog.pg_roles where rolname = current_user")
    if cursor.fetchone()[0]:
        alter(roles.transformer, "bypassrls")
        alter(roles.pii_admin, "bypassrls")
    else:
        notes.append(
            "could not give the transformer and pii_admin BYPASSRLS (a superuser may): "
            "the CLI and dbt still refuse tables with row-level security"
        )
    return notes


def _apply_grants(cursor: Cursor, roles: Roles, schemas: Schemas) -> None:
    cursor.execute("select current_database()")
    names = {
        "loader": roles.loader,
        "transformer": roles.transformer,
        "analyst": roles.analyst,
        "admin": roles.pii_admin,
        "owner": roles.owner,
        "operator": roles.operator,
        "raw": schemas.raw,
        "staging": schemas.staging,
        "marts": schemas.marts,
        "db": cursor.fetchone()[0],
    }
    run = _Grants(cursor, names)
    _grant_database(run, roles)
    _grant_raw(run, cursor, schemas, roles)
    _grant_dbt_schemas(run, cursor, schemas, roles)
    _grant_pii(run)
    _grant_ops(run, cursor)


class _Grants:
    """Runs a GRANT-like statement with its {placeholders} filled by quoted role, schema and
    database names."""

    def __init__(self, cursor: Cursor, names: dict[str, str]) -> None:
        self.cursor, self.names = cursor, names

    def __call__(self, statement: str, **more: str) -> None:
        names = {**self.names, **more}
        self.cursor.execute(
            sql.SQL(statement).format(**{k: sql.Identifier(v) for k, v in names.items()})
        )


def _grant_database(run: _Grants, roles: Roles) -> None:
    for role in roles.all():
        run("grant connect on database {db} to {role}", role=role)
    # dbt creates the schemas its models name (and checks that it may, even when they exist)
    run("grant create on database {db} to {transformer}")
    # temporary objects only for dbt (its incremental builds and the masking pre-hook)
    run("revoke temporary on database {db} from public")
    run("grant temporary on database {db} to {transformer}")
    # pii.mask_values() (run as the owner) keeps a call's masks in a temporary table
    run("grant temporary on database {db} to {owner}")
    # the admin becomes the tables' owners only to VACUUM what it erased (NOINHERIT)
    run("grant {loader}, {transformer} to {admin}")


def _grant_raw(run: _Grants, cursor: Cursor, schemas: Schemas, roles: Roles) -> None:
    # raw: the loader's; dbt and the PII admin read it (the admin also erases bodies)
    run("create schema if not exists {raw} authorization {loader}")
    run("alter schema {raw} owner to {loader}")
    _give_tables(cursor, schemas.raw, roles.loader)
    run("grant usage on schema {raw} to {transformer}, {admin}")
    run("grant select on all tables in schema {raw} to {transformer}, {admin}")
    run(
        "alter default privileges for role {loader} in schema {raw}"
        " grant select on tables to {transformer}, {admin}",
    )
    run(
        "alter default privileges for role {loader} in schema {raw}"
        " grant update on tables to {admin}",
    )
    if _exists(cursor, schemas.raw, RAW_TABLE):
        # table-wide, as for tables made later (default privileges above): erasure locks the
        # table against changes while it checks it, and LOCK asks for UPDATE on the table
        run("grant update on {raw}.{table} to {admin}", table=RAW_TABLE)


def _grant_dbt_schemas(run: _Grants, cursor: Cursor, schemas: Schemas, roles: Roles) -> None:
    # staging and the marts: dbt's, as transformer
    run("create schema if not exists {staging} authorization {transformer}")
    run("alter schema {staging} owner to {transformer}")
    _give_tables(cursor, schemas.staging, roles.transformer)
    _give_functions(cursor, schemas.staging, roles.transformer)
    run("grant usage, create on schema {marts} to {transformer}")
    if _exists(cursor, schemas.marts, USER_LOGINS):
        run("alter table {marts}.user_logins owner to {transformer}")
    run("grant usage on schema {marts} to {analyst}, {admin}")
    run("grant usage on schema {staging} to {admin}")
    for grantee in ("analyst", "admin"):
        if _exists(cursor, schemas.marts, USER_LOGINS):
            run("grant select on {marts}.user_logins to {grantee}", grantee=run.names[grantee])
        run(
            "alter default privileges for role {transformer} in schema {marts}"
            " grant select on tables to {grantee}",
            grantee=run.names[grantee],
        )
    run(
        "alter default privileges for role {transformer} in schema {marts}"
        " grant update on tables to {admin}",
    )
    run(
        "alter default privileges for role {transformer} in schema {staging}"
        " grant select, update on tables to {admin}",
    )
    if _exists(cursor, schemas.marts, USER_LOGINS):
        # remask rewrites the masks (a pre-created table may lack mask_key_version until the
        # next build adds it, so the grant is on the table, as for tables dbt creates later)
        run("grant update on {marts}.user_logins to {admin}")
    # staging's tables made before now (as for those made later: default privileges above)
    run("grant select, update on all tables in schema {staging} to {admin}")


def _grant_pii(run: _Grants) -> None:
    # pii: masking and sealing for dbt, the audited functions for the admin; keys for no one
    run("grant usage on schema pii to {transformer}, {admin}")
    run("revoke all on all functions in schema pii from {transformer}, {admin}")
    for function, grantees in pii_callers(run.cursor).items():
        for grantee in grantees:
            run(f"grant execute on function {function} to {{grantee}}", grantee=run.names[grantee])
    # sealing happens inside pii.mask_values(), as the owner: no one writes the vault directly
    run("grant select, insert, update on pii.recovery_keys to {admin}")
    for table in ("data_keys", "vault"):
        run(f"revoke all on pii.{table} from {{transformer}}, {{admin}}")
    run("revoke all on pii.recovery_keys from {transformer}")
    run("grant select on pii.audit_log to {admin}")


def _grant_ops(run: _Grants, cursor: Cursor) -> None:
    # the run history: each pipeline role records its runs through the definer function
    # (values in, insert only); the operator reads it, and what the analyst reads (freshness)
    run("grant {analyst} to {operator}")
    cursor.execute("select to_regnamespace('ops') is not null")
    if not cursor.fetchone()[0]:  # `db init` not run since the history came
        return
    run("grant usage on schema ops to {loader}, {transformer}, {operator}")
    run("revoke all on ops.pipeline_runs from {loader}, {transformer}, {analyst}, {admin}")
    run("grant select on ops.pipeline_runs to {operator}")
    run("grant execute on function ops.record_run(jsonb) to {loader}, {transformer}")


def pii_callers(cursor: Cursor) -> dict[str, list[str]]:
    """Each pii function (schema-qualified signature) and the roles ('transformer',
    'pii_admin') its comment lets call it."""
    cursor.execute(_PII_CALLERS)
    callers = {}
    for function, comment in cursor.fetchall():
        named = comment.removeprefix("callers:").split(".", 1)[0]
        callers[function] = [
            "admin" if role.strip() == "pii_admin" else role.strip() for role in named.split(",")
        ]
    return callers


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
