"""Refusals: a clear one-line error, a non-zero exit, and every message still in the queue."""

from __future__ import annotations

import pytest

from tests.conftest import Pipeline, PrivatePostgres, free_port


@pytest.fixture
def loaded_queue(pipeline: Pipeline, sample_lines: list[str]) -> Pipeline:
    pipeline.queue.send(sample_lines)
    return pipeline


def _one_line_error(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr
    return errors[0]


def test_missing_queue(loaded_queue: Pipeline) -> None:
    missing = loaded_queue.queue.url.rsplit("/", 1)[0] + "/no-such-queue"
    result = loaded_queue.logins("load", check=False, SOURCES__SQS__QUEUE_URL=missing)
    assert result.returncode == 3
    line = _one_line_error(result.stderr)
    assert "queue 'no-such-queue' does not exist" in line
    assert "SOURCES__SQS__QUEUE_URL" in line
    assert loaded_queue.queue.counts() == {"visible": 100, "in_flight": 0}


def test_unreachable_sqs_endpoint(loaded_queue: Pipeline) -> None:
    dead = f"http://127.0.0.1:{free_port()}/000000000000/login-queue"
    result = loaded_queue.logins("load", check=False, SOURCES__SQS__QUEUE_URL=dead)
    assert result.returncode == 3
    assert "cannot reach the SQS endpoint" in _one_line_error(result.stderr)
    assert loaded_queue.queue.counts() == {"visible": 100, "in_flight": 0}


def test_postgres_refuses_connection(loaded_queue: Pipeline) -> None:
    result = loaded_queue.logins("run", check=False, PGPORT=str(free_port()))
    assert result.returncode == 4
    line = _one_line_error(result.stderr)
    assert "cannot connect to Postgres" in line
    assert "PGHOST / PGPORT" in line
    assert loaded_queue.queue.counts() == {"visible": 100, "in_flight": 0}


def test_postgres_refuses_password(
    loaded_queue: Pipeline, private_postgres: PrivatePostgres
) -> None:
    result = loaded_queue.logins(
        "load", check=False, PGPORT=str(private_postgres.port), PGPASSWORD="wrong-password"
    )
    assert result.returncode == 4
    line = _one_line_error(result.stderr)
    assert "password authentication failed" in line
    assert "PGPASSWORD" in line
    assert "wrong-password" not in result.stderr + result.stdout
    assert loaded_queue.queue.counts() == {"visible": 100, "in_flight": 0}


def test_bad_arguments_are_refused(pipeline: Pipeline) -> None:
    result = pipeline.logins("load", "--max-messages", "0", check=False)
    assert result.returncode == 2
    assert "must be at least 1" in result.stderr
