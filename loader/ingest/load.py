"""`logins load`: drain SQS into Postgres `raw` through dlt, deleting only what has committed.

Per chunk: dlt extracts messages to disk as the receiver threads bring them -> normalize,
COPY, then dlt records the load in `_dlt_loads` (receiving goes on meanwhile) -> delete that
chunk's messages from SQS.
A message is deleted only after the load holding it committed. A failed load is retried with
backoff; if it still fails, its messages are made visible again and nothing is deleted. A
crash at any point only means SQS delivers some messages again, and staging keeps one row per
message id; a load package a crash left on disk is finished by the next run. Ctrl-C releases
what the load holds and ends it as an interruption (exit 130).

No body reaches the output: Postgres quotes a refused row in its error detail, which dlt logs
(once a retry) and keeps on disk; the loader keeps only the first line of such errors and
removes dlt's records of failures.
"""

from __future__ import annotations

import gc
import logging
import re
import shutil
import signal
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path

import dlt
from dlt.common.pipeline import get_dlt_pipelines_dir
from dlt.destinations.impl.postgres.configuration import PostgresCredentials

from loader import logs, warehouse
from loader import progress as live_progress
from loader.errors import Interrupted, LoadFailed, SqsUnavailable
from loader.faults import crash_point
from loader.ingest import dlt_settings, raw_table
from loader.ingest.batches import Chunk, ReceivedBatch
from loader.ingest.deleter import Deleter
from loader.ingest.receiver import Receiver
from loader.ingest.slots import (
    locked_slot,
    make_private,
    owner_only_files,
    pipeline_slot,
    slot_base_name,
    slot_names,
)
from loader.ingest.source import sqs_logins
from loader.ingest.sqs import SqsQueue, chunked
from loader.ingest.visibility import VisibilityKeeper
from loader.names import DLT_LOADS, RAW_TABLE
from loader.settings import LoaderSettings, SqsSettings, roles_settings
from loader.warehouse.attached_code import refuse_foreign_code

FILE_FORMAT = "csv"  # dlt's Postgres COPY path

_Say = logs.Say
_SayText = Callable[[str], None]  # what the public functions take: any printer of lines


@dataclass
class LoadStats:
    received: int = 0
    landed: int = 0
    deleted: int = 0
    delete_failed: int = 0
    chunks: int = 0
    pending_packages_finished: int = 0
    seconds: float = 0.0
    delete_errors: list[str] = field(default_factory=list)
    # dlt's ids of the loads this run committed from what it received (not packages an
    # earlier run left): the summary's "this run" counts are of these loads' messages
    load_ids: list[str] = field(default_factory=list)


def make_pipeline(
    settings: LoaderSettings, credentials: PostgresCredentials, name: str | None = None
) -> dlt.Pipeline:
    dlt_settings.register()
    return dlt.pipeline(
        pipeline_name=name or settings.pipeline_name,
        destination=dlt.destinations.postgres(credentials=credentials),
        dataset_name=settings.dataset_name,
        pipelines_dir=settings.pipelines_dir,
    )


def loader_queue(sqs_settings: SqsSettings, settings: LoaderSettings) -> SqsQueue:
    """The queue as a load uses it: a connection for each receiver and deleter thread. A
    caller that also reports on the queue passes it to `run_load`, so a run builds one client."""
    return SqsQueue(sqs_settings, max_connections=2 * settings.receivers + 2)


def run_load(
    sqs_settings: SqsSettings,
    settings: LoaderSettings,
    credentials: PostgresCredentials,
    max_messages: int | None = None,
    progress: bool = True,
    queue: SqsQueue | None = None,
    waiting: Mapping[str, int] | None = None,
) -> LoadStats:
    """`progress`: say what happens (and on a terminal, show it live). `queue`: from
    `loader_queue`; `waiting`: its visible and in-flight counts, when the caller just asked
    (one GetQueueAttributes fewer)."""
    say = _printer(progress)
    # Check both ends before touching a message: a refusal leaves the queue as it was.
    with warehouse.connect(credentials) as conn:
        refuse_foreign_code(conn, settings.dataset_name, roles_settings().role("owner"))
    sqs = queue or loader_queue(sqs_settings, settings)
    if waiting is None:
        waiting = sqs.approximate_counts()
    say(
        f"queue {sqs_settings.queue_name}: about {waiting['visible']:,} waiting, "
        f"{waiting['in_flight']:,} in flight",
        event="queue",
        queue=sqs_settings.queue_name,
        visible=waiting["visible"],
        in_flight=waiting["in_flight"],
    )
    base_name = slot_base_name(settings.pipeline_name, credentials, sqs_settings.queue_url)
    with owner_only_files(), pipeline_slot(_pipelines_dir(settings), base_name) as name:
        pipeline = _private_pipeline(settings, credentials, name)
        with (
            _long_lived_objects_frozen(),
            _progress_line(sqs, waiting["visible"], max_messages, progress) as live,
        ):
            return _drain(
                pipeline, sqs, sqs_settings, settings, credentials, max_messages, say, live
            )


