"""What the receiving side hands the load: each ReceiveMessage call's messages as the rows
raw keeps (`ReceivedBatch`), and one load's worth of them (`Chunk`, `bounded`)."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import chain
from typing import Any

import orjson

# raw.body_encoding of a body kept encoded: base64 of its UTF-8 bytes (lone surrogates
# encoded as UTF-8 would encode them: Python's "surrogatepass"); null for a verbatim body.
BASE64 = "base64"


_SURROGATE = re.compile("[\ud800-\udfff]")


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
