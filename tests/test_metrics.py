"""Metrics: `logins run` and `logins load` push each run's report to a real Pushgateway (Debian's
`prometheus-pushgateway`, started here on a free loopback port) and write node_exporter's
textfile; a failed run keeps the last success. Bad METRICS__* settings are refused before any
work, and a Pushgateway that does not answer costs the run one note line, never its exit."""

from __future__ import annotations

import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from loader.operations import metrics
from loader.operations.run_report import FAILED, SUCCEEDED, QueueState, RunReport
from tests.conftest import Pipeline, free_port, wait_for_port

PUSHGATEWAY = Path("/usr/bin/prometheus-pushgateway")
SECRET = "s3cr3t-pw"

Values = dict[tuple[str, frozenset[tuple[str, str]]], float]


@dataclass
class Pushgateway:
    url: str

    def scrape(self) -> Values:
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=10) as answer:  # noqa: S310
            return parse(answer.read().decode())


@pytest.fixture
def pushgateway() -> Iterator[Pushgateway]:
    """A Pushgateway of this test's own: loopback only, no persistence file."""
    if not PUSHGATEWAY.exists():
        pytest.fail(
            f"{PUSHGATEWAY} is missing: install Debian's prometheus-pushgateway "
            "(apt-get install prometheus-pushgateway; .ci/run does it)"
        )
    port = free_port()
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [str(PUSHGATEWAY), f"--web.listen-address=127.0.0.1:{port}", "--persistence.file="],
            stdout=log,
            stderr=log,
        )
        try:
            wait_for_port("127.0.0.1", port)
            yield Pushgateway(f"http://127.0.0.1:{port}")
        finally:
            process.terminate()
            process.wait(10)


def parse(text: str) -> Values:
    """Every `logins_` sample, keyed by name and labels (less job and instance, which the
    Pushgateway adds from the grouping key)."""
    return {
        (
            sample.name,
            frozenset((k, v) for k, v in sample.labels.items() if k not in ("job", "instance")),
        ): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("logins_")
    }


def value(values: Values, name: str, **labels: str) -> float:
    return values[(name, frozenset(labels.items()))]


