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

import base64
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import chain
from typing import Any

import dlt
import orjson
import pyarrow as pa
from dlt.common.schema.typing import TTableSchemaColumns

RAW_TABLE = "login_messages"
# raw.body_encoding of a body kept encoded: base64 of its UTF-8 bytes (lone surrogates
# encoded as UTF-8 would encode them: Python's "surrogatepass"); null for a verbatim body.
BASE64 = "base64"
_SURROGATE = re.compile("[\ud800-\udfff]")

# One Arrow table (a parquet row group in the load package) per this many messages, or body
# characters: per-table overhead is gone by ~2,000, and large messages stay a few MB a table.
PIECE_MESSAGES = 2_000
PIECE_BODY_SIZE = 2 * 1024 * 1024

RAW_COLUMNS: TTableSchemaColumns = {
    "message_id": {"data_type": "text", "nullable": False},
    "body": {"data_type": "text", "nullable": False},
    "sent_at": {"data_type": "timestamp", "nullable": True},
    "receive_count": {"data_type": "bigint", "nullable": True},
    "received_at": {"data_type": "timestamp", "nullable": False},
    "system_attributes": {"data_type": "text", "nullable": True},
    "message_attributes": {"data_type": "text", "nullable": True},
    "body_encoding": {"data_type": "text", "nullable": True},
}

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


# One message as raw keeps it: message_id, body, sent_at (epoch ms), receive_count, the
# system and message attributes as JSON text, and the body's encoding (None: verbatim).
RawRow = tuple[str, str, int | None, int | None, str | None, str | None, str | None]


def storable_body(body: str) -> tuple[str, str | None]:
    """The body as raw stores it, and its encoding: verbatim when Postgres text can hold it,
    else base64 (Postgres refuses NUL in text, and UTF-8 has no lone surrogates)."""
    if "\x00" not in body and (body.isascii() or not _SURROGATE.search(body)):
        return body, None
    return base64.b64encode(body.encode("utf-8", "surrogatepass")).decode("ascii"), BASE64


def attributes_json(attributes: dict[str, Any]) -> str:
    """Attributes as JSON text, whatever they hold: bytes (a Binary attribute's BinaryValue)
    as base64, anything else JSON lacks as its text. Never raises: one odd message must not
    stop the load of its batch."""
    try:
        return orjson.dumps(attributes, default=_json_default).decode()
    except TypeError:  # a lone surrogate, a key that is no string, a very large integer
        pass
    try:
        return json.dumps(attributes, default=_json_default)  # escapes what orjson refuses
    except (TypeError, ValueError):
        return json.dumps(repr(attributes))


def _json_default(value: object) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(value).decode("ascii")
    return str(value)


@dataclass(frozen=True)
class ReceivedBatch:
    """What one ReceiveMessage call returned, and when: the rows raw keeps and the receipt
    handles to delete them with. Made in the receiver thread, so botocore's larger response
    dicts are freed at once (what waits in the buffer is a third the memory)."""

    rows: list[RawRow]
    receipt_handles: list[str]
    received_at: datetime
    # characters of the bodies: what a chunk's memory grows with
    body_size: int

    @classmethod
    def from_messages(
        cls, messages: Sequence[dict[str, Any]], received_at: datetime
    ) -> ReceivedBatch:
        rows: list[RawRow] = []
        for message in messages:
            attributes = message.get("Attributes") or {}
            sent = attributes.get("SentTimestamp")
            count = attributes.get("ApproximateReceiveCount")
            custom = message.get("MessageAttributes")
            body, encoding = storable_body(message.get("Body") or "")
            rows.append(
                (
                    message["MessageId"],
                    body,
                    _integer(sent),
                    _integer(count),
                    attributes_json(attributes) if attributes else None,
                    attributes_json(custom) if custom else None,
                    encoding,
                )
            )
        handles = [m["ReceiptHandle"] for m in messages]
        return cls(rows, handles, received_at, sum(len(row[1]) for row in rows))

    def __len__(self) -> int:
        return len(self.rows)


def _integer(value: object) -> int | None:
    """An SQS number attribute; None when absent or not a number (raw keeps the text in
    system_attributes, and staging rejects a message without its SentTimestamp)."""
    try:
        return int(value) if value is not None else None  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None


class Chunk:
    """The messages of one dlt load, gone through once, batch by batch, as they come (from
    the receiver threads, while dlt extracts them). It keeps only what it needs after the
    load: the count, and each batch's list of receipt handles (to delete or release them)."""

    def __init__(self, batches: Iterable[ReceivedBatch]) -> None:
        self._batches = batches
        self.handle_lists: list[list[str]] = []

    def __iter__(self) -> Iterator[ReceivedBatch]:
        for batch in self._batches:
            self.handle_lists.append(batch.receipt_handles)
            yield batch

    @property
    def messages(self) -> int:
        return sum(map(len, self.handle_lists))

    def receipt_handles(self) -> list[str]:
        return list(chain.from_iterable(self.handle_lists))


def to_arrow(batches: Sequence[ReceivedBatch]) -> pa.Table:
    rows = [row for batch in batches for row in batch.rows]
    columns = list(zip(*rows, strict=True)) if rows else [()] * 7
    received_at = [batch.received_at for batch in batches for _ in batch.rows]
    (
        message_ids,
        bodies,
        sent_at,
        receive_counts,
        system_attributes,
        message_attributes,
        body_encodings,
    ) = columns
    return pa.Table.from_arrays(
        [
            pa.array(message_ids, pa.string()),
            pa.array(bodies, pa.string()),
            pa.array(sent_at, pa.timestamp("ms", tz="UTC")),
            pa.array(receive_counts, pa.int64()),
            pa.array(received_at, pa.timestamp("us", tz="UTC")),
            pa.array(system_attributes, pa.string()),
            pa.array(message_attributes, pa.string()),
            pa.array(body_encodings, pa.string()),
        ],
        schema=_ARROW_SCHEMA,
    )


def bounded(
    batches: Iterable[ReceivedBatch], max_messages: int, max_body_size: int
) -> Iterator[ReceivedBatch]:
    """Batches from `batches` up to, and with, the one that brings them to `max_messages`
    messages or `max_body_size` body characters; nothing is taken from `batches` after it."""
    messages = size = 0
    for batch in batches:
        yield batch
        messages += len(batch)
        size += batch.body_size
        if messages >= max_messages or size >= max_body_size:
            return


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