@contextmanager
def _progress_line(
    sqs: SqsQueue, visible: int, max_messages: int | None, enabled: bool
) -> Iterator[live_progress.LoadProgress]:
    """The load's live line on a terminal (a no-op elsewhere)."""

    def depth() -> tuple[int, int] | None:
        try:
            counts = sqs.approximate_counts()
        except SqsUnavailable:
            return None
        return counts["visible"], counts["in_flight"]

    with (
        live_progress.bar("received", visible) if enabled else nullcontext() as shown,
        live_progress.LoadProgress(shown, depth, visible, max_messages) as live,
    ):
        yield live


def land_batches(
    settings: LoaderSettings,
    credentials: PostgresCredentials,
    loads: Iterable[Iterable[ReceivedBatch]],
    say: _SayText,
    name: str = "land",
) -> int:
    """Lands already received batches into raw without SQS, one dlt load per item of `loads`,
    as `logins load` does (raw's indexes and statistics included): for benchmarks and
    backfills. Returns the messages landed."""
    say = _lines_only(say)
    # a working folder of its own per database, as a load's: two landings never share one
    base_name = slot_base_name(name, credentials, "")
    with owner_only_files(), pipeline_slot(_pipelines_dir(settings), base_name) as slot:
        pipeline = make_pipeline(settings, credentials, slot)
        landed = 0
        started = time.monotonic()
        for batches in loads:
            chunk = Chunk(batches)
            _load_chunk(pipeline, chunk, settings, say)
            _prepare_raw_table(credentials, settings)
            landed += chunk.messages
            seconds = time.monotonic() - started
            say(
                f"landed {landed:,} ({seconds:.0f} s)",
                event="landed",
                landed=landed,
                seconds=seconds,
            )
    _refresh_statistics(credentials, settings)
    return landed


def settle_pending_packages(
    settings: LoaderSettings, credentials: PostgresCredentials, queue_url: str, say: _SayText
) -> int:
    """Finish (or, if they cannot be, drop) the load packages crashed loaders of this pipeline
    (this destination and `queue_url`) left on disk, in every slot no running loader holds,
    and remove dlt's records of failed jobs (they quote bodies). Returns the packages
    finished. For erasure: afterwards no package of this pipeline can bring back a body it
    erases, except one a running loader holds (said through `say`).

    A dropped package loses nothing: its messages were never deleted from SQS."""
    say = _lines_only(say)
    warehouse.check(credentials)  # a refusal must not read as a package at fault
    pipelines_dir = _pipelines_dir(settings)
    base_name = slot_base_name(settings.pipeline_name, credentials, queue_url)
    finished = 0
    checked = False
    with owner_only_files():
        for name in slot_names(base_name):
            if not (pipelines_dir / name).is_dir():
                continue
            with locked_slot(pipelines_dir, name) as held:
                if not held:
                    say(
                        f"slot {name} is held by a running loader: its packages are left to it",
                        event="slot_held",
                        slot=name,
                    )
                    continue
                make_private(pipelines_dir, name)
                pipeline = _private_pipeline(settings, credentials, name)
                if not checked and _pending_packages(pipeline):
                    # dlt loads them on its own connections, through `<raw>,public`
                    with warehouse.connect(credentials) as conn:
                        refuse_foreign_code(
                            conn, settings.dataset_name, roles_settings().role("owner")
                        )
                    checked = True
                finished += _finish_pending_packages(pipeline, settings, say)
                _remove_failure_records(pipeline)
    _warn_of_unhashed_slots(pipelines_dir, settings.pipeline_name, say)
    return finished


