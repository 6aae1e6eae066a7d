"""Ctrl-C during a load: an interruption, not a failure. What the load held is released at
once (not after the visibility timeout), one line says so, and the exit code is 130."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import psycopg2

from tests.conftest import PG, Pipeline, interruptible
from tests.test_hostile_input import login


def wait_for(condition: object, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline
        time.sleep(0.2)


def test_ctrl_c_during_a_load_releases_its_messages(pipeline: Pipeline) -> None:
    pipeline.queue.send([login()])
    pipeline.logins("load")  # creates raw.login_messages
    pipeline.queue.send([login(user_id=f"user-{n}") for n in range(20)])

    locker = psycopg2.connect(dbname=pipeline.database, **PG)
    locker.cursor().execute("lock table raw.login_messages in access exclusive mode")
    loader = subprocess.Popen(
        [sys.executable, "-m", "loader.cli", "load"],
        env=pipeline.env,
        cwd=pipeline.workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=interruptible,
    )
    try:
        # its COPY waits for the lock: the load holds all 20
        wait_for(
            lambda: (
                pipeline.query(
                    "select count(*) from pg_stat_activity"
                    " where datname = current_database() and query like 'COPY%%'"
                    " and wait_event_type = 'Lock'"
                )
                == [(1,)]
            )
        )
        assert pipeline.queue.counts() == {"visible": 0, "in_flight": 20}
        loader.send_signal(signal.SIGINT)
        time.sleep(1)
    finally:
        locker.rollback()  # the COPY under way ends; what it wrote belongs to no load
        locker.close()
    _, stderr = loader.communicate(timeout=60)

    assert loader.returncode == 130, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: interrupted: 20 received messages were released and are visible again for the "
        "next run; what had landed stays landed"
    ], stderr
    assert "Traceback" not in stderr
    assert pipeline.queue.counts() == {"visible": 20, "in_flight": 0}  # not after 300 s

    pipeline.logins("run")
    assert pipeline.query(
        "select count(*), count(distinct message_id) from public.user_logins"
    ) == [(21, 21)]
    assert pipeline.queue.counts() == {"visible": 0, "in_flight": 0}


def test_ctrl_c_between_chunks_loses_nothing(pipeline: Pipeline) -> None:
    """Wherever it lands (receiving, extracting, loading, deleting): nothing stays hidden,
    and a rerun lands every message once."""
    sent = 600
    pipeline.queue.send([login(user_id=f"user-{n}") for n in range(sent)])
    loader = pipeline.load_past_first_chunk(LOADER__CHUNK_SIZE="50", LOADER__RECEIVERS="2")
    loader.send_signal(signal.SIGINT)
    _, rest = loader.communicate(timeout=60)

    assert loader.returncode == 130, rest
    errors = [line for line in rest.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, rest
    assert errors[0].startswith("error: interrupted: ")
    assert "Traceback" not in rest
    counts = pipeline.queue.counts()
    assert counts["in_flight"] == 0, counts  # released, not left to the visibility timeout
    landed = pipeline.query("select count(distinct message_id) from raw.login_messages")[0][0]
    assert counts["visible"] + landed >= sent

    pipeline.logins("run")
    assert pipeline.query(
        "select count(*), count(distinct message_id) from public.user_logins"
    ) == [(sent, sent)]
    assert pipeline.queue.counts() == {"visible": 0, "in_flight": 0}
