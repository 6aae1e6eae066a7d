"""What every privileged PII command does first: one transaction, and a lock-and-check of
the tables it touches for code another role attached."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dlt.destinations.impl.postgres.configuration import PostgresCredentials

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from psycopg2.extensions import connection as Connection

from loader import warehouse
from loader.names import Schemas
from loader.warehouse.attached_code import refuse_attached_code


def guard(
    conn: Connection, schemas: Schemas, tables: Sequence[tuple[str, str]], write: bool
) -> None:
    """Locks `tables` for this transaction and refuses any that carries another role's code."""
    with conn.cursor() as cursor:
        refuse_attached_code(cursor, tables, write=write, owner_role=schemas.owner_role)


@contextmanager
def transaction(source: PostgresCredentials | Connection) -> Iterator[Connection]:
    """One transaction: all of it commits, or none of it. `source` is credentials, or an open
    connection in autocommit mode (a console session's), which is left in that mode after."""
    with warehouse.opened(source) as conn:
        conn.autocommit = False
        try:
            with conn:
                yield conn
        finally:
            conn.autocommit = True
