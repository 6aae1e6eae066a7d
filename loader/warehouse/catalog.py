"""Questions about the catalog: whether a table or column exists, how many rows, ANALYZE."""

from __future__ import annotations

from psycopg2 import sql
from psycopg2.extensions import connection as Connection


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
