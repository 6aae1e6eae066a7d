"""Around each `logins load` and `logins run`: a RunReport filled as the run goes, then kept
in the run history and published as metrics, whatever the run's outcome."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from loader import logs
from loader.errors import Interrupted, PipelineError
from loader.operations.run_report import FAILED, INTERRUPTED, SUCCEEDED, QueueState, RunReport

if TYPE_CHECKING:
    from dlt.destinations.impl.postgres.configuration import PostgresCredentials

    from loader.ingest.sqs import SqsQueue

_Say = Callable[[str], None]


def _say_on_stderr(line: str) -> None:
    logs.say("run.not_recorded", line, level=logging.WARNING)


@contextmanager
def reported(
    command: str,
    credentials: PostgresCredentials,
    queue: SqsQueue,
    say: _Say = _say_on_stderr,
) -> Iterator[RunReport]:
    """Yields the run's report; on the way out, success or not, records its outcome and the
    queue after it, and publishes it. Publishing never changes the run's own outcome: a
    failure to record is one line through `say`."""
    report = RunReport(command)
    logs.set_run_id(report.run_id)  # every line from here on carries it, the last error too
    report.queue_before = queue_state(queue)
    try:
        yield report
        report.status = SUCCEEDED
    except (KeyboardInterrupt, Interrupted) as error:
        report.status, report.error_class = INTERRUPTED, type(error).__name__
        raise
    except BaseException as error:
        report.status, report.error_class = FAILED, type(error).__name__
        raise
    finally:
        report.ended_at = datetime.now(UTC)
        report.queue_after = queue_state(queue)
        if report.landed:
            report.oldest_received_age_seconds = _oldest_received_age(credentials, report, say)
        publish(report, credentials, say)


def queue_state(queue: SqsQueue) -> QueueState | None:
    """The queue's depth now, or None where SQS does not answer (the run's own error says why);
    the oldest message's age where CloudWatch gives it (loader/operations/queue_age.py)."""
    from loader.operations.queue_age import cloudwatch_oldest_age

    try:
        counts = queue.approximate_counts()
    except PipelineError:
        return None
    return QueueState(
        visible=counts["visible"],
        in_flight=counts["in_flight"],
        oldest_age_seconds=cloudwatch_oldest_age(queue.settings),
    )


def _oldest_received_age(
    credentials: PostgresCredentials, report: RunReport, say: _Say
) -> float | None:
    from loader.operations.queue_age import oldest_received_age
    from loader.settings import loader_settings, roles_settings

    try:
        raw, owner = loader_settings().dataset_name, roles_settings().role("owner")
        return oldest_received_age(credentials, raw, report.started_at, owner)
    except Exception as error:
        say(
            f"note: oldest message age not measured for run {report.run_id}: {type(error).__name__}"
        )
        return None


def publish(report: RunReport, credentials: PostgresCredentials, say: _Say) -> None:
    """The run history row, then the metrics; each failure is one line, never the run's."""
    from loader.operations import history, metrics

    for what, send in (
        ("run history", lambda: history.record(credentials, report)),
        ("metrics", lambda: metrics.publish(report)),
    ):
        try:
            send()
        except Exception as error:
            # our own errors say what to do and hold no value; others are named by class only
            why = str(error) if isinstance(error, PipelineError) else type(error).__name__
            say(f"note: {what} not recorded for run {report.run_id}: {why}")
