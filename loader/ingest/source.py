"""The dlt source: SQS messages as rows of `raw.login_messages`, exactly as received.

No parsing or validation here (that is dbt's job): one row per delivery with the body
verbatim and the SQS metadata beside it. A body Postgres cannot store as text (a NUL
character, a lone surrogate) is kept base64 with `body_encoding = 'base64'`, so no single
message can stop a load; staging rejects it with its reason.
Rows are built as Arrow tables of a few thousand messages as they arrive, so dlt skips its
row-by-row normalizer, writes each to disk at once and loads them with COPY: a load of any
size holds one such table in memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import dlt
import pyarrow as pa
from dlt.common.schema.typing import TTableSchemaColumns

from loader.ingest.batches import ReceivedBatch, bounded
from loader.names import RAW_TABLE

# One Arrow table (a parquet row group in the load package) per this many messages, or body
# characters: per-table overhead is gone by ~2,000, and large messages stay a few MB a table.
PIECE_MESSAGES = 2_000
PIECE_BODY_SIZE = 2 * 1024 * 1024

_DLT_TYPES = {pa.string(): "text", pa.int64(): "bigint"}

_ARROW_SCHEMA = pa.schema(
    [
        pa.field("message_id", pa.string(), nullable=False),
        pa.field("body", pa.string(), nullable=False),
        pa.field("sent_at", pa.timestamp("ms", tz="UTC")),
        pa.field("receive_count", pa.int64()),
        pa.field("received_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("system_attributes", pa.string()),
        pa.field("message_attributes", pa.string()),
        pa.field("body_encoding", pa.string()),
    ]
)

# dlt's column hints, from the same schema: the table dlt creates has these types, also for an
# empty first load
RAW_COLUMNS: TTableSchemaColumns = {
    field.name: {
        "data_type": "timestamp" if pa.types.is_timestamp(field.type) else _DLT_TYPES[field.type],
        "nullable": field.nullable,
    }
    for field in _ARROW_SCHEMA
}


def to_arrow(batches: Sequence[ReceivedBatch]) -> pa.Table:
    rows = [row for batch in batches for row in batch.rows]
    # received_at is the batch's, not the row's: it goes in at the schema's position 4
    columns: list[Sequence[object]] = list(zip(*rows, strict=True)) if rows else [()] * 7
    columns.insert(4, [batch.received_at for batch in batches for _ in batch.rows])
    return pa.Table.from_arrays(
        [
            pa.array(values, field.type)
            for values, field in zip(columns, _ARROW_SCHEMA, strict=True)
        ],
        schema=_ARROW_SCHEMA,
    )


def pieces(batches: Iterable[ReceivedBatch]) -> Iterator[list[ReceivedBatch]]:
    """`batches` in groups of about PIECE_MESSAGES messages or PIECE_BODY_SIZE characters."""
    rest = iter(batches)
    while piece := list(bounded(rest, PIECE_MESSAGES, PIECE_BODY_SIZE)):
        yield piece


@dlt.resource(name=RAW_TABLE, write_disposition="append", columns=RAW_COLUMNS)
def login_messages(batches: Iterable[ReceivedBatch]) -> Iterator[pa.Table]:
    empty = True
    for piece in pieces(batches):
        empty = False
        yield to_arrow(piece)
    if empty:
        yield to_arrow([])  # an empty load still creates the table


@dlt.source(name="sqs", max_table_nesting=0)
def sqs_logins(batches: Iterable[ReceivedBatch]) -> Any:
    """The messages one chunk of the load receives, as they come."""
    return login_messages(batches)