def named(values: Values, name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {labels: v for (n, labels), v in values.items() if n == name}


def test_run_pushes_its_metrics_and_a_failure_keeps_the_last_success(
    pipeline: Pipeline, sample_lines: list[str], pushgateway: Pushgateway, tmp_path: Path
) -> None:
    textfile = tmp_path / "textfile" / "logins.prom"
    textfile.parent.mkdir()
    sinks = {"METRICS__PUSHGATEWAY_URL": pushgateway.url, "METRICS__TEXTFILE": str(textfile)}
    pipeline.queue.send(sample_lines)

    started = time.time()
    pipeline.logins("run", **sinks)
    ended = time.time()

    pushed = pushgateway.scrape()
    run = {"command": "run"}
    assert value(pushed, "logins_run_messages_received", **run) == 100
    assert value(pushed, "logins_run_messages_landed", **run) == 100
    assert value(pushed, "logins_run_messages_deleted", **run) == 100
    assert named(pushed, "logins_run_messages_rejected") == {
        frozenset({"command": "run", "code": "missing_field"}.items()): 1
    }
    assert value(pushed, "logins_run_reject_ratio", **run) == pytest.approx(0.01)
    assert value(pushed, "logins_run_rows_added", **run) == 99
    assert value(pushed, "logins_user_logins_rows", **run) == 99
    last_success = value(pushed, "logins_last_success_timestamp_seconds", **run)
    assert started <= last_success <= ended
    assert value(pushed, "logins_last_run_status", **run, status="succeeded") == 1
    assert value(pushed, "logins_last_run_status", **run, status="failed") == 0
    assert named(pushed, "logins_last_failure_timestamp_seconds") == {}
    steps = {
        dict(labels)["step"]: seconds
        for labels, seconds in named(pushed, "logins_step_duration_seconds").items()
    }
    assert {"setup", "load", "build", "roles"} <= set(steps)
    assert all(0 < seconds < ended - started for seconds in steps.values())
    assert 0 < value(pushed, "logins_run_duration_seconds", **run) <= ended - started
    queue = named(pushed, "logins_queue_messages")
    assert queue[frozenset({**run, "at": "start", "state": "visible"}.items())] == 100
    assert queue[frozenset({**run, "at": "end", "state": "visible"}.items())] == 0
    assert queue[frozenset({**run, "at": "end", "state": "in_flight"}.items())] == 0
    # the textfile says the same, and parses
    assert parse(textfile.read_text()) == pushed

    # a run that fails (its queue is gone) records the failure and keeps the last success
    missing_queue = pipeline.queue.url.rsplit("/", 1)[0] + "/no-such-queue"
    failed = pipeline.logins("run", check=False, SOURCES__SQS__QUEUE_URL=missing_queue, **sinks)
    assert failed.returncode == 3, failed.stderr
    failed_at = time.time()
    for after in (pushgateway.scrape(), parse(textfile.read_text())):
        assert value(after, "logins_last_success_timestamp_seconds", **run) == last_success
        ((labels, failure_time),) = named(after, "logins_last_failure_timestamp_seconds").items()
        assert ended <= failure_time <= failed_at
        assert dict(labels) == {**run, "error_class": "SqsUnavailable"}
        assert value(after, "logins_last_run_status", **run, status="failed") == 1
        assert value(after, "logins_last_run_status", **run, status="succeeded") == 0
        assert value(after, "logins_run_messages_received", **run) == 0
        # what the failed run never measured is still the last success's
        assert value(after, "logins_user_logins_rows", **run) == 99


def report(command: str, status: str, **counts: int) -> RunReport:
    done = RunReport(command)
    done.status, done.ended_at = status, done.started_at + timedelta(seconds=2)
    done.error_class = "LoadFailed" if status == FAILED else None
    done.received = done.landed = done.deleted = counts.get("received", 0)
    if "rejected" in counts:
        done.rejects_by_code = {"invalid_ip": counts["rejected"]} if counts["rejected"] else {}
        done.rows_added = done.user_logins_rows = counts["received"] - counts["rejected"]
    done.step_seconds = {"load": 1.0}
    done.queue_before = done.queue_after = QueueState(visible=5, in_flight=1)
    return done


def test_a_success_replaces_its_group_and_keeps_the_last_failure(
    pushgateway: Pushgateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    textfile = tmp_path / "logins.prom"
    monkeypatch.setenv("METRICS__PUSHGATEWAY_URL", pushgateway.url)
    monkeypatch.setenv("METRICS__TEXTFILE", str(textfile))
    first = report("run", SUCCEEDED, received=10, rejected=2)
    metrics.publish(first)
    failure = report("run", FAILED, received=3)
    metrics.publish(failure)
    loaded = report("load", SUCCEEDED, received=7)
    metrics.publish(loaded)
    second = report("run", SUCCEEDED, received=4, rejected=0)
    second.queue_after = QueueState(visible=0, in_flight=0, oldest_age_seconds=None)
    second.queue_before = QueueState(visible=4, in_flight=0, oldest_age_seconds=42.0)
    metrics.publish(second)

    for now in (pushgateway.scrape(), parse(textfile.read_text())):
        run, load = {"command": "run"}, {"command": "load"}
        assert value(now, "logins_last_success_timestamp_seconds", **run) == (
            second.ended_at.timestamp()  # type: ignore[union-attr]
        )
        assert value(
            now, "logins_last_failure_timestamp_seconds", **run, error_class="LoadFailed"
        ) == (
            failure.ended_at.timestamp()  # type: ignore[union-attr]
        )
        assert value(now, "logins_run_messages_received", **run) == 4
        # the first run's rejects are gone: no reject this time, and a ratio of 0
        assert named(now, "logins_run_messages_rejected") == {}
        assert value(now, "logins_run_reject_ratio", **run) == 0
        assert named(now, "logins_queue_oldest_message_age_seconds") == {
            frozenset({**run, "at": "start"}.items()): 42.0
        }
        # the other command's group is its own
        assert value(now, "logins_run_messages_received", **load) == 7
        assert value(now, "logins_last_success_timestamp_seconds", **load) == (
            loaded.ended_at.timestamp()  # type: ignore[union-attr]
        )


@pytest.mark.parametrize(
    ("command", "variable", "value"),
    [
        ("run", "METRICS__PUSHGATEWAY_URL", "pushgateway:9091"),
        ("run", "METRICS__PUSHGATEWAY_URL", f"ftp://ops:{SECRET}@pushgateway:9091"),
        ("load", "METRICS__PUSHGATEWAY_URL", f"http://ops:{SECRET}@pushgateway:port"),
        ("run", "METRICS__TEXTFILE", "logins.txt"),
        ("load", "METRICS__TEXTFILE", "/no/such/folder/logins.prom"),
        ("run", "METRICS__TIMEOUT_SECONDS", "0"),
        ("load", "METRICS__TIMEOUT_SECONDS", "soon"),
        ("run", "METRICS__JOB", "logins job"),
        ("run", "METRICS__INSTANCE", "host/1"),
    ],
)
def test_bad_metrics_setting_is_one_line_before_any_work(
    pipeline: Pipeline, command: str, variable: str, value: str
) -> None:
    pipeline.queue.send(['{"user_id": "u"}'])
    result = pipeline.logins(command, check=False, timeout=60, **{variable: value})
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert variable in errors[0]
    assert SECRET not in result.stdout + result.stderr
    # nothing was received, nothing set up
    assert pipeline.queue.counts() == {"visible": 1, "in_flight": 0}
    assert pipeline.query("select 1 from pg_namespace where nspname = 'pii'") == []


def test_a_pushgateway_that_does_not_answer_costs_one_note(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    textfile = tmp_path / "logins.prom"
    before = datetime.now(UTC).timestamp()
    result = pipeline.logins(
        "load",
        METRICS__PUSHGATEWAY_URL=f"http://ops:{SECRET}@127.0.0.1:{free_port()}",
        METRICS__TEXTFILE=str(textfile),
        METRICS__TIMEOUT_SECONDS="2",
    )
    notes = [line for line in result.stderr.splitlines() if "metrics not recorded" in line]
    assert len(notes) == 1, result.stderr
    assert SECRET not in result.stdout + result.stderr
    # the textfile is written all the same
    written = parse(textfile.read_text())
    assert value(written, "logins_last_success_timestamp_seconds", command="load") >= before
