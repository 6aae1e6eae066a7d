"""Receiver threads: long-poll SQS in parallel into a bounded buffer, handed out in chunks.

A chunk (one dlt load) is handed out batch by batch while dlt extracts it to disk, so it is
never in memory as a whole: what stays are its receipt handles. The buffer holds what comes
in while a chunk is normalized and loaded, bounded in messages and in body size, so memory
stays bounded however large the queue, the chunks or the messages.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from itertools import chain

from loader.faults import crash_point
from loader.ingest.batches import Chunk, ReceivedBatch, bounded
from loader.ingest.sqs import MAX_BATCH, SqsQueue

_DONE = object()

# What the buffer may hold: a second or so of receiving at the emulator's pace, enough to
# keep the receivers busy while the previous chunk is normalized and loaded.
BUFFER_MESSAGES = 10_000
BUFFER_BODY_SIZE = 8 * 1024 * 1024
# The longest a batch waits in the buffer for others before the main thread takes it.
HAND_OUT_SECONDS = 0.5


class _Budget:
    """How many more messages may be received (`--max-messages`), shared by the threads."""

    def __init__(self, limit: int | None) -> None:
        self._left = limit
        self._lock = threading.Lock()

    def take(self, wanted: int) -> int:
        if self._left is None:
            return wanted
        with self._lock:
            granted = min(wanted, self._left)
            self._left -= granted
            return granted

    def give_back(self, unused: int) -> None:
        if self._left is not None and unused:
            with self._lock:
                self._left += unused


class _Buffer:
    """Batches on their way to the main thread. A receiver puts its batch only while the
    buffer holds fewer than `max_messages` messages and `max_size` body characters, so it
    overshoots by at most one batch a thread.

    The main thread waits only when the buffer is empty, and is then woken once a hand-out's
    worth is buffered (a quarter of the bounds), or a thread is done, or HAND_OUT_SECONDS
    passed with less; whatever is there it takes without waiting. Woken for every batch, it
    cost a context switch or two per 10 messages (the loader's main thread: 14,000 voluntary
    switches per 50,000 messages)."""

    def __init__(self, max_messages: int, max_size: int) -> None:
        self._items: deque[object] = deque()
        self._messages = 0
        self._size = 0
        self._done = 0  # _DONE items in the buffer
        self._max_messages = max_messages
        self._max_size = max_size
        self._hand_out_messages = max(1, max_messages // 4)
        self._hand_out_size = max(1, max_size // 4)
        # as queue.Queue does: one lock, a condition for each side, one waiter woken at a time
        lock = threading.Lock()
        self._not_empty = threading.Condition(lock)
        self._not_full = threading.Condition(lock)

    def _full(self) -> bool:
        return self._messages >= self._max_messages or self._size >= self._max_size

    def _worth_waking_for(self) -> bool:
        return (
            self._done > 0
            or self._messages >= self._hand_out_messages
            or self._size >= self._hand_out_size
        )

    def put(self, batch: ReceivedBatch) -> None:
        with self._not_full:
            while self._full():
                self._not_full.wait()
            self._items.append(batch)
            self._messages += len(batch)
            self._size += batch.body_size
            if self._worth_waking_for():
                self._not_empty.notify()

    def put_done(self) -> None:
        """A thread's last word: never waits for room."""
        with self._not_full:
            self._items.append(_DONE)
            self._done += 1
            self._not_empty.notify()

    def get(self, timeout: float | None) -> object | None:
        """The oldest item, or None if none came within `timeout` seconds."""
        with self._not_empty:
            if not self._items and not self._wait_for_hand_out(timeout):
                return None
            item = self._items.popleft()
            if item is _DONE:
                self._done -= 1
            elif isinstance(item, ReceivedBatch):
                self._messages -= len(item)
                self._size -= item.body_size
                if not self._full():
                    self._not_full.notify()
            return item

    def _wait_for_hand_out(self, timeout: float | None) -> bool:
        """The buffer is empty: whether something comes within `timeout`, waking when a
        hand-out's worth is in, else with whatever came within HAND_OUT_SECONDS."""
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            left = HAND_OUT_SECONDS if end is None else max(0.0, end - time.monotonic())
            if self._not_empty.wait_for(self._worth_waking_for, min(left, HAND_OUT_SECONDS)):
                return True
            if self._items:
                return True  # less than a hand-out's worth, but it has waited long enough
            if end is not None and time.monotonic() >= end:
                return False

    def empty(self) -> bool:
        with self._not_empty:
            return not self._items


