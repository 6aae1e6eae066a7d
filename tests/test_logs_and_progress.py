"""What the command says: json log lines (one event a line, the run id, no body, IP, device
id or secret), live progress on a terminal, seed's progress, --version, and the summary's
"this run" counts."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from importlib import metadata
from typing import Any

from tests.conftest import Pipeline
from tests.expected import valid_records

# raw's table carries each delivery as received; these are not logins
BAD_BODIES = ["not json at all", '{"user_id": "only a user id"}']


def json_events(stderr: str) -> list[dict[str, Any]]:
    """Every stderr line, each of which must be one JSON object."""
    events = [json.loads(line) for line in stderr.splitlines()]
    assert all(isinstance(event, dict) for event in events)
    for event in events:
        assert {"ts", "level", "event", "message"} <= event.keys(), event
    return events


def pii_of(lines: list[str]) -> set[str]:
    """Each sample message's IP and device id, where it has them."""
    found = set()
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            found |= {str(record[k]) for k in ("ip", "device_id") if record.get(k)}
    return found


def test_json_log_format_carries_the_run_id_and_no_pii(
    pipeline: Pipeline, sample_lines: list[str]
) -> None:
    pipeline.queue.send(sample_lines)
    run = pipeline.logins("--log-format", "json", "run")

    events = json_events(run.stderr)
    summaries = [event for event in events if event["event"] == "run.summary"]
    assert len(summaries) == 1, events
    summary = summaries[0]
    assert (summary["received"], summary["landed"], summary["deleted"]) == (100, 100, 100)
    assert (summary["rows_added"], summary["rejected"]) == (99, 1)
    assert summary["user_logins_rows"] == 99
    assert sum(summary["rejects_by_code"].values()) == 1
    # every event of the run carries its id: the setup's, the load's, the summary
    run_id = summary["run_id"]
    assert re.fullmatch(r"[0-9a-f]{32}", run_id)
    assert {event.get("run_id") for event in events} == {run_id}
    assert {"run.setup", "load.queue", "load.chunk"} <= {event["event"] for event in events}
    # dbt's own lines (stdout) are JSON too, each carrying the run id
    dbt_lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert dbt_lines
    assert {line["info"]["extra"].get("LOGINS_RUN_ID") for line in dbt_lines} == {run_id}

    output = run.stdout + run.stderr
    secrets = pii_of(sample_lines)
    assert len(secrets) >= 150  # the sample's IPs and device ids
    assert [value for value in secrets if value in output] == []
    assert [line for line in sample_lines if line in output] == []
    assert pipeline.env["PGPASSWORD"] not in output.replace('"password"', "")


def test_json_log_format_from_the_environment_and_errors(
    pipeline: Pipeline, sample_lines: list[str]
) -> None:
    pipeline.queue.send(sample_lines[:20])
    load = pipeline.logins("load", LOG_FORMAT="json")
    assert load.stdout == ""
    events = json_events(load.stderr)
    summary = events[-1]
    assert summary["event"] == "load.summary", events
    assert (summary["received"], summary["landed"], summary["deleted"]) == (20, 20, 20)
    assert summary["run_id"]
    assert [value for value in pii_of(sample_lines) if value in load.stderr] == []

    # a failure is one error event with its class: here the queue does not exist
    missing = pipeline.queue.url + "-missing"
    failed = pipeline.logins(
        "--log-format", "json", "load", check=False, SOURCES__SQS__QUEUE_URL=missing
    )
    assert failed.returncode == 3, failed.stderr
    errors = [event for event in json_events(failed.stderr) if event["level"] == "error"]
    assert len(errors) == 1, failed.stderr
    assert errors[0]["event"] == "error"
    assert errors[0]["error_class"] == "SqsUnavailable"
    assert errors[0]["exit_code"] == 3
    assert errors[0]["run_id"]

    # a refused argument, and a bad LOG_FORMAT: one line each, in their format
    refused = pipeline.logins("--log-format", "json", "load", "--max-messages", "0", check=False)
    assert refused.returncode == 2
    (event,) = json_events(refused.stderr)
    assert (event["level"], event["error_class"]) == ("error", "ArgumentError")
    bad = pipeline.logins("load", check=False, LOG_FORMAT="xml")
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: LOG_FORMAT='xml' is not a log format")
    assert bad.stderr.count("\n") == 1


def test_version(pipeline: Pipeline) -> None:
    shown = pipeline.logins("--version")
    assert shown.stdout == f"logins {metadata.version('user-logins-pipeline')}\n"


