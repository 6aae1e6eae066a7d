"""pipeline_lib: the functions every pipeline role may call (`sql/pipeline_lib.sql`): the
JSON checks raw's generated column and erasure use, and the attached-code check."""

from __future__ import annotations

from importlib import resources

from psycopg2.extensions import connection as Connection


def install_lib(conn: Connection) -> None:
    """pipeline_lib: the functions every pipeline role may call (idempotent)."""
    with conn.cursor() as cursor:
        cursor.execute(
            resources.files("loader.warehouse").joinpath("sql/pipeline_lib.sql").read_text()
        )


def has_lib(conn: Connection) -> bool:
    with conn.cursor() as cursor:
        cursor.execute("select to_regprocedure('pipeline_lib.is_json(text)') is not null")
        row = cursor.fetchone()
    return bool(row and row[0])
