"""One dlt working folder per running loader.

dlt's pipeline folder (state, pending load packages) must not be shared by two processes.
Each loader takes the first free slot (`sqs_logins`, `sqs_logins_2`, ...) under an exclusive
file lock, so several loaders can drain one queue at once, and a rerun after a crash finds the
crashed run's folder, and its unfinished load package, again.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from loader.errors import ConfigurationError

MAX_SLOTS = 64


@contextmanager
def pipeline_slot(pipelines_dir: Path, base_name: str) -> Iterator[str]:
    locks = pipelines_dir / ".locks"
    locks.mkdir(parents=True, exist_ok=True)
    for number in range(1, MAX_SLOTS + 1):
        name = base_name if number == 1 else f"{base_name}_{number}"
        descriptor = os.open(locks / f"{name}.lock", os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            continue
        try:
            yield name
        finally:
            fcntl.flock(descriptor, fcntl.LOCK_UN)
            os.close(descriptor)
        return
    raise ConfigurationError(f"more than {MAX_SLOTS} loaders share {pipelines_dir}")
