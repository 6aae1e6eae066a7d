"""Deletes of landed messages, 10 receipt handles a call, done by the receiver threads.

As in a bare drain, each SQS thread both receives and deletes: before each receive it
deletes whatever has landed meanwhile, and once receiving is over it goes on deleting until
the load finishes. Half the threads of separate receivers and deleters: fewer context
switches and less kernel CPU for the same calls (README, Performance).

Handles go on one queue the threads share; each thread adds up what SQS refused.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence

from loader.faults import crash_point
from loader.sqs import SqsQueue, chunked


class Deleter:
    """Deletes what `delete()` is given, in the threads that serve it: each is announced with
    `expect()` before it starts, calls `delete_queued()` between receives, then
    `serve_until_finished()`."""

    def __init__(self, sqs: SqsQueue) -> None:
        self._sqs = sqs
        self._threads = 0
        self._work: queue.SimpleQueue[Sequence[str] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._finished = threading.Condition(self._lock)
        self._served = 0  # threads that have left serve_until_finished()
        self.failed = 0  # messages SQS did not delete (they are delivered again)
        self.errors: list[str] = []

    def __enter__(self) -> Deleter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.finish()

    def expect(self, threads: int) -> None:
        """`threads` more threads will serve (from the thread that will call `finish()`)."""
        self._threads += threads

    def delete(self, receipt_handles: Sequence[str]) -> None:
        for part in chunked(receipt_handles):
            self._work.put(part)

    def delete_queued(self) -> None:
        """Delete everything queued so far, without waiting for more."""
        while True:
            try:
                part = self._work.get_nowait()
            except queue.Empty:
                return
            if part is None:  # finishing already: leave it to serve_until_finished()
                self._work.put(None)
                return
            self._delete(part)

    def serve_until_finished(self) -> None:
        """Delete what comes until `finish()`."""
        try:
            while (part := self._work.get()) is not None:
                self._delete(part)
        finally:
            with self._finished:
                self._served += 1
                self._finished.notify_all()

    def finish(self) -> None:
        """Wait until everything given has been deleted or refused (every serving thread
        has emptied the queue and left)."""
        for _ in range(self._threads):
            self._work.put(None)
        with self._finished:
            self._finished.wait_for(lambda: self._served == self._threads)

    def _delete(self, part: Sequence[str]) -> None:
        try:
            failed = self._sqs.delete(part)
            crash_point("deleting")
            error = None
        except Exception as caught:  # counted, never lost: the messages come back
            failed, error = len(part), str(caught) or type(caught).__name__
        if failed:
            with self._lock:
                self.failed += failed
                if error and len(self.errors) < 10:
                    self.errors.append(error)