def test_seed_says_how_far_it_got(pipeline: Pipeline) -> None:
    seeded = pipeline.logins("seed", "--count", "400", "--seed", "1")
    assert seeded.stdout == "sent 400 messages\n"
    counts = [
        int(sent.replace(",", ""))
        for sent in re.findall(
            r"^\[seed\] sent ([\d,]+) of 400 \(\d[\d,]* msg/s\)$", seeded.stderr, re.M
        )
    ]
    assert len(counts) >= 2, seeded.stderr
    assert counts == sorted(counts)
    assert all(0 < count < 400 for count in counts)
    assert pipeline.queue.counts()["visible"] == 400


def on_a_terminal(pipeline: Pipeline, *args: str, **env: str) -> tuple[str, str]:
    """`logins ARGS` with stderr on a pseudo-terminal: (what the terminal showed, stdout)."""
    controller, terminal = pty.openpty()
    # a terminal of 40 rows by 200 columns (a fresh pseudo-terminal has no size)
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 200, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", "loader.cli", *args],
        env={**pipeline.env, **env},
        cwd=pipeline.workdir,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=terminal,
        text=True,
    )
    os.close(terminal)
    shown = b""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        ready, _, _ = select.select([controller], [], [], 1)
        if not ready:
            if process.poll() is not None:
                break
            continue
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the terminal's other end closed: the process is gone
            break
        if not chunk:
            break
        shown += chunk
    os.close(controller)
    stdout = process.stdout.read() if process.stdout else ""
    assert process.wait(30) == 0, shown.decode(errors="replace")
    return shown.decode(errors="replace"), stdout


def last_draw(shown: str) -> str:
    """The bar as it was last drawn: tqdm redraws it in place, after a carriage return (lines
    printed after the bar is gone, such as notes, are not part of it)."""
    draws = [part for part in shown.split("\r") if "%|" in part]
    return draws[-1] if draws else ""


def test_live_progress_on_a_terminal(pipeline: Pipeline) -> None:
    shown, stdout = on_a_terminal(pipeline, "seed", "--count", "100")
    assert stdout == "sent 100 messages\n"
    assert "100/100" in last_draw(shown), shown  # a bar, redrawn in place
    assert "[seed]" not in shown  # the bar, instead of lines

    shown, stdout = on_a_terminal(pipeline, "load")
    assert "received 100, landed 100, deleted 100" in stdout
    assert "[load] chunk 1: landed 100 messages" in shown  # the lines go above the bar
    bar = last_draw(shown)
    assert "100/100" in bar, shown
    assert "landed 100, deleted 100, queue 0 waiting" in bar, shown
    assert "msg/s" in bar

    # a load that waits for messages shows the queue's live depth
    shown, _ = on_a_terminal(pipeline, "load", SOURCES__SQS__WAIT_TIME_SECONDS="4")
    assert re.search(r"waiting for messages: .*queue 0 waiting, 0 in flight", shown), shown


def test_no_progress_bar_off_a_terminal(pipeline: Pipeline, sample_lines: list[str]) -> None:
    pipeline.logins("db", "init")  # the run history is there: no note about it
    pipeline.queue.send(sample_lines)
    load = pipeline.logins("load")
    assert "\r" not in load.stderr
    assert [line.split(":")[0] for line in load.stderr.splitlines()] == [
        "[load] queue " + pipeline.queue.url.rsplit("/", 1)[-1],
        "[load] chunk 1",
    ]


def test_this_run_counts_only_this_runs_messages(
    pipeline: Pipeline, sample_lines: list[str]
) -> None:
    valid = [json.dumps(record) for record in valid_records(sample_lines)]
    # landed by a load alone: no build has seen them when the run starts
    pipeline.queue.send([*valid[:8], BAD_BODIES[0]])
    pipeline.logins("load")
    pipeline.queue.send([*valid[8:13], BAD_BODIES[1]])
    run = pipeline.logins("run")
    assert "received from SQS    6\n" in run.stdout, run.stdout
    assert "rows in user_logins  13  (+5 this run)" in run.stdout, run.stdout
    assert re.search(r"rejected +1 this run  \(2 in all: ", run.stdout), run.stdout
    # and a run with nothing new adds nothing, though the first build's rows are there
    again = pipeline.logins("run")
    assert "rows in user_logins  13  (+0 this run)" in again.stdout, again.stdout
    assert re.search(r"rejected +0 this run  \(2 in all: ", again.stdout), again.stdout
