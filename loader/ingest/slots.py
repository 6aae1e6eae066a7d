"""One dlt working folder per running loader, and per pipeline.

dlt's pipeline folder (state, pending load packages) must not be shared by two processes.
Each loader takes the first free slot (`<base>`, `<base>_2`, ...) under an exclusive file
lock, so several loaders can drain one queue at once, and a rerun after a crash finds the
crashed run's folder, and its unfinished load package, again.

The base name carries a short hash of the destination (host, port, database) and the queue
URL: a package one pipeline left behind is only ever finished by a loader of the same
pipeline, never into another database. The folders hold message bodies (plaintext PII)
while a load runs, so they are the owner's alone: 0700 folders, 0600 files.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dlt.destinations.impl.postgres.configuration import PostgresCredentials

from loader.errors import ConfigurationError

MAX_SLOTS = 64
LOCKS = ".locks"


def slot_base_name(pipeline_name: str, credentials: PostgresCredentials, queue_url: str) -> str:
    """`pipeline_name` and a hash of where the pipeline reads and writes (no secret in it)."""
    identity = f"{credentials.host}:{credentials.port}/{credentials.database}\n{queue_url}"
    return f"{pipeline_name}_{hashlib.sha256(identity.encode()).hexdigest()[:12]}"


def slot_names(base_name: str) -> Iterator[str]:
    yield base_name
    for number in range(2, MAX_SLOTS + 1):
        yield f"{base_name}_{number}"


@contextmanager
def locked_slot(pipelines_dir: Path, name: str) -> Iterator[bool]:
    """Holds slot `name` for the block if no running loader does; yields whether it does."""
    locks = pipelines_dir / LOCKS
    locks.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor = os.open(locks / f"{name}.lock", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)


@contextmanager
def pipeline_slot(pipelines_dir: Path, base_name: str) -> Iterator[str]:
    for name in slot_names(base_name):
        with locked_slot(pipelines_dir, name) as held:
            if held:
                make_private(pipelines_dir, name)
                yield name
                return
    raise ConfigurationError(f"more than {MAX_SLOTS} loaders share {pipelines_dir}")


@contextmanager
def owner_only_files() -> Iterator[None]:
    """What the process creates meanwhile (dlt's folders and files) is the owner's alone.
    The umask is process-wide: hold this only around the load."""
    previous = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(previous)


def make_private(pipelines_dir: Path, name: str) -> None:
    """0700 / 0600 for what an earlier run (or an older loader) left with laxer modes."""
    for folder in (pipelines_dir, pipelines_dir / LOCKS):
        _chmod(folder, 0o700)
    slot = pipelines_dir / name
    if not slot.is_dir():
        return
    _chmod(slot, 0o700)
    for root, folders, files in os.walk(slot):
        for folder in folders:
            _chmod(Path(root, folder), 0o700)
        for file in files:
            _chmod(Path(root, file), 0o600)


def _chmod(path: Path, mode: int) -> None:
    try:
        if path.stat().st_mode & 0o777 != mode:
            path.chmod(mode)
    except (FileNotFoundError, PermissionError):
        pass  # gone meanwhile, or not ours (a shared pipelines dir): nothing of ours to hide
