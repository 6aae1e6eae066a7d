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
from psycopg2.extensions import cursor as Cursor

from loader.errors import PipelineError


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
    would run with the caller's rights. `owner_role` is the pipeline's owner role (trusted)."""
    for schema, name in tables:
        qualified = f"{schema}.{name}"
        cursor.execute(
            "select pg_catalog.to_regclass(%s)::pg_catalog.oid", (_quoted(schema, name),)
        )
        row = cursor.fetchone()
        if row is None or row[0] is None:
            continue
        rel = row[0]
        # a view or another kind is refused before LOCK, which would also lock what it reads
        problems = _problems(cursor, rel, False, owner_role)
        if not problems:
            mode = "share row exclusive" if write else "access share"
            cursor.execute(
                sql.SQL("lock table only {}.{} in {} mode").format(
                    sql.Identifier(schema), sql.Identifier(name), sql.SQL(mode)
                )
            )
            problems = _problems(cursor, rel, write, owner_role)
        if problems:
            action = "write to" if write else "read"
            raise AttachedCode(
                f"refusing to {action} {qualified}: it carries code that would run with your "
                f"rights ({', '.join(problems)}); its owner must remove it (or find out who "
                "added it), then run the command again"
            )


def _problems(cursor: Cursor, rel: int, write: bool, owner_role: str | None) -> list[str]:
    """pipeline_lib.attached_code() (loader/sql/pipeline_lib.sql), which dbt asks too."""
    cursor.execute(
        "select pipeline_lib.attached_code(%s::oid::regclass, %s, %s)", (rel, write, owner_role)
    )
    return sorted({str(problem) for (problem,) in cursor.fetchall()})


def _quoted(schema: str, name: str) -> str:
    return '"{}"."{}"'.format(schema.replace('"', '""'), name.replace('"', '""'))
