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