def _warn_of_unhashed_slots(pipelines_dir: Path, pipeline_name: str, say: _Say) -> None:
    """Slots of loaders from before the hashed names: which database their packages were
    for is unknown, so they are never finished; their messages were not deleted from SQS."""
    pattern = re.compile(rf"{re.escape(pipeline_name)}(_\d{{1,2}})?")
    old = sorted(
        p.name for p in pipelines_dir.glob(f"{pipeline_name}*") if pattern.fullmatch(p.name)
    )
    if old:
        say(
            f"{pipelines_dir} holds working folders of an older loader ({', '.join(old)}) that "
            "may keep message bodies: delete them (SQS still has any message they held)",
            event="old_working_folders",
            level=logging.WARNING,
            folders=len(old),
        )


def _pipelines_dir(settings: LoaderSettings) -> Path:
    return Path(settings.pipelines_dir or get_dlt_pipelines_dir())


def _private_pipeline(
    settings: LoaderSettings, credentials: PostgresCredentials, name: str
) -> dlt.Pipeline:
    pipeline = make_pipeline(settings, credentials, name)
    _hide_bodies_from_dlt_log()  # after make_pipeline: it sets dlt's logger up
    return pipeline


@contextmanager
def _long_lived_objects_frozen() -> Iterator[None]:
    """dlt, pyarrow and boto3 leave ~100k objects that live as long as the process; out of the
    collector's sight, its full passes stop walking them again and again (GC per 100k messages:
    0.5-0.6 s -> 0.3 s). Unfrozen after, for a caller that runs loads in-process."""
    gc.collect()  # garbage now would otherwise stay frozen for good
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _drain(
    pipeline: dlt.Pipeline,
    sqs: SqsQueue,
    sqs_settings: SqsSettings,
    settings: LoaderSettings,
    credentials: PostgresCredentials,
    max_messages: int | None,
    say: _Say,
    live: live_progress.LoadProgress,
) -> LoadStats:
    started = time.monotonic()
    stats = LoadStats()
    stats.pending_packages_finished = _finish_pending_packages(pipeline, settings, say)

    deleter = Deleter(sqs, settings.receivers)
    keeper = VisibilityKeeper(sqs, sqs_settings.visibility_timeout_seconds)
    live.deleted = lambda: deleter.deleted

    def on_receive(batch: ReceivedBatch) -> None:
        keeper.hold(batch.receipt_handles)
        live.received(len(batch))

    receiver = Receiver(
        sqs,
        settings.receivers,
        max_messages,
        settings.chunk_size,
        settings.chunk_bytes,
        on_receive=on_receive,
    )
    try:
        with deleter, keeper, receiver:
            try:
                for chunk in receiver.chunks(settings.chunk_seconds):
                    try:
                        stats.load_ids += _load_chunk(pipeline, chunk, settings, say)
                    except LoadFailed:
                        stats.received += chunk.messages
                        _release_held(sqs, keeper, receiver)
                        raise
                    count = chunk.messages
                    stats.received += count
                    stats.landed += count
                    stats.chunks += 1
                    live.landed = stats.landed
                    if stats.chunks == 1:
                        _prepare_raw_table(credentials, settings)
                    crash_point("committed")
                    deleter.delete(chunk.receipt_handles())
                    keeper.drop(chunk.handle_lists)
                    rate = stats.landed / max(time.monotonic() - started, 1e-9)
                    say(
                        f"chunk {stats.chunks}: landed {count:,} messages in "
                        f"{settings.dataset_name}.{RAW_TABLE} (total {stats.landed:,}, "
                        f"{rate:,.0f} msg/s)",
                        event="chunk",
                        chunk=stats.chunks,
                        messages=count,
                        landed=stats.landed,
                        rate=round(rate, 1),
                    )
            except KeyboardInterrupt:
                raise _interrupted(sqs, keeper, receiver) from None
    finally:
        # leaving `with deleter` waited for every delete given to it
        stats.delete_failed, stats.delete_errors = deleter.failed, deleter.errors
        stats.deleted = stats.landed - stats.delete_failed
        stats.seconds = time.monotonic() - started

    if stats.landed == 0:
        _ensure_raw_table(pipeline, credentials, settings, say)
    else:
        _refresh_statistics(credentials, settings)
    _prune_loaded_packages(pipeline, settings.keep_loaded_packages)
    if stats.delete_failed:
        detail = f" ({stats.delete_errors[0]})" if stats.delete_errors else ""
        raise SqsUnavailable(
            f"landed {stats.landed:,} messages but SQS did not delete {stats.delete_failed:,} of "
            f"them{detail}; they will be delivered again and kept once in staging"
        )
    return stats


