"""The run history: one row per `logins load` or `logins run` in `ops.pipeline_runs`
(`sql/ops_setup.sql`), written through `ops.record_run()` and read by `logins status`."""

from __future__ import annotations

import json
from dataclasses import asdict
from importlib import resources
from typing import TYPE_CHECKING, Any

from psycopg2 import sql
from psycopg2.extensions import connection as Connection

from loader import warehouse
from loader.errors import PipelineError
from loader.names import OPS_SCHEMA, PIPELINE_RUNS

if TYPE_CHECKING:
    from dlt.destinations.impl.postgres.configuration import PostgresCredentials

    from loader.operations.run_report import QueueState, RunReport

RECORD_RUN = "ops.record_run(jsonb)"


def install(conn: Connection, owner_role: str) -> None:
    """The ops schema, its table and functions (idempotent), all given to `owner_role`. Run
    inside `logins db init`'s transaction."""
    setup = resources.files("loader.operations").joinpath("sql/ops_setup.sql").read_text()
    owner = sql.Identifier(owner_role)
    with conn.cursor() as cursor:
        cursor.execute(setup)
        cursor.execute(
            sql.SQL("alter schema {} owner to {}").format(sql.Identifier(OPS_SCHEMA), owner)
        )
        cursor.execute(
            sql.SQL("alter table {} owner to {}").format(
                sql.Identifier(OPS_SCHEMA, PIPELINE_RUNS), owner
            )
        )
        for function in ("ops.is_count_map(jsonb)", "ops.is_dbt_summary(jsonb)", RECORD_RUN):
            cursor.execute(sql.SQL(f"alter function {function} owner to {{}}").format(owner))


def record(credentials: PostgresCredentials, report: RunReport) -> None:
    """Writes `report` as one row of the run history, as the connecting role."""
    with warehouse.connect(credentials) as conn, conn.cursor() as cursor:
        cursor.execute("select pg_catalog.to_regprocedure('ops.record_run(jsonb)') is not null")
        if not cursor.fetchone()[0]:
            raise HistoryNotInstalled(
                "this database has no run history yet: `logins db init` (as an admin) installs it"
            )
        cursor.execute("select ops.record_run(%s::jsonb)", (json.dumps(row(report)),))


class HistoryNotInstalled(PipelineError):
    """`ops.record_run()` is missing: `db init` has not run since the run history came."""


def row(report: RunReport) -> dict[str, Any]:
    """The report as `ops.record_run()` takes it: counts, codes and class names only."""
    return {
        "run_id": report.run_id,
        "command": report.command,
        "started_at": report.started_at.isoformat(),
        "ended_at": (report.ended_at or report.started_at).isoformat(),
        "status": report.status,
        "error_class": report.error_class,
        "received": report.received,
        "landed": report.landed,
        "deleted": report.deleted,
        "left_in_queue": report.left,
        "rejects_by_code": report.rejects_by_code,
        "rows_added": report.rows_added,
        "user_logins_rows": report.user_logins_rows,
        "step_seconds": {step: round(seconds, 3) for step, seconds in report.step_seconds.items()},
        **_queue("before", report.queue_before),
        **_queue("after", report.queue_after),
        "oldest_received_age_seconds": report.oldest_received_age_seconds,
        "dbt": asdict(report.dbt) if report.dbt else None,
    }


def _queue(when: str, state: QueueState | None) -> dict[str, Any]:
    return {
        f"queue_visible_{when}": state.visible if state else None,
        f"queue_in_flight_{when}": state.in_flight if state else None,
        f"oldest_age_seconds_{when}": state.oldest_age_seconds if state else None,
    }


def last_runs(conn: Connection, limit: int = 5) -> list[dict[str, Any]]:
    """The newest `limit` runs, newest first (raises if the history is not readable)."""
    with conn.cursor() as cursor:
        cursor.execute(
            "select run_id, command, recorded_by, started_at, ended_at, status, error_class,"
            " received, landed, deleted, left_in_queue, rows_added, rejects_by_code"
            " from ops.pipeline_runs order by ended_at desc, started_at desc limit %s",
            (limit,),
        )
        names = [column.name for column in cursor.description]
        return [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]


def rejects_since(conn: Connection, hours: int = 24) -> dict[str, int]:
    """Rejects by code that runs recorded as new in the last `hours` hours."""
    with conn.cursor() as cursor:
        cursor.execute(
            "select entry.key, pg_catalog.sum((entry.value)::text::bigint)"
            " from ops.pipeline_runs as runs,"
            " pg_catalog.jsonb_each(runs.rejects_by_code) as entry"
            " where runs.ended_at > pg_catalog.now() - pg_catalog.make_interval(hours => %s)"
            " group by 1 order by 2 desc, 1",
            (hours,),
        )
        return {str(code): int(count) for code, count in cursor.fetchall()}
