"""Live progress, only where someone watches: stderr is a terminal and the log format is
human. A tqdm bar on stderr, redrawn below the command's own lines (which go above it,
through `logs.use_writer`). Elsewhere (a scheduler, a pipe, json logs) there is no bar: the
command's lines and its summary only.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from loader import logs

# the bar's redraws: often enough to look live, seldom enough to cost nothing
REFRESH_SECONDS = 0.25
# how often a live load asks SQS for the queue's depth (one GetQueueAttributes call)
DEPTH_SECONDS = 2.0
# a load that received nothing for this long is waiting for messages
WAITING_SECONDS = 1.0

Depth = Callable[[], "tuple[int, int] | None"]  # (visible, in flight), None if SQS won't say


def live() -> bool:
    """Whether to draw: human log format, stderr a terminal."""
    if logs.current_format() != logs.HUMAN:
        return False
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed
        return False


@contextmanager
def bar(desc: str, total: int | None, unit: str = "msg") -> Iterator[Any]:
    """A tqdm bar on stderr while the block runs, the command's lines drawn above it; None
    where there is no one to watch."""
    if not live():
        yield None
        return
    from tqdm import tqdm  # only once a terminal is there to draw on

    shown = tqdm(
        desc=desc,
        total=total,
        unit=unit,
        file=sys.stderr,
        dynamic_ncols=True,
        smoothing=0.1,
        mininterval=REFRESH_SECONDS,
    )
    logs.use_writer(lambda line, stream: tqdm.write(line, file=stream))
    try:
        yield shown
    finally:
        logs.use_writer(None)
        shown.close()


class LoadProgress:
    """`logins load`'s live line: received, landed and deleted, the rate, and an ETA from
    the queue's depth (received + what is still visible), which is polled live: while the
    load waits for messages, the line shows what SQS holds. Counts come from the load's
    threads; one thread of its own draws."""

    def __init__(self, shown: Any, depth: Depth, visible: int, max_messages: int | None) -> None:
        self._bar = shown
        self._depth = depth
        self._visible: int | None = visible
        self._in_flight: int | None = None
        self._max = max_messages
        self._lock = threading.Lock()
        self._received = 0
        self._last_received_at = time.monotonic()
        self.landed = 0
        self.deleted: Callable[[], int] = lambda: 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._draw_until_stopped, name="progress")

    def __enter__(self) -> LoadProgress:
        if self._bar is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._bar is not None:
            self._stop.set()
            self._thread.join()
            self.draw(final=True)

    def received(self, messages: int) -> None:
        """From the receiver threads, per batch."""
        if self._bar is None:
            return
        with self._lock:
            self._received += messages
            self._last_received_at = time.monotonic()

    def _draw_until_stopped(self) -> None:
        asked = 0.0
        while not self._stop.wait(REFRESH_SECONDS):
            if time.monotonic() - asked >= DEPTH_SECONDS:
                asked = time.monotonic()
                depth = self._depth()
                if depth is not None:
                    self._visible, self._in_flight = depth
            self.draw()

    def draw(self, final: bool = False) -> None:
        with self._lock:
            received, quiet = self._received, time.monotonic() - self._last_received_at
        if final or quiet <= WAITING_SECONDS:
            doing = "received"
        else:  # nothing comes: a chunk is being landed, or the receivers wait on SQS
            doing = "landing" if self.landed < received else "waiting for messages"
        total = received + self._visible if self._visible is not None else None
        if total is not None and self._max is not None:
            total = min(total, self._max)
        queue = "" if self._visible is None else f", queue {self._visible:,} waiting"
        if self._in_flight is not None:
            queue += f", {self._in_flight:,} in flight"
        self._bar.set_description_str(doing, refresh=False)
        # a total of 0 is no total to tqdm's eyes: an empty queue shows a count, not a bar
        self._bar.total = max(total, received) or None if total is not None else None
        self._bar.n = received
        self._bar.set_postfix_str(
            f"landed {self.landed:,}, deleted {self.deleted():,}{queue}", refresh=False
        )
        self._bar.refresh()


class CountProgress:
    """A count towards a total (`logins seed`): a bar on a terminal; elsewhere a line each
    tenth of the way (each `every` messages without a total), through `say`."""

    def __init__(self, shown: Any, say: logs.Say, total: int | None, every: int = 1000) -> None:
        self._bar = shown
        self._say = say
        self._total = total
        self._step = max(1, total // 10) if total else every
        self._said = 0
        self._started = time.monotonic()

    def update(self, done: int) -> None:
        if self._bar is not None:
            self._bar.n = done
            self._bar.refresh()
            return
        if done // self._step <= self._said // self._step or done == self._total:
            return  # the summary line says the last count
        self._said = done
        rate = done / max(time.monotonic() - self._started, 1e-9)
        of = f" of {self._total:,}" if self._total else ""
        self._say(
            f"sent {done:,}{of} ({rate:,.0f} msg/s)",
            event="progress",
            sent=done,
            total=self._total,
            rate=round(rate, 1),
        )