def _release_held(sqs: SqsQueue, keeper: VisibilityKeeper, receiver: Receiver) -> int:
    """Make what this run received and has not handed to the deleter visible again at once
    (not after the visibility timeout). Returns how many messages."""
    receiver.stop()  # no receive after this; all it received, the keeper holds
    handles = list(chain.from_iterable(keeper.take_all()))
    _release(sqs, handles)
    return len(handles)


def _interrupted(sqs: SqsQueue, keeper: VisibilityKeeper, receiver: Receiver) -> Interrupted:
    # a second Ctrl-C must not cut the release short: the messages would stay hidden
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        released = _release_held(sqs, keeper, receiver)
    finally:
        signal.signal(signal.SIGINT, previous)
    return Interrupted(
        f"interrupted: {released:,} received messages were released and are visible again for "
        "the next run; what had landed stays landed"
    )


def _raise_if_interrupted(error: BaseException) -> None:
    """dlt wraps a Ctrl-C in its own exception: it must not read as a failed load (retried,
    or a package dropped)."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, KeyboardInterrupt):
            raise KeyboardInterrupt from None
        cause = cause.__cause__ or cause.__context__


def _load_chunk(
    pipeline: dlt.Pipeline, chunk: Chunk, settings: LoaderSettings, say: _Say
) -> list[str]:
    """Extract (as the batches come) and normalize to a load package on disk, then load it
    (with retries). Returns the ids of the loads committed."""
    try:
        pipeline.extract(sqs_logins(chunk), loader_file_format=FILE_FORMAT)
        crash_point("extracted")
        pipeline.normalize()
        crash_point("normalized")
    except Exception as error:
        _raise_if_interrupted(error)
        raise LoadFailed(
            f"could not prepare {chunk.messages:,} messages for loading ({_reason(error)}); "
            "none was deleted from SQS and they are visible again for the next run"
        ) from error
    return _load_with_retries(pipeline, settings, say, f"{chunk.messages:,} messages")


def _load_with_retries(
    pipeline: dlt.Pipeline, settings: LoaderSettings, say: _Say, what: str
) -> list[str]:
    """Loads the normalized packages; returns the ids of the loads committed."""
    delay = settings.retry_backoff_seconds
    for attempt in range(1, settings.load_attempts + 1):
        try:
            info = pipeline.load()
            info.raise_on_failed_jobs()
            return list(info.loads_ids)
        except Exception as error:
            _raise_if_interrupted(error)
            _remove_failure_records(pipeline)
            if attempt == settings.load_attempts:
                raise LoadFailed(
                    f"could not load {what} into Postgres after {attempt} attempts "
                    f"({_reason(error)}); none was deleted from SQS and they are visible again "
                    "for the next run"
                ) from error
            say(
                f"load failed ({_reason(error)}); retry {attempt}/{settings.load_attempts - 1} "
                f"in {delay:.0f} s",
                event="retry",
                level=logging.WARNING,
                error_class=type(error).__name__,
                attempt=attempt,
                retries=settings.load_attempts - 1,
                delay_seconds=delay,
            )
            time.sleep(delay)
            delay *= 2


def _release(sqs: SqsQueue, handles: list[str]) -> None:
    for part in chunked(handles):
        try:
            sqs.release(part)
        except SqsUnavailable:
            return  # they become visible when their visibility timeout ends


def _finish_pending_packages(pipeline: dlt.Pipeline, settings: LoaderSettings, say: _Say) -> int:
    """Load what an interrupted run left extracted or normalized but not loaded.

    Its messages were never deleted, so SQS delivers them again too; staging keeps one row
    per message id, so finishing the package adds nothing twice.
    """
    extracted = len(pipeline.list_extracted_load_packages())
    pending = _pending_packages(pipeline)
    if not pending:
        return 0
    say(
        f"finishing {pending} load package(s) left by an interrupted run",
        event="pending_packages",
        packages=pending,
    )
    try:
        if extracted:
            pipeline.normalize()
        _load_with_retries(pipeline, settings, say, "a load package left by an earlier run")
    except Exception as error:
        _raise_if_interrupted(error)
        # Postgres answered a moment ago, so the package itself is at fault. Its messages were
        # never deleted from SQS, which delivers them again: dropping it loses nothing.
        pipeline.drop_pending_packages()
        say(
            f"dropped {pending} load package(s) that could not be finished ({_reason(error)}); "
            "SQS delivers their messages again",
            event="pending_packages_dropped",
            level=logging.WARNING,
            packages=pending,
            error_class=type(error).__name__,
        )
        return 0
    return pending


def _pending_packages(pipeline: dlt.Pipeline) -> int:
    return len(pipeline.list_extracted_load_packages()) + len(
        pipeline.list_normalized_load_packages()
    )


def _remove_failure_records(pipeline: dlt.Pipeline) -> None:
    """dlt keeps each failed job's error (Postgres quotes the refused row: a body) in the
    package, failed jobs' data files, and the last error in its trace; none is needed to
    retry (a job without its record is retried as transient)."""
    working = Path(pipeline.working_dir)
    records = chain(
        working.glob("load/*/*/.exceptions/*"),
        working.glob("load/*/*/failed_jobs/*"),
        working.glob("trace.pickle"),
    )
    for path in records:
        path.unlink(missing_ok=True)


def _prune_loaded_packages(pipeline: dlt.Pipeline, keep: int) -> None:
    """Remove all but the newest `keep` finished packages: dlt never does, and a scheduled
    loader with a lasting disk would gather one folder a chunk (a thousand a day at 10M
    messages). Their rows are in Postgres; only dlt's record of the load goes."""
    loaded = sorted(pipeline.list_completed_load_packages(), key=float)  # ids: unix times
    # dlt's working folder keeps each finished package in load/loaded/<load id>
    loaded_dir = Path(pipeline.working_dir) / "load" / "loaded"
    for load_id in loaded[: max(0, len(loaded) - keep)]:
        shutil.rmtree(loaded_dir / load_id, ignore_errors=True)


