"""Privileged code refuses to touch a table that carries code a lower role controls.

A table's owner can attach code that runs with the rights of whoever reads or writes the table:
row-level security policies and rules run for readers; triggers, and the functions, operators
and types of column defaults, generated columns, check constraints and index expressions run
for writers. The loader owns raw and the transformer owns staging and the marts, so before the
PII admin (or a superuser) reads or rewrites them, each is locked against such changes and
checked: anything attached that neither a superuser, the pipeline's owner role nor the caller
made is refused, named, with the fix.
"""

from __future__ import annotations

from collections.abc import Iterable

from psycopg2 import sql
from psycopg2.extensions import connection as Connection
from psycopg2.extensions import cursor as Cursor

from loader.errors import PipelineError
from loader.names import MARTS_SCHEMA


class AttachedCode(PipelineError):
    """A table carries code that would run with the caller's rights."""

    exit_code = 7


def refuse_attached_code(
    cursor: Cursor,
    tables: Iterable[tuple[str, str]],
    *,
    write: bool,
    owner_role: str | None = None,
) -> None:
    """Locks each existing table of `tables` ((schema, name)) until the transaction ends, so
    nothing can be attached meanwhile, and refuses with AttachedCode if any carries code that
    would run with the caller's rights. `owner_role` is the pipeline's owner role (trusted).
    The check is pipeline_lib.lock_and_list_attached_code() (loader/sql/pipeline_lib.sql),
    which dbt asks too."""
    for schema, name in tables:
        cursor.execute(
            "select pipeline_lib.lock_and_list_attached_code(pg_catalog.to_regclass(%s), %s, %s)",
            (sql.Identifier(schema, name).as_string(cursor), write, owner_role),
        )
        problems = [str(problem) for (problem,) in cursor.fetchall()]
        if problems:
            action = "write to" if write else "read"
            raise AttachedCode(
                f"refusing to {action} {schema}.{name}: it carries code that would run with "
                f"your rights ({', '.join(problems)}); its owner must remove it (or find out "
                "who added it), then run the command again"
            )


# Functions, operators and conversions are picked by name through search_path; a better match
# in an earlier-or-any schema on the path wins over pg_catalog's (an exact `=(varchar, varchar)`
# beats the built-in `=(text, text)`). Extension members are installed code, not a role's.
_SHADOWING_CODE = """
select x.kind || ' ' || x.name || ' (owner ' || r.rolname || ')'
from (
    select 'function' as kind, p.oid::pg_catalog.regprocedure::text as name,
        p.proowner as owner, p.pronamespace as ns, 'pg_proc'::pg_catalog.regclass as cls, p.oid
    from pg_catalog.pg_proc p
    union all
    select 'operator', o.oid::pg_catalog.regoperator::text, o.oprowner, o.oprnamespace,
        'pg_operator'::pg_catalog.regclass, o.oid
    from pg_catalog.pg_operator o
    union all
    select 'conversion', c.conname::text, c.conowner, c.connamespace,
        'pg_conversion'::pg_catalog.regclass, c.oid
    from pg_catalog.pg_conversion c
) x
join pg_catalog.pg_roles r on r.oid = x.owner
join pg_catalog.pg_roles me on me.rolname = current_user
where x.ns = any(%(schemas)s::pg_catalog.regnamespace[])
    and not r.rolsuper
    and r.rolname is distinct from %(owner_role)s
    and x.owner != me.oid
    and (me.rolsuper or not pg_catalog.pg_has_role(me.oid, x.owner, 'USAGE'))
    and not exists (
        select from pg_catalog.pg_depend d
        where d.classid = x.cls and d.objid = x.oid and d.deptype = 'e'
    )
order by 1
"""


def refuse_shadowing_code(
    cursor: Cursor, schemas: Iterable[str], *, owner_role: str | None, why: str
) -> None:
    """Refuses with AttachedCode if a schema of `schemas` (a search_path the caller cannot pin,
    such as dlt's `<dataset>,public`) holds a function, operator or conversion that another
    non-superuser role made: name resolution could pick it and run it with the caller's rights.
    `why` says whose path it is. Checked before the work, not held through it."""
    cursor.execute(
        "select pg_catalog.array_agg(n.nspname::text) from pg_catalog.pg_namespace n"
        " where n.nspname = any(%s)",
        (list(schemas),),
    )
    existing = cursor.fetchone()[0] or []
    if not existing:
        return
    cursor.execute(_SHADOWING_CODE, {"schemas": existing, "owner_role": owner_role})
    found = [str(problem) for (problem,) in cursor.fetchall()]
    if found:
        raise AttachedCode(
            f"refusing to {why}: it resolves names through schema(s) {', '.join(existing)}, "
            f"which hold code another role made that could run with your rights "
            f"({', '.join(found[:5])}{', …' if len(found) > 5 else ''}); its owner must drop it, "
            "or build the marts outside those schemas (DBT_SCHEMA) so no lower role can create "
            "there, then run the command again"
        )


# dlt's own connections resolve names through `<dataset>,public` (its Postgres client sets it).
DLT_EXTRA_SCHEMA = MARTS_SCHEMA  # `public`, whatever DBT_SCHEMA is


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