class Receiver:
    """Drains a queue with `threads` receivers until it is empty or `max_messages` arrived."""

    def __init__(
        self,
        sqs: SqsQueue,
        threads: int,
        max_messages: int | None,
        chunk_size: int,
        chunk_body_size: int,
        on_receive: Callable[[ReceivedBatch], None] | None = None,
    ) -> None:
        self._sqs = sqs
        self._on_receive = on_receive
        self._budget = _Budget(max_messages)
        self._chunk_size = chunk_size
        self._chunk_body_size = chunk_body_size
        self._buffer = _Buffer(
            max(2 * MAX_BATCH, min(chunk_size, BUFFER_MESSAGES)),
            min(chunk_body_size, BUFFER_BODY_SIZE),
        )
        self._stop = threading.Event()
        self._errors: list[BaseException] = []
        self._threads = [
            threading.Thread(target=self._receive_until_drained, name=f"receiver-{n}", daemon=True)
            for n in range(max(1, threads))
        ]
        self._running = len(self._threads)  # threads that have not yet put their _DONE

    def __enter__(self) -> Receiver:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _receive_until_drained(self) -> None:
        try:
            while not self._stop.is_set():
                wanted = self._budget.take(MAX_BATCH)
                if wanted == 0:
                    return
                messages = self._sqs.receive(wanted)
                self._budget.give_back(wanted - len(messages))
                if not messages:
                    return  # a long poll came back empty: the queue is drained
                batch = ReceivedBatch.from_messages(messages, datetime.now(UTC))
                if self._on_receive:
                    self._on_receive(batch)
                crash_point("received")
                self._buffer.put(batch)
        except BaseException as error:  # handed to the main thread, which reports it
            self._errors.append(error)
        finally:
            self._buffer.put_done()

    def chunks(self, chunk_seconds: float) -> Iterator[Chunk]:
        """Chunks of about `chunk_size` messages, or of `chunk_body_size` body characters if
        that comes first, each cut `chunk_seconds` after its first message anyway. Go through
        each chunk before asking for the next."""
        while (first := self._next_batch(None)) is not None:
            received = chain([first], self._batches_until(time.monotonic() + chunk_seconds))
            yield Chunk(bounded(received, self._chunk_size, self._chunk_body_size))
        if self._errors:
            raise self._errors[0]

    def _batches_until(self, deadline: float) -> Iterator[ReceivedBatch]:
        while (batch := self._next_batch(deadline)) is not None:
            yield batch

    def _next_batch(self, deadline: float | None) -> ReceivedBatch | None:
        """The next batch received; None at `deadline` (monotonic) or once every thread is done."""
        while self._running:
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            item = self._buffer.get(timeout=timeout)
            if item is None:
                return None  # timed out
            if item is _DONE:
                self._running -= 1
                continue
            return item  # type: ignore[return-value]
        return None

    def stop(self) -> list[ReceivedBatch]:
        """Stop receiving; returns what was received but not yet handed out."""
        self._stop.set()
        held: list[ReceivedBatch] = []
        while any(thread.is_alive() for thread in self._threads) or not self._buffer.empty():
            item = self._buffer.get(timeout=0.1)
            if isinstance(item, ReceivedBatch):
                held.append(item)
        return held
