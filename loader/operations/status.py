"""`logins status`: the queue, the last runs, the freshness of user_logins and the rejects of
the last 24 hours, on one screen; and a verdict a scheduler can alert on (exit codes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import psycopg2.errors
from psycopg2 import sql

from loader import warehouse
from loader.errors import ConfigurationError, DataStale, PipelineError
from loader.names import USER_LOGINS
from loader.operations import history
from loader.operations.queue_age import cloudwatch_oldest_age
from loader.warehouse.attached_code import refuse_attached_code

if TYPE_CHECKING:
    from dlt.destinations.impl.postgres.configuration import PostgresCredentials

    from loader.ingest.sqs import SqsQueue

REJECT_HOURS = 24
LAST_RUNS = 5


class LastRunFailed(PipelineError):
    """The newest recorded run did not succeed."""

    exit_code = 1


@dataclass
class Status:
    lines: list[str] = field(default_factory=list)
    problems: list[PipelineError] = field(default_factory=list)

    def verdict(self) -> PipelineError | None:
        """None when healthy; else one error naming every problem, with the exit code of the
        most basic: what could not be checked (2, 3, 4, 7), then a failed last run (1), then
        stale data (8)."""
        if not self.problems:
            return None
        ranked = sorted(self.problems, key=lambda problem: _RANK.get(type(problem), 0))
        first = ranked[0]
        combined = PipelineError("; ".join(str(problem) for problem in ranked))
        combined.exit_code = first.exit_code
        return combined

    def row(self, label: str, value: str) -> None:
        self.lines.append(f"  {label.ljust(20)} {value}")


def status(
    credentials: PostgresCredentials,
    queue: SqsQueue,
    marts: str,
    owner_role: str,
    max_age_minutes: float,
) -> Status:
    """Everything `logins status` shows, and the problems found, most basic first."""
    report = Status(lines=["logins status"])
    _queue(report, queue)
    try:
        with warehouse.connect(credentials) as conn:
            _freshness(report, conn, marts, owner_role, max_age_minutes)
            _runs(report, conn)
    except PipelineError as error:  # Postgres unreachable: nothing else can be judged
        report.problems.insert(0, error)
    return report


def _queue(report: Status, queue: SqsQueue) -> None:
    try:
        counts = queue.approximate_counts()
    except PipelineError as error:
        report.row("queue", "unreachable")
        report.problems.append(error)
        return
    age = cloudwatch_oldest_age(queue.settings)
    oldest = (
        f"oldest message {duration(age)} (CloudWatch)"
        if age is not None
        else ("oldest message age unknown (CloudWatch only, on AWS)")
    )
    report.row(
        "queue", f"{counts['visible']:,} visible, {counts['in_flight']:,} in flight, {oldest}"
    )


@dataclass(frozen=True)
class Newest:
    """user_logins' newest message and newest load (None when it holds no row)."""

    sent_at: datetime | None
    create_date: Any
    loaded_at: datetime | None
    age_seconds: float | None


def newest(conn: Any, marts: str, owner_role: str) -> Newest | None:
    """user_logins' newest message and load (None when the table is not built), read after
    refusing the table if it carries another role's code (its owner is the transformer)."""
    if not warehouse.table_exists(conn, marts, USER_LOGINS):
        return None
    with conn.cursor() as cursor:
        cursor.execute("begin")
        try:
            refuse_attached_code(cursor, [(marts, USER_LOGINS)], write=False, owner_role=owner_role)
            cursor.execute(
                sql.SQL(
                    "select pg_catalog.max(sent_at), pg_catalog.max(create_date),"
                    " pg_catalog.max(loaded_at),"
                    " pg_catalog.date_part('epoch', pg_catalog.now() - pg_catalog.max(loaded_at))"
                    " from {}"
                ).format(sql.Identifier(marts, USER_LOGINS))
            )
            row = cursor.fetchone()
        finally:
            cursor.execute("commit")
    return Newest(*row)


def _freshness(
    report: Status, conn: Any, marts: str, owner_role: str, max_age_minutes: float
) -> None:
    found = newest(conn, marts, owner_role)
    if found is None:
        report.row("user_logins", "not built yet")
        report.problems.append(DataStale(f"{marts}.{USER_LOGINS} has not been built yet"))
        return
    if found.loaded_at is None:
        report.row("user_logins", "empty")
        report.problems.append(DataStale(f"{marts}.{USER_LOGINS} holds no row yet"))
        return
    age = found.age_seconds
    report.row("newest message", f"sent {when(found.sent_at)} (create_date {found.create_date})")
    report.row("newest load", f"{when(found.loaded_at)}, {duration(age)} ago")
    if age is not None and age > max_age_minutes * 60:
        report.problems.append(
            DataStale(
                f"the newest row in {marts}.{USER_LOGINS} was loaded {duration(age)} ago, more "
                f"than STATUS__MAX_AGE_MINUTES ({max_age_minutes:g}): check the last runs, and "
                "that messages reach the queue"
            )
        )


def _runs(report: Status, conn: Any) -> None:
    try:
        runs = history.last_runs(conn, LAST_RUNS)
        rejects = history.rejects_since(conn, REJECT_HOURS)
    except (psycopg2.errors.InsufficientPrivilege, psycopg2.errors.UndefinedTable) as error:
        missing = isinstance(error, psycopg2.errors.UndefinedTable)
        report.row(
            "last runs", "no run history (run `logins db init`)" if missing else "not readable"
        )
        report.problems.insert(
            0,
            ConfigurationError(
                "the run history ops.pipeline_runs is missing: run `logins db init` as an admin"
                if missing
                else "this role may not read the run history: run `logins status` as the "
                "operator role (<ROLES__PREFIX>operator) or an admin"
            ),
        )
        return
    codes = ", ".join(f"{code} {count:,}" for code, count in rejects.items())
    report.row(f"rejects, last {REJECT_HOURS} h", codes or "none recorded")
    if not runs:
        report.row("last runs", "none recorded yet")
        return
    report.lines.append("  last runs")
    for run in runs:
        outcome = run["status"] + (f" ({run['error_class']})" if run["error_class"] else "")
        added = f", +{run['rows_added']:,} rows" if run["rows_added"] is not None else ""
        report.lines.append(
            f"    {when(run['ended_at'])}  {run['command']:<4}  {outcome:<30}  received "
            f"{run['received']:,}, landed {run['landed']:,}{added}  ({run['recorded_by']})"
        )
    last = runs[0]
    if last["status"] != "succeeded":
        report.problems.append(
            LastRunFailed(
                f"the last run ({last['command']}, {last['run_id']}, ended "
                f"{when(last['ended_at'])}) {last['status']}"
                + (f": {last['error_class']}" if last["error_class"] else "")
            )
        )


# what the verdict's exit code says first: the rest (unreachable, unreadable) ranks 0
_RANK = {LastRunFailed: 1, DataStale: 2}


def when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S %Z").strip() if moment else "?"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
