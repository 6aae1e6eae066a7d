"""The dlt source: SQS messages as rows of `raw.login_messages`, exactly as received.

No parsing or validation here (that is dbt's job): one row per delivery with the body
verbatim and the SQS metadata beside it. Rows are built as Arrow tables, so dlt skips its
row-by-row normalizer and loads them with COPY.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import dlt
import orjson
import pyarrow as pa
from dlt.common.schema.typing import TTableSchemaColumns

RAW_TABLE = "login_messages"

RAW_COLUMNS: TTableSchemaColumns = {
    "message_id": {"data_type": "text", "nullable": False},
    "body": {"data_type": "text", "nullable": False},
    "sent_at": {"data_type": "timestamp", "nullable": True},
    "receive_count": {"data_type": "bigint", "nullable": True},
    "received_at": {"data_type": "timestamp", "nullable": False},
    "system_attributes": {"data_type": "text", "nullable": True},
    "message_attributes": {"data_type": "text", "nullable": True},
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
    ]
)


# One message as raw keeps it: message_id, body, sent_at (epoch ms), receive_count, and the
# system and message attributes as JSON text.
RawRow = tuple[str, str, int | None, int | None, str | None, str | None]


@dataclass(frozen=True)
class ReceivedBatch:
    """What one ReceiveMessage call returned, and when: the rows raw keeps and the receipt
    handles to delete them with. Made in the receiver thread, so botocore's larger response
    dicts are freed at once (a chunk in flight is a third the memory)."""

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
            rows.append(
                (
                    message["MessageId"],
                    message["Body"],
                    int(sent) if sent is not None else None,
                    int(count) if count is not None else None,
                    orjson.dumps(attributes).decode() if attributes else None,
                    orjson.dumps(custom).decode() if custom else None,
                )
            )
        handles = [m["ReceiptHandle"] for m in messages]
        return cls(rows, handles, received_at, sum(len(row[1]) for row in rows))

    def __len__(self) -> int:
        return len(self.rows)


def receipt_handles(batches: Sequence[ReceivedBatch]) -> list[str]:
    """Every receipt handle of `batches`, in order (to delete, release or extend them)."""
    return [handle for batch in batches for handle in batch.receipt_handles]


def to_arrow(batches: Sequence[ReceivedBatch]) -> pa.Table:
    rows = [row for batch in batches for row in batch.rows]
    columns = list(zip(*rows, strict=True)) if rows else [()] * 6
    received_at = [batch.received_at for batch in batches for _ in batch.rows]
    message_ids, bodies, sent_at, receive_counts, system_attributes, message_attributes = columns
    return pa.Table.from_arrays(
        [
            pa.array(message_ids, pa.string()),
            pa.array(bodies, pa.string()),
            pa.array(sent_at, pa.timestamp("ms", tz="UTC")),
            pa.array(receive_counts, pa.int64()),
            pa.array(received_at, pa.timestamp("us", tz="UTC")),
            pa.array(system_attributes, pa.string()),
            pa.array(message_attributes, pa.string()),
        ],
        schema=_ARROW_SCHEMA,
    )


@dlt.resource(name=RAW_TABLE, write_disposition="append", columns=RAW_COLUMNS)
def login_messages(batches: Sequence[ReceivedBatch]) -> Iterator[pa.Table]:
    yield to_arrow(batches)


@dlt.source(name="sqs", max_table_nesting=0)
def sqs_logins(batches: Sequence[ReceivedBatch]) -> Any:
    """The messages one chunk of the load received."""
    return login_messages(batches)
