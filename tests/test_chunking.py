"""How a chunk reaches dlt: batch by batch, as Arrow tables of bounded size.

A chunk is extracted as it is received, so what is in memory at once is one Arrow table, not
the chunk. These pin the bounds of those tables, what a chunk keeps after going through, and
the receive buffer between the receiver threads and the main thread.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import UTC, datetime

import pytest

from loader.ingest.batches import Chunk, ReceivedBatch
from loader.ingest.receiver import _DONE, _Buffer
from loader.ingest.source import PIECE_BODY_SIZE, PIECE_MESSAGES, login_messages, pieces


def _batch(first: int, body: str, count: int = 10) -> ReceivedBatch:
    messages = [
        {
            "MessageId": f"m{n}",
            "Body": body,
            "ReceiptHandle": f"h{n}",
            "Attributes": {"SentTimestamp": "1700000000000", "ApproximateReceiveCount": "1"},
        }
        for n in range(first, first + count)
    ]
    return ReceivedBatch.from_messages(messages, datetime.now(UTC))


def test_small_messages_make_tables_of_piece_messages() -> None:
    batches = [_batch(10 * n, '{"user_id": "u"}') for n in range(450)]  # 4,500 messages
    sizes = [sum(len(batch) for batch in piece) for piece in pieces(batches)]
    assert sizes == [PIECE_MESSAGES, PIECE_MESSAGES, 4_500 - 2 * PIECE_MESSAGES]


def test_large_messages_make_tables_bounded_by_size() -> None:
    body = "x" * 250_000  # SQS's largest: a batch of ten (2.5 MB) is a table of its own
    batches = [_batch(10 * n, body) for n in range(6)]
    made = list(pieces(batches))
    assert sum(len(batch) for piece in made for batch in piece) == 60
    for piece in made:
        size = sum(batch.body_size for batch in piece)
        # cut once a batch takes it over the bound: at most one batch beyond it
        assert size - piece[-1].body_size < PIECE_BODY_SIZE
    assert len(made) == 6


def test_a_chunk_keeps_only_its_count_and_receipt_handles() -> None:
    chunk = Chunk(iter([_batch(0, "{}"), _batch(10, "{}", count=3)]))
    tables = list(login_messages(chunk))
    assert [table.num_rows for table in tables] == [13]
    assert chunk.messages == 13
    assert chunk.receipt_handles() == [f"h{n}" for n in range(13)]
    assert [len(handles) for handles in chunk.handle_lists] == [10, 3]


def test_an_empty_chunk_still_makes_one_empty_table() -> None:
    """So the first, empty, run creates raw.login_messages for dbt's source."""
    tables = list(login_messages(Chunk([])))
    assert [table.num_rows for table in tables] == [0]
    assert tables[0].column_names[:2] == ["message_id", "body"]


def test_the_buffer_hands_out_everything_in_order_however_little_came() -> None:
    buffer = _Buffer(max_messages=1_000, max_size=1_000_000)  # a hand-out's worth: 250
    taker = ThreadPoolExecutor(1)
    first = taker.submit(buffer.get, 5)  # waits: nothing yet
    batches = [_batch(10 * n, '{"user_id": "u"}') for n in range(3)]  # 30: less than 250
    for batch in batches:
        buffer.put(batch)
    # less than a hand-out's worth still comes out, in order, and the buffer is empty after
    assert first.result(timeout=10) is batches[0]
    assert [buffer.get(timeout=0), buffer.get(timeout=0)] == batches[1:]
    assert buffer.get(timeout=0.1) is None
    # a thread's last word comes out after what that thread put before it
    buffer.put(batches[0])
    buffer.put_done()
    assert [buffer.get(None), buffer.get(None)] == [batches[0], _DONE]
    assert buffer.empty()
    taker.shutdown()


def test_a_full_buffer_takes_more_only_as_the_main_thread_takes() -> None:
    buffer = _Buffer(max_messages=20, max_size=1_000_000)
    batches = [_batch(10 * n, '{"user_id": "u"}') for n in range(3)]
    buffer.put(batches[0])
    buffer.put(batches[1])  # now full: 20 messages
    putter = ThreadPoolExecutor(1)
    third = putter.submit(buffer.put, batches[2])
    with pytest.raises(FutureTimeout):
        third.result(timeout=0.3)  # a receiver waits for room
    assert buffer.get(None) is batches[0]
    third.result(timeout=10)  # room made, the third went in
    assert [buffer.get(0), buffer.get(0)] == batches[1:]
    putter.shutdown()
