"""Crash points, for the delivery-guarantee tests.

With LOGINS_CRASH_AT=<point> the loader SIGKILLs itself when it reaches that point: no
cleanup, no `finally`, exactly what a machine failure or an OOM kill does. The points are the
dangerous moments of a load: `received` (holding messages, nothing loaded), `extracted` and
`normalized` (a dlt load package on disk, not loaded), `committed` (loaded, not yet deleted
from SQS) and `deleting` (some of the chunk deleted).
"""

from __future__ import annotations

import os
import signal

CRASH_POINTS = ("received", "extracted", "normalized", "committed", "deleting")


def crash_point(name: str) -> None:
    if os.environ.get("LOGINS_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
