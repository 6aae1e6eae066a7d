"""Delivery guarantees under crashes, outages, concurrency: every message that reaches the
queue ends exactly once in user_logins or the rejects, and none is deleted from SQS before it
is safely in Postgres. Faults are real: SIGKILL, a stopped Postgres, a locked table."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time

import psycopg2
import pytest

from loader.faults import CRASH_POINTS
from tests.conftest import (
    REPO,
    Pipeline,
    PrivatePostgres,
    Queue,
    RecordingProxy,
    free_port,
    sqs_client,
    wait_for_port,
)
from tests.expected import USER_LOGINS_COLUMNS, expected_row, valid_records

SHORT_VISIBILITY = {"SOURCES__SQS__VISIBILITY_TIMEOUT_SECONDS": "2"}


def wait_until_visible(queue: Queue, total: int, timeout: float = 30) -> None:
    """Until `total` messages are visible again (their visibility timeout has run out)."""
    deadline = time.monotonic() + timeout
    while queue.counts()["visible"] < total:
        assert time.monotonic() < deadline, queue.counts()
        time.sleep(0.3)


def assert_same_as_a_clean_run(pipeline: Pipeline, sample_lines: list[str]) -> None:
    rows = pipeline.query(f"select {USER_LOGINS_COLUMNS} from public.user_logins")
    assert sorted(rows, key=str) == sorted(
        (expected_row(r) for r in valid_records(sample_lines)), key=str
    )
    assert pipeline.query(
        "select count(*), count(distinct message_id) from public.user_logins"
    ) == [(99, 99)]
    assert pipeline.query("select body from staging.stg_sqs__login_event_rejects") == [
        ('{"foo": "oops_wrong_msg_type", "bar": "123"}',)
    ]
    assert pipeline.queue.counts() == {"visible": 0, "in_flight": 0}


@pytest.mark.slow
@pytest.mark.parametrize("point", CRASH_POINTS)
def test_sigkill_at_each_dangerous_point_then_rerun(
    pipeline: Pipeline, sample_lines: list[str], point: str
) -> None:
    pipeline.queue.send(sample_lines)
    crashed = pipeline.logins("load", check=False, LOGINS_CRASH_AT=point, **SHORT_VISIBILITY)
    assert crashed.returncode == -9, crashed.stderr  # really killed, mid-load

    if point == "deleting":
        time.sleep(3)  # what was not deleted yet becomes visible again
    else:
        wait_until_visible(pipeline.queue, 100)  # nothing was deleted before the commit

    rerun = pipeline.logins("run", **SHORT_VISIBILITY)
    if point in ("extracted", "normalized"):
        assert "finishing 1 load package(s) left by an interrupted run" in rerun.stderr
    assert_same_as_a_clean_run(pipeline, sample_lines)


@pytest.mark.slow
def test_crash_inside_dbt_build_is_completed_by_the_next_build(
    pipeline: Pipeline, sample_lines: list[str]
) -> None:
    pipeline.queue.send(sample_lines)
    pipeline.logins("load")
    dbt = [
        str(REPO / ".venv" / "bin" / "dbt")
        if (REPO / ".venv" / "bin" / "dbt").exists()
        else f"{sys.prefix}/bin/dbt",
        "build",
        "--selector",
        "full_check",
        "--project-dir",
        str(REPO),
        "--profiles-dir",
        str(REPO),
    ]
    killed = 0
    for delay in (2.0, 3.0, 4.0, 5.0):
        build = subprocess.Popen(
            dbt, env=pipeline.env, cwd=pipeline.workdir, stdout=subprocess.DEVNULL
        )
        time.sleep(delay)
        build.kill()
        killed += build.wait() == -9
    assert killed, "no build was killed before it finished"
    pipeline.logins("run")  # a whole build after the crashed ones
    assert_same_as_a_clean_run(pipeline, sample_lines)


@pytest.mark.slow
def test_postgres_down_during_a_load(
    pipeline: Pipeline, sample_lines: list[str], private_postgres: PrivatePostgres
) -> None:
    database = private_postgres.create_database()
    env = {
        **pipeline.env,
        "PGPORT": str(private_postgres.port),
        "PGDATABASE": database,
        "LOADER__LOAD_ATTEMPTS": "3",
        "LOADER__RETRY_BACKOFF_SECONDS": "1",
    }
    pipeline.queue.send(sample_lines)
    loader = subprocess.Popen(
        [sys.executable, "-m", "loader.cli", "load"],
        env=env,
        cwd=pipeline.workdir,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert loader.stderr is not None
    first_line = loader.stderr.readline()  # printed after the checks, before any receive
    assert "waiting" in first_line, first_line
    private_postgres.stop()
    try:
        _, rest = loader.communicate(timeout=120)
        assert loader.returncode == 5, rest
        assert "retry 1/2" in rest
        assert re.search(r"could not load 10\d messages into Postgres after 3 attempts", rest)
        assert "none was deleted from SQS" in rest
        # released at once, not after the visibility timeout: the next run can take them
        assert pipeline.queue.counts() == {"visible": 100, "in_flight": 0}
    finally:
        private_postgres.start()

    rerun = subprocess.run(
        [sys.executable, "-m", "loader.cli", "run"],
        env=env,
        cwd=pipeline.workdir,
        capture_output=True,
        text=True,
    )
    assert rerun.returncode == 0, rerun.stderr
    assert "finishing 1 load package(s)" in rerun.stderr
    conn = private_postgres.connect(database)
    with conn.cursor() as cursor:
        cursor.execute("select count(distinct message_id), count(*) from public.user_logins")
        assert cursor.fetchone() == (99, 99)
    conn.close()
    assert pipeline.queue.counts() == {"visible": 0, "in_flight": 0}


@pytest.mark.slow
def test_a_slow_load_keeps_its_messages_hidden(pipeline: Pipeline, sample_lines: list[str]) -> None:
    """A load that outlasts the visibility timeout: no other consumer gets its messages."""
    pipeline.queue.send(sample_lines[:1])
    pipeline.logins("load")  # creates raw.login_messages
    pipeline.queue.send(sample_lines[1:21])

    locker = psycopg2.connect(
        host="127.0.0.1", user="postgres", password="postgres", dbname=pipeline.database
    )
    cursor = locker.cursor()
    cursor.execute("lock table raw.login_messages in access exclusive mode")  # COPY must wait
    loader = subprocess.Popen(
        [sys.executable, "-m", "loader.cli", "load"],
        env={**pipeline.env, "SOURCES__SQS__VISIBILITY_TIMEOUT_SECONDS": "6"},
        cwd=pipeline.workdir,
        stderr=subprocess.PIPE,
        text=True,
    )
    stolen = 0
    try:
        deadline = time.monotonic() + 60
        while pipeline.queue.counts()["in_flight"] < 20:  # the loader holds all 20
            assert time.monotonic() < deadline, pipeline.queue.counts()
            time.sleep(0.2)
        deadline = time.monotonic() + 15  # well past the visibility timeout
        while time.monotonic() < deadline:
            stolen += len(
                pipeline.queue.client.receive_message(
                    QueueUrl=pipeline.queue.url, MaxNumberOfMessages=10, WaitTimeSeconds=1
                ).get("Messages", [])
            )
    finally:
        locker.rollback()
        locker.close()
    _, stderr = loader.communicate(timeout=60)
    assert loader.returncode == 0, stderr
    assert stolen == 0
    assert pipeline.query(
        "select count(*), count(distinct message_id) from raw.login_messages"
    ) == [(21, 21)]
    assert pipeline.queue.counts() == {"visible": 0, "in_flight": 0}


@pytest.mark.slow
def test_four_loaders_and_a_build_at_once(pipeline: Pipeline) -> None:
    pipeline.logins("seed", "--count", "400", "--seed", "11", "--malformed-share", "0.05")
    env = {**pipeline.env, "LOADER__CHUNK_SIZE": "40", "LOADER__RECEIVERS": "2"}
    loaders = [
        subprocess.Popen(
            [sys.executable, "-m", "loader.cli", "load"],
            env=env,
            cwd=pipeline.workdir,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    builds: list[int] = []

    def build_while_loading() -> None:
        while any(loader.poll() is None for loader in loaders):
            result = pipeline.logins("run", "--max-messages", "1", check=False)
            builds.append(result.returncode)

    builder = threading.Thread(target=build_while_loading)
    builder.start()
    outcomes = [loader.communicate(timeout=300) for loader in loaders]
    builder.join()
    assert [loader.returncode for loader in loaders] == [0, 0, 0, 0], outcomes
    assert builds
    assert all(code == 0 for code in builds), builds

    pipeline.logins("run")
    landed = pipeline.query("select count(distinct message_id) from raw.login_messages")[0][0]
    logins, distinct_logins = pipeline.query(
        "select count(*), count(distinct message_id) from public.user_logins"
    )[0]
    rejects = pipeline.query("select count(*) from staging.stg_sqs__login_event_rejects")[0][0]
    assert landed == 400
    assert logins == distinct_logins
    assert logins + rejects == 400
    assert pipeline.queue.counts() == {"visible": 0, "in_flight": 0}


@pytest.mark.slow
def test_a_pending_package_that_cannot_be_finished_is_dropped(
    pipeline: Pipeline, sample_lines: list[str]
) -> None:
    pipeline.queue.send(sample_lines)
    crashed = pipeline.logins("load", check=False, LOGINS_CRASH_AT="normalized", **SHORT_VISIBILITY)
    assert crashed.returncode == -9
    jobs = list((pipeline.workdir / "dlt").rglob("normalized/*/new_jobs/login_messages.*"))
    assert jobs
    for job in jobs:
        job.write_bytes(b"not a gzip file")  # the disk ate it
    wait_until_visible(pipeline.queue, 100)

    rerun = pipeline.logins("run", **SHORT_VISIBILITY, LOADER__RETRY_BACKOFF_SECONDS="0")
    assert "dropped 1 load package(s) that could not be finished" in rerun.stderr
    assert_same_as_a_clean_run(pipeline, sample_lines)


@pytest.mark.slow
def test_sqs_going_away_mid_load(
    pipeline: Pipeline, sample_lines: list[str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The emulator is killed while the loader drains it: a clear error, no hang."""
    port = free_port()
    emulator = subprocess.Popen(
        [sys.executable, "-m", "loader.devstack.sqs_emulator", "--port", str(port)],
        env={**pipeline.env, "MOTO_ACCOUNT_ID": "000000000000"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port("127.0.0.1", port)
        queue = Queue(
            sqs_client(f"http://127.0.0.1:{port}").create_queue(QueueName="login-queue")[
                "QueueUrl"
            ],
            sqs_client(f"http://127.0.0.1:{port}"),
        )
        queue.send(sample_lines * 3)
        loader = pipeline.load_past_first_chunk(
            SOURCES__SQS__QUEUE_URL=queue.url, LOADER__CHUNK_SIZE="50"
        )
        emulator.kill()
        started = time.monotonic()
        _, rest = loader.communicate(timeout=120)
    finally:
        emulator.kill()
    assert loader.returncode == 3, rest
    assert "Traceback" not in rest
    assert "error: " in rest
    assert time.monotonic() - started < 60  # botocore's bounded retries, then the error
    landed = pipeline.query("select count(*), count(distinct message_id) from raw.login_messages")
    assert landed[0][1] >= 50  # what was loaded before the emulator died stays


def test_deletes_sqs_refuses_come_back_and_land_once(
    pipeline: Pipeline, sample_lines: list[str], sqs_proxy: RecordingProxy
) -> None:
    pipeline.queue.send(sample_lines)
    sqs_proxy.refuse.add("DeleteMessageBatch")
    result = pipeline.logins(
        "load",
        check=False,
        SOURCES__SQS__QUEUE_URL=sqs_proxy.via(pipeline.queue.url),
        # long enough that this run does not receive them again, short enough to wait for
        SOURCES__SQS__VISIBILITY_TIMEOUT_SECONDS="6",
    )

    assert result.returncode == 3
    assert "landed 100 messages but SQS did not delete 100 of them" in result.stderr
    assert "InternalError" in result.stderr
    assert pipeline.query("select count(*) from raw.login_messages") == [(100,)]
    wait_until_visible(pipeline.queue, 100)  # all of them, delivered again
    pipeline.logins("run")
    assert pipeline.query("select count(*) from raw.login_messages") == [(200,)]
    assert_same_as_a_clean_run(pipeline, sample_lines)
    assert pipeline.queue.counts() == {"visible": 0, "in_flight": 0}
