"""Receiver threads: long-poll SQS in parallel into a bounded buffer, handed out in chunks.

The buffer holds at most about one chunk, so memory stays bounded however large the queue,
and receiving goes on while the previous chunk is being loaded.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from loader.faults import crash_point
from loader.source import ReceivedBatch
from loader.sqs import MAX_BATCH, SqsQueue

_DONE = object()


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


class Receiver:
    """Drains a queue with `threads` receivers until it is empty or `max_messages` arrived."""

    def __init__(
        self,
        sqs: SqsQueue,
        threads: int,
        max_messages: int | None,
        buffer_messages: int,
        on_receive: Callable[[ReceivedBatch], None] | None = None,
    ) -> None:
        self._sqs = sqs
        self._on_receive = on_receive
        self._budget = _Budget(max_messages)
        self._buffer: queue.Queue[object] = queue.Queue(
            maxsize=max(2, buffer_messages // MAX_BATCH)
        )
        self._stop = threading.Event()
        self._errors: list[BaseException] = []
        self._threads = [
            threading.Thread(target=self._receive_until_drained, name=f"receiver-{n}", daemon=True)
            for n in range(max(1, threads))
        ]

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
            self._buffer.put(_DONE)

    def chunks(self, chunk_size: int, chunk_seconds: float) -> Iterator[list[ReceivedBatch]]:
        """Chunks of about `chunk_size` messages; a chunk is cut after `chunk_seconds` anyway."""
        running = len(self._threads)
        chunk: list[ReceivedBatch] = []
        count = 0
        deadline = 0.0
        while running:
            timeout = max(0.0, deadline - time.monotonic()) if chunk else None
            try:
                item = self._buffer.get(timeout=timeout)
            except queue.Empty:
                item = None
            if item is _DONE:
                running -= 1
                continue
            if isinstance(item, ReceivedBatch):
                if not chunk:
                    deadline = time.monotonic() + chunk_seconds
                chunk.append(item)
                count += len(item)
            if chunk and (count >= chunk_size or time.monotonic() >= deadline):
                yield chunk
                chunk, count = [], 0
        if chunk:
            yield chunk
        if self._errors:
            raise self._errors[0]

    def stop(self) -> list[ReceivedBatch]:
        """Stop receiving; returns what was received but not yet handed out."""
        self._stop.set()
        held: list[ReceivedBatch] = []
        while any(thread.is_alive() for thread in self._threads) or not self._buffer.empty():
            try:
                item = self._buffer.get(timeout=0.1)
            except queue.Empty:
                continue
            if isinstance(item, ReceivedBatch):
                held.append(item)
        return held
