"""Deleter threads: remove landed messages from SQS, 10 receipt handles a call, in the
background while the next chunk is received and loaded.

Handles go on one queue the threads share; each thread adds up what SQS refused. One put
per 10 messages and no future for each (a Future and its Condition cost the main thread
about as much as the rest of its chunk bookkeeping).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence

from loader.faults import crash_point
from loader.ingest.sqs import SqsQueue, chunked


class Deleter:
    """`threads` threads deleting what `delete()` is given, until `finish()`."""

    def __init__(self, sqs: SqsQueue, threads: int) -> None:
        self._sqs = sqs
        self._work: queue.SimpleQueue[Sequence[str] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self.failed = 0  # messages SQS did not delete (they are delivered again)
        self.deleted = 0  # and those it did, so far (for the live progress line)
        self.errors: list[str] = []
        self._threads = [
            threading.Thread(target=self._delete_until_finished, name=f"deleter-{n}")
            for n in range(max(1, threads))
        ]

    def __enter__(self) -> Deleter:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.finish()

    def delete(self, receipt_handles: Sequence[str]) -> None:
        for part in chunked(receipt_handles):
            self._work.put(part)

    def finish(self) -> None:
        """Wait until everything given has been deleted or refused."""
        for _ in self._threads:
            self._work.put(None)
        for thread in self._threads:
            if thread.is_alive():
                thread.join()

    def _delete_until_finished(self) -> None:
        while (part := self._work.get()) is not None:
            try:
                failed = self._sqs.delete(part)
                crash_point("deleting")
                error = None
            except Exception as caught:  # counted, never lost: the messages come back
                failed, error = len(part), str(caught) or type(caught).__name__
            with self._lock:
                self.deleted += len(part) - failed
                if failed:
                    self.failed += failed
                    if error and len(self.errors) < 10:
                        self.errors.append(error)
