"""`logins seed`: put messages on the queue, synthetic or verbatim from a JSONL file."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

from loader import logs
from loader import progress as live
from loader.errors import ConfigurationError
from loader.ingest.sqs import MAX_BATCH, MAX_BODY_BYTES, SqsQueue


@dataclass
class SeedStats:
    sent: int = 0
    skipped: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


def file_bodies(path: Path, skipped: list[str]) -> Iterator[str]:
    """Each line of the file, verbatim, as one body (its line ending removed).

    SQS cannot carry an empty body or one over 256 KiB; such lines are reported, not sent.
    """
    if not path.is_file():
        raise ConfigurationError(f"no such file: {path}")
    with path.open(encoding="utf-8", newline="") as handle:
        for number, line in enumerate(handle, start=1):
            body = line.removesuffix("\n").removesuffix("\r")
            if not body:
                skipped.append(f"line {number}: empty (SQS cannot send an empty body)")
            elif len(body.encode()) > MAX_BODY_BYTES:
                skipped.append(f"line {number}: larger than SQS's 256 KiB limit")
            else:
                yield body


def send_all(
    sqs: SqsQueue,
    bodies: Iterable[str],
    threads: int = 4,
    progress: bool = True,
    total: int | None = None,
) -> SeedStats:
    """Sends `bodies`; with `progress`, a bar on a terminal, else a line each tenth of
    `total` (each 1,000 messages when the total is unknown)."""
    stats = SeedStats()
    iterator = iter(bodies)
    with (
        ThreadPoolExecutor(max_workers=threads) as pool,
        live.bar("sent", total) if progress else nullcontext() as shown,
    ):
        shown_progress = live.CountProgress(shown, logs.printer("seed", progress), total)
        while True:
            # a bounded window of batches in flight, so a large --count streams
            window = [list(batch) for batch in _batches(iterator, threads * 4)]
            if not window:
                break
            for batch, failures in zip(window, pool.map(sqs.send, window), strict=True):
                stats.sent += len(batch) - len(failures)
                stats.refused.extend(f"{f.code}: {f.message}" for f in failures)
            shown_progress.update(stats.sent)
    return stats


def _batches(iterator: Iterator[str], how_many: int) -> Iterator[list[str]]:
    for _ in range(how_many):
        batch = list(islice(iterator, MAX_BATCH))
        if not batch:
            return
        yield batch
