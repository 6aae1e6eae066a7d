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


@dataclass(frozen=True)
class ReceivedBatch:
    """What one ReceiveMessage call returned, and when."""

    messages: list[dict[str, Any]]
    received_at: datetime


def to_arrow(batches: Sequence[ReceivedBatch]) -> pa.Table:
    message_ids: list[str] = []
    bodies: list[str] = []
    sent_at: list[int | None] = []
    receive_counts: list[int | None] = []
    received_at: list[datetime] = []
    system_attributes: list[str | None] = []
    message_attributes: list[str | None] = []
    for batch in batches:
        for message in batch.messages:
            attributes = message.get("Attributes") or {}
            message_ids.append(message["MessageId"])
            bodies.append(message["Body"])
            sent = attributes.get("SentTimestamp")
            sent_at.append(int(sent) if sent is not None else None)
            count = attributes.get("ApproximateReceiveCount")
            receive_counts.append(int(count) if count is not None else None)
            received_at.append(batch.received_at)
            system_attributes.append(orjson.dumps(attributes).decode() if attributes else None)
            custom = message.get("MessageAttributes")
            message_attributes.append(orjson.dumps(custom).decode() if custom else None)
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
