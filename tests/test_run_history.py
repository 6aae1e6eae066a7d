"""The run history (`ops.pipeline_runs`): every `logins load` and `logins run` records one row
with its counts, steps, queue and dbt's results, whatever its outcome, as the role that ran
it; the operator role reads it, the analyst does not, and no role rewrites it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from psycopg2 import errors

from tests.conftest import Pipeline, connect

RUN_COLUMNS = (
    "command, recorded_by, status, error_class, received, landed, deleted, left_in_queue,"
    " rejects_by_code, rows_added, user_logins_rows, step_seconds, queue_visible_before,"
    " queue_in_flight_before, oldest_age_seconds_before, queue_visible_after,"
    " queue_in_flight_after, oldest_received_age_seconds, dbt, started_at <= ended_at"
)


def runs(pipeline: Pipeline) -> list[dict[str, Any]]:
    conn = connect(pipeline.database)
    try:
        with conn.cursor() as cursor:
            cursor.execute(f"select {RUN_COLUMNS} from ops.pipeline_runs order by ended_at")
            names = [column.name for column in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        conn.close()


def as_role(pipeline: Pipeline, role: str, statement: str, params: Any = None) -> Any:
    conn = connect(pipeline.database, user=role)
    try:
        with conn.cursor() as cursor:
            cursor.execute(statement, params)
            return cursor.fetchall() if cursor.description else None
    finally:
        conn.close()


def set_up(pipeline: Pipeline) -> None:
    pipeline.logins("db", "init")
    pipeline.logins("roles", "apply")


def no_pii_in(row: dict[str, Any], sample_lines: list[str]) -> None:
    """No body, IP or device id of the sample in any column of the row."""
    text = json.dumps(row, default=str)
    for line in sample_lines:
        message = json.loads(line)
        if isinstance(message, dict):
            for field in ("ip", "device_id", "user_id"):
                if isinstance(message.get(field), str):
                    assert message[field] not in text, field
    assert "oops_wrong_msg_type" not in text


def test_a_run_records_one_row_with_its_counts(pipeline: Pipeline, sample_lines: list[str]) -> None:
    set_up(pipeline)
    pipeline.queue.send(sample_lines)
    pipeline.logins("run")

    [row] = runs(pipeline)
    assert row["command"] == "run"
    assert row["recorded_by"] == "postgres"
    assert (row["status"], row["error_class"]) == ("succeeded", None)
    assert (row["received"], row["landed"], row["deleted"], row["left_in_queue"]) == (
        100,
        100,
        100,
        0,
    )
    assert row["rejects_by_code"] == {"missing_field": 1}
    assert (row["rows_added"], row["user_logins_rows"]) == (99, 99)
    assert set(row["step_seconds"]) == {"setup", "load", "build", "roles", "freshness"}
    assert all(seconds >= 0 for seconds in row["step_seconds"].values())
    assert (row["queue_visible_before"], row["queue_in_flight_before"]) == (100, 0)
    assert (row["queue_visible_after"], row["queue_in_flight_after"]) == (0, 0)
    # the emulator has no CloudWatch: unknown, not made up
    assert row["oldest_age_seconds_before"] is None
    assert row["oldest_received_age_seconds"] is not None
    assert 0 <= row["oldest_received_age_seconds"] < 600
    dbt = row["dbt"]
    assert dbt["success"] is True
    assert dbt["failed_nodes"] == []
    # the tests' builds run the full check: every model, its tests and the unit tests
    assert dbt["statuses"]["model"] == {"success": 3}
    assert dbt["statuses"]["test"] == {"pass": sum(dbt["statuses"]["test"].values())}
    assert dbt["seconds"] > 0
    assert row["?column?"] is True
    no_pii_in(row, sample_lines)

    # the next run (nothing new) is a row of its own, with its own counts
    pipeline.logins("run")
    second = runs(pipeline)[1]
    assert (second["received"], second["rows_added"], second["rejects_by_code"]) == (0, 0, {})
    assert second["user_logins_rows"] == 99
    assert second["oldest_received_age_seconds"] is None


def test_a_failed_build_records_its_class_and_what_dbt_did(
    pipeline: Pipeline, sample_lines: list[str]
) -> None:
    set_up(pipeline)
    pipeline.queue.send(sample_lines[:5])
    pipeline.logins("run")
    # user_logins now refuses every new row: the next build's model fails
    pipeline.query(
        "alter table public.user_logins add constraint refuse_new_rows"
        " check (sent_at < '2000-01-01') not valid"
    )
    pipeline.queue.send(sample_lines[5:10])
    failed = pipeline.logins("run", check=False)
    assert failed.returncode == 6, failed.stderr

    row = runs(pipeline)[-1]
    assert (row["status"], row["error_class"]) == ("failed", "TransformFailed")
    assert (row["received"], row["landed"], row["deleted"]) == (5, 5, 5)
    assert row["rows_added"] is None  # the build never finished
    assert "build" in row["step_seconds"]
    assert "freshness" not in row["step_seconds"]
    dbt = row["dbt"]
    assert dbt["success"] is False
    assert dbt["failed_nodes"] == ["model.user_logins.user_logins"]
    assert dbt["statuses"]["model"]["error"] == 1
    # the class, never the message: no Postgres text, no row values
    assert "check constraint" not in json.dumps(row, default=str)
    no_pii_in(row, sample_lines)


def test_the_loaders_load_records_its_row(pipeline: Pipeline, role_prefix: str) -> None:
    set_up(pipeline)
    pipeline.queue.send([json.dumps({"user_id": f"user-{n:04d}"}) for n in range(7)])
    pipeline.logins("load", PGUSER=f"{role_prefix}loader")

    [row] = runs(pipeline)
    assert (row["command"], row["recorded_by"], row["status"]) == (
        "load",
        f"{role_prefix}loader",
        "succeeded",
    )
    assert (row["received"], row["landed"], row["deleted"], row["left_in_queue"]) == (7, 7, 7, 0)
    assert set(row["step_seconds"]) == {"load"}
    assert row["dbt"] is None
    assert row["rows_added"] is None
    assert row["oldest_received_age_seconds"] is not None


def test_who_may_read_and_write_the_history(pipeline: Pipeline, role_prefix: str) -> None:
    set_up(pipeline)
    pipeline.logins("load", PGUSER=f"{role_prefix}loader")
    loader, transformer, analyst, admin, operator = (
        f"{role_prefix}{name}"
        for name in ("loader", "transformer", "analyst", "pii_admin", "operator")
    )
    [(run_id, command)] = as_role(
        pipeline, operator, "select run_id, command from ops.pipeline_runs"
    )
    assert command == "load"

    for role in (analyst, loader, transformer, admin):
        with pytest.raises(errors.InsufficientPrivilege):
            as_role(pipeline, role, "select count(*) from ops.pipeline_runs")
    for role in (loader, transformer, operator):
        for statement in (
            "update ops.pipeline_runs set status = 'succeeded'",
            "delete from ops.pipeline_runs",
            "truncate ops.pipeline_runs",
        ):
            with pytest.raises(errors.InsufficientPrivilege):
                as_role(pipeline, role, statement)
    for role in (analyst, operator, admin):
        with pytest.raises(errors.InsufficientPrivilege):
            as_role(pipeline, role, "select ops.record_run('{}'::jsonb)")

    # the loader records runs only through the function, which never rewrites a recorded run
    fake = {
        "run_id": run_id,
        "command": "load",
        "started_at": "2024-01-01T00:00:00+00:00",
        "ended_at": "2024-01-01T00:00:01+00:00",
        "status": "succeeded",
        "received": 0,
        "landed": 0,
        "deleted": 0,
    }
    with pytest.raises(errors.UniqueViolation):
        as_role(pipeline, loader, "select ops.record_run(%s::jsonb)", (json.dumps(fake),))
    # ...and takes no free text: an error class is a class name, codes are codes
    fresh = {**fake, "run_id": "0" * 32}
    for bad in (
        {"error_class": "ValueError: 1.2.3.4 is not a login"},
        {"rejects_by_code": {'{"ip": "1.2.3.4"}': 1}},
        {"dbt": {"success": True, "seconds": 1, "statuses": {}, "failed_nodes": ["a b"]}},
    ):
        with pytest.raises(errors.CheckViolation):
            as_role(
                pipeline,
                loader,
                "select ops.record_run(%s::jsonb)",
                (json.dumps({**fresh, **bad}),),
            )
    # the row records who logged in, whatever the caller says
    as_role(
        pipeline,
        loader,
        "select ops.record_run(%s::jsonb)",
        (json.dumps({**fresh, "recorded_by": "postgres"}),),
    )
    assert pipeline.query(
        "select recorded_by from ops.pipeline_runs where run_id = %s", ("0" * 32,)
    ) == [(loader,)]


def test_a_run_whose_history_cannot_be_written_still_succeeds(
    pipeline: Pipeline, role_prefix: str
) -> None:
    """An upgraded pipeline whose admin has not run `db init` yet: a note, not a failure."""
    set_up(pipeline)
    pipeline.query("drop schema ops cascade")
    pipeline.queue.send([json.dumps({"user_id": "user-0001"})])
    load = pipeline.logins("load", PGUSER=f"{role_prefix}loader")
    assert "note: run history not recorded" in load.stderr
    assert "`logins db init` (as an admin) installs it" in load.stderr
    assert pipeline.queue.counts() == {"visible": 0, "in_flight": 0}
