"""`logins up` / `down` without Docker: start what is missing, stop only what they started."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg2

from loader.devstack.ports import answers, free_port
from tests.conftest import TEST_HMAC_KEY, sqs_client


def test_up_starts_a_private_stack_and_down_stops_it() -> None:
    state = Path(tempfile.mkdtemp(prefix="logins-stack-"))
    state.chmod(0o755)
    pg_port, sqs_port = free_port(), free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PG", "AWS_"))},
        "PGHOST": "localhost",
        "PGPORT": str(pg_port),
        "PGDATABASE": "logins",
        "SOURCES__SQS__QUEUE_URL": f"http://localhost:{sqs_port}/000000000000/login-queue",
        "PII__HMAC_KEY": TEST_HMAC_KEY,
        "STACK__STATE_DIR": str(state),
    }

    def logins(*args: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "loader.cli", *args], env=env, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
        return result

    try:
        first = logins("up")
        assert first.stdout.count("started") == 2, first.stdout
        assert answers("127.0.0.1", pg_port)
        assert answers("127.0.0.1", sqs_port)

        # the database, the masking function and the queue exist, with the password checked
        conn = psycopg2.connect(
            host="localhost", port=pg_port, user="postgres", password="postgres", dbname="logins"
        )
        with conn.cursor() as cursor:
            cursor.execute("select pii.mask('ip', '1.2.3.4')")
            assert len(cursor.fetchone()[0]) == 64
        conn.close()
        queues = sqs_client(f"http://localhost:{sqs_port}").list_queues()["QueueUrls"]
        assert queues == [f"http://localhost:{sqs_port}/000000000000/login-queue"]

        again = logins("up")  # idempotent
        assert again.stdout.count(": running") == 2, again.stdout

        assert "stopped: SQS emulator, Postgres" in logins("down").stdout
        assert not answers("127.0.0.1", pg_port)
        assert not answers("127.0.0.1", sqs_port)
        assert "nothing" in logins("down").stdout
    finally:
        subprocess.run([sys.executable, "-m", "loader.cli", "down"], env=env, check=False)
        shutil.rmtree(state, ignore_errors=True)


def test_up_leaves_a_running_postgres_alone(
    database: str, sqs_endpoint: str, role_prefix: str
) -> None:
    """With Postgres already answering, `up` starts nothing and `down` stops nothing."""
    state = Path(tempfile.mkdtemp(prefix="logins-stack-"))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PG", "AWS_"))},
        "PGHOST": "127.0.0.1",
        "PGDATABASE": database,
        "SOURCES__SQS__QUEUE_URL": f"{sqs_endpoint}/000000000000/login-queue",
        "PII__HMAC_KEY": TEST_HMAC_KEY,
        "STACK__STATE_DIR": str(state),
        "ROLES__PREFIX": role_prefix,
    }
    run = [sys.executable, "-m", "loader.cli"]
    up = subprocess.run([*run, "up"], env=env, capture_output=True, text=True)
    assert up.returncode == 0, up.stderr
    assert "started" not in up.stdout
    down = subprocess.run([*run, "down"], env=env, capture_output=True, text=True)
    assert "nothing" in down.stdout
    assert answers("127.0.0.1", 5432)
    shutil.rmtree(state, ignore_errors=True)
