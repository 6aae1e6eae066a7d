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
        publish(report, credentials, say)


def queue_state(queue: SqsQueue) -> QueueState | None:
    """The queue's depth now, or None where SQS does not answer (the run's own error says why)."""
    try:
        counts = queue.approximate_counts()
    except PipelineError:
        return None
    return QueueState(visible=counts["visible"], in_flight=counts["in_flight"])


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
            say(f"note: {what} not recorded for run {report.run_id}: {type(error).__name__}")
