"""Keep received messages hidden for as long as this loader holds them.

SQS hides a received message for its visibility timeout; if the loader still holds it then
(a slow or retried load), another consumer would get it and both would process it. The
keeper extends the timeout of every batch held longer than a third of it. In a normal run a
batch is deleted long before that, so it costs no SQS call at all.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from itertools import chain

from loader import logs
from loader.ingest.sqs import SqsQueue, SqsUnavailable, chunked


class VisibilityKeeper:
    def __init__(self, sqs: SqsQueue, visibility_timeout: int) -> None:
        self._sqs = sqs
        self._timeout = visibility_timeout
        # by the id of each batch's handle list, which the keeper holds (so the id is its own)
        self._held: dict[int, tuple[list[str], float]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="visibility", daemon=True)
        self.extended = 0

    def __enter__(self) -> VisibilityKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def hold(self, handles: list[str]) -> None:
        """Keep hidden the messages of one received batch, by its list of receipt handles."""
        with self._lock:
            self._held[id(handles)] = (handles, time.monotonic())

    def drop(self, handle_lists: Iterable[list[str]]) -> None:
        with self._lock:
            for handles in handle_lists:
                self._held.pop(id(handles), None)

    def take_all(self) -> list[list[str]]:
        """Stop keeping every batch still held; returns their handle lists (to release them).
        Everything received that was not handed to the deleter: wherever the main thread was
        when it stopped (an interrupt can fall between two of its steps)."""
        with self._lock:
            held = [handles for handles, _ in self._held.values()]
            self._held.clear()
        return held

    def _run(self) -> None:
        # check often enough that a batch is extended with a good margin before its timeout
        interval = max(0.5, self._timeout / 8)
        while not self._stop.wait(interval):
            try:
                self.extend_due()
            except Exception as error:  # keep keeping: a lost extension only risks a redelivery
                logs.say(
                    "load.visibility_not_extended",
                    f"could not extend visibility: {error}",
                    prefix="[load] ",
                    level=logging.WARNING,
                    error_class=type(error).__name__,
                )

    def extend_due(self) -> None:
        now = time.monotonic()
        with self._lock:
            due = [
                handles
                for handles, since in self._held.values()
                if now - since >= self._timeout / 3
            ]
            for handles in due:
                self._held[id(handles)] = (handles, now)
        for part in chunked(list(chain.from_iterable(due))):
            try:
                self._sqs.extend(part, self._timeout)
                self.extended += len(part)
            except SqsUnavailable:
                pass  # deleted meanwhile, or SQS down: the message may come back, and dedupes
