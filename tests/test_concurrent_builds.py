"""Builds of one database take turns: two at once both inserted the same new messages into
staging, and one failed on the unique message id (exit 6)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import REPO, Pipeline, connect
from tests.expected import valid_records

BUILD_LOCK = "select pg_advisory_lock(hashtext('logins dbt build'))"


def start_logins(pipeline: Pipeline, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "loader.cli", *args],
        env=pipeline.env,
        cwd=pipeline.workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def start_dbt(pipeline: Pipeline, name: str) -> subprocess.Popen[str]:
    """A plain `dbt build` as a scheduler runs it: the repo's profile, PG* at the test
    database; its own target and log folders (dbt's files there are not shared safely)."""
    env = {
        **pipeline.env,
        "DBT_TARGET_PATH": str(pipeline.workdir / f"target-{name}"),
        "DBT_LOG_PATH": str(pipeline.workdir / f"logs-{name}"),
    }
    return subprocess.Popen(
        [str(Path(sys.executable).with_name("dbt")), "build", "--selector", "full_check"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@contextmanager
def held_build_lock(pipeline: Pipeline, waiters: int) -> Iterator[None]:
    """The build lock, held as another build in progress would hold it, until `waiters`
    builds started in the block wait for it: then they start together."""
    holder = connect(pipeline.database)
    try:
        with holder.cursor() as cursor:
            cursor.execute(BUILD_LOCK)
        yield
        wait_for_waiters(pipeline, waiters)
    finally:
        holder.close()


def wait_for_waiters(pipeline: Pipeline, count: int, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        waiting = pipeline.query(
            "select count(*) from pg_locks where locktype = 'advisory' and not granted"
            " and database = (select oid from pg_database where datname = current_database())"
        )[0][0]
        if waiting >= count:
            return
        time.sleep(0.2)
    raise AssertionError(f"fewer than {count} builds came to wait for the build lock")


def finish(process: subprocess.Popen[str]) -> tuple[int, str]:
    stdout, stderr = process.communicate(timeout=600)
    return process.returncode, stdout + stderr


def assert_built_once(pipeline: Pipeline, sample_lines: list[str]) -> None:
    valid = len(valid_records(sample_lines))
    for table, expected in (
        ("staging.stg_sqs__login_events", len(sample_lines)),
        ("public.user_logins", valid),
        ("staging.stg_sqs__login_event_rejects", len(sample_lines) - valid),
    ):
        rows = pipeline.query(f"select count(*), count(distinct message_id) from {table}")
        assert rows == [(expected, expected)], table


def loaded(pipeline: Pipeline, sample_lines: list[str]) -> None:
    pipeline.logins("db", "init")
    pipeline.queue.send(sample_lines)
    pipeline.logins("load")


def test_two_logins_runs_at_once(pipeline: Pipeline, sample_lines: list[str]) -> None:
    loaded(pipeline, sample_lines)
    with held_build_lock(pipeline, waiters=2):
        runs = [start_logins(pipeline, "run") for _ in range(2)]
    for code, output in map(finish, runs):
        assert code == 0, output[-3000:]
    assert_built_once(pipeline, sample_lines)


def test_a_build_waits_for_the_lock_and_says_so(
    pipeline: Pipeline, sample_lines: list[str]
) -> None:
    loaded(pipeline, sample_lines)
    with held_build_lock(pipeline, waiters=1):
        run = start_logins(pipeline, "run")
    assert pipeline.query("select to_regclass('public.user_logins')") == [(None,)]
    code, output = finish(run)
    assert code == 0, output[-3000:]
    assert output.count("waiting for another dbt build") == 1, output
    assert_built_once(pipeline, sample_lines)


def built_then_loaded(pipeline: Pipeline, sample_lines: list[str]) -> None:
    """New messages in raw for models that exist: a scheduled build's steady state. (dbt
    decides whether to create a model from what exists when it starts, so two plain builds
    of a database that has no models yet can still collide on creating them.)"""
    loaded(pipeline, sample_lines[:50])
    pipeline.logins("run")
    pipeline.queue.send(sample_lines[50:])
    pipeline.logins("load")


def test_two_plain_dbt_builds_at_once(pipeline: Pipeline, sample_lines: list[str]) -> None:
    built_then_loaded(pipeline, sample_lines)
    # both wait at the start, then race for the same new rows as soon as the lock is free
    with held_build_lock(pipeline, waiters=2):
        builds = [start_dbt(pipeline, name) for name in ("a", "b")]
    for code, output in map(finish, builds):
        assert code == 0, output[-3000:]
    assert_built_once(pipeline, sample_lines)


def test_plain_dbt_build_and_logins_run_at_once(
    pipeline: Pipeline, sample_lines: list[str]
) -> None:
    built_then_loaded(pipeline, sample_lines)
    with held_build_lock(pipeline, waiters=2):
        run = start_logins(pipeline, "run")
        build = start_dbt(pipeline, "plain")
    for code, output in (finish(run), finish(build)):
        assert code == 0, output[-3000:]
    assert_built_once(pipeline, sample_lines)


def test_a_plain_dbt_build_waits_and_says_so(pipeline: Pipeline, sample_lines: list[str]) -> None:
    built_then_loaded(pipeline, sample_lines)
    with held_build_lock(pipeline, waiters=1):
        build = start_dbt(pipeline, "plain")
    code, output = finish(build)
    assert code == 0, output[-3000:]
    assert "waiting for another dbt build" in output, output
    assert_built_once(pipeline, sample_lines)