def _prepare_raw_table(credentials: PostgresCredentials, settings: LoaderSettings) -> None:
    with warehouse.connect(credentials) as conn:
        raw_table.prepare_raw_table(conn, settings.dataset_name, RAW_TABLE)


def _refresh_statistics(credentials: PostgresCredentials, settings: LoaderSettings) -> None:
    """For the `dbt build` that follows (about 0.3 s at 1M raw rows: ANALYZE samples)."""
    with warehouse.connect(credentials) as conn:
        warehouse.analyze(conn, settings.dataset_name, [RAW_TABLE, DLT_LOADS])


def _ensure_raw_table(
    pipeline: dlt.Pipeline, credentials: PostgresCredentials, settings: LoaderSettings, say: _Say
) -> None:
    """An empty first run still creates raw.login_messages, so `dbt build` has its source."""
    with warehouse.connect(credentials) as conn:
        if warehouse.table_exists(conn, settings.dataset_name, RAW_TABLE):
            return
    _load_chunk(pipeline, Chunk([]), settings, say)
    _prepare_raw_table(credentials, settings)


def _reason(error: BaseException) -> str:
    """The innermost cause, in one line, without connection strings or data."""
    while error.__cause__ is not None or error.__context__ is not None:
        error = error.__cause__ or error.__context__  # type: ignore[assignment]
    return _first_line(str(error)) or type(error).__name__


# Postgres' error text beyond its first line (DETAIL: Failing row contains (...), CONTEXT: COPY
# ..., line 1: "...") quotes the row; so can a first line, after these words.
_QUOTED_VALUE = re.compile(r"(input syntax for type [\w ]+|value for \w+|Key \(.*?\))[:=] ?.*")


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return _QUOTED_VALUE.sub(r"\1 (value withheld)", lines[0]) if lines else ""


class _WithoutData(logging.Filter):
    """dlt's log records, cut to their first line: dlt logs a failed job with its exception
    and traceback, and Postgres' part of them quotes the refused row."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = _first_line(record.getMessage()).removesuffix("Traceback (most recent call last):")
        if record.exc_info and record.exc_info[1] is not None:
            text = f"{text} ({type(record.exc_info[1]).__name__}: {_reason(record.exc_info[1])})"
        record.msg, record.args = text, None
        record.exc_info = record.exc_text = record.stack_info = None
        return True


_WITHOUT_DATA = _WithoutData()


def _hide_bodies_from_dlt_log() -> None:
    from dlt.common import logger as dlt_logger

    log = dlt_logger.LOGGER
    if log is None:
        return
    for target in (log, *log.handlers):
        if _WITHOUT_DATA not in target.filters:
            target.addFilter(_WITHOUT_DATA)
    logs.adopt(log)  # in json log format, dlt's lines are our events too


def _lines_only(say: _SayText) -> _Say:
    """A caller's printer of lines, given only the text of each."""

    def text_only(text: str, /, **_: object) -> None:
        say(text)

    return text_only


def _printer(enabled: bool) -> _Say:
    return logs.printer("load", enabled)
