"""Postgres, as every part of the pipeline reaches it: pinned connections with clear errors
(`connection`), catalog questions (`catalog`), the shared SQL library (`pipeline_lib`), and
the refusal to run another role's code (`attached_code`)."""

from loader.warehouse.catalog import analyze, column_exists, count_rows, table_exists
from loader.warehouse.connection import PINNED_SEARCH_PATH, advisory_lock, check, connect, opened

__all__ = [
    "PINNED_SEARCH_PATH",
    "advisory_lock",
    "analyze",
    "check",
    "column_exists",
    "connect",
    "count_rows",
    "opened",
    "table_exists",
]
