"""`logins status` as the operator role: what it shows and the exit codes a scheduler alerts
on; and dbt source freshness, which `logins run` checks after each build."""

from __future__ import annotations

from tests.conftest import Pipeline
from tests.test_run_history import runs, set_up


def operator(role_prefix: str) -> dict[str, str]:
    return {"PGUSER": f"{role_prefix}operator"}


def test_status_healthy_stale_and_after_a_failed_run(
    pipeline: Pipeline, sample_lines: list[str], role_prefix: str
) -> None:
    set_up(pipeline)
    before = pipeline.logins("status", check=False, **operator(role_prefix))
    assert before.returncode == 8, before.stderr  # nothing built yet: not healthy
    assert "has not been built yet" in before.stderr

    pipeline.queue.send(sample_lines)
    pipeline.logins("run")
    pipeline.queue.send(sample_lines[:3])  # waiting in the queue
    healthy = pipeline.logins("status", **operator(role_prefix))
    out = healthy.stdout
    assert "queue                3 visible, 0 in flight, oldest message age unknown" in out, out
    assert "newest message" in out
    assert "newest load" in out
    assert "rejects, last 24 h   missing_field 1" in out
    assert "run   succeeded" in out
    assert "received 100, landed 100, +99 rows" in out
    assert out.rstrip().endswith("healthy")
    assert healthy.stderr == ""
    for line in sample_lines:  # no body, IP or device id on the screen
        assert line not in out
    assert "oops_wrong_msg_type" not in out

    # the newest row older than the threshold: stale, exit 8, one line saying why
    pipeline.query("update public.user_logins set loaded_at = loaded_at - interval '2 hours'")
    stale = pipeline.logins(
        "status", check=False, STATUS__MAX_AGE_MINUTES="60", **operator(role_prefix)
    )
    assert stale.returncode == 8, stale.stderr
    [line] = stale.stderr.splitlines()
    assert line.startswith("error: the newest row in public.user_logins was loaded 2")
    assert "STATUS__MAX_AGE_MINUTES (60)" in line
    assert "healthy" not in stale.stdout

    # the next run fails (user_logins refuses its rows): exit 1 first, naming the run
    pipeline.query(
        "alter table public.user_logins add constraint refuse_new_rows"
        " check (sent_at < '2000-01-01') not valid"
    )
    assert pipeline.logins("run", check=False).returncode == 6
    failed = pipeline.logins(
        "status", check=False, STATUS__MAX_AGE_MINUTES="60", **operator(role_prefix)
    )
    assert failed.returncode == 1, failed.stderr
    [line] = failed.stderr.splitlines()
    assert line.startswith("error: the last run (run, ")
    assert "failed: TransformFailed" in line
    assert "STATUS__MAX_AGE_MINUTES" in line  # the stale data is named too
    assert "run   failed (TransformFailed)" in failed.stdout


def test_status_refuses_roles_that_may_not_read_the_history(
    pipeline: Pipeline, role_prefix: str
) -> None:
    set_up(pipeline)
    pipeline.logins("run")
    analyst = pipeline.logins("status", check=False, PGUSER=f"{role_prefix}analyst")
    assert analyst.returncode == 2, analyst.stderr
    assert "run `logins status` as the operator role" in analyst.stderr
    bad = pipeline.logins("status", check=False, STATUS__MAX_AGE_MINUTES="soon")
    assert bad.returncode == 2
    assert "STATUS__MAX_AGE_MINUTES" in bad.stderr


def test_a_stale_source_warns_then_fails_the_run(
    pipeline: Pipeline, sample_lines: list[str]
) -> None:
    set_up(pipeline)
    pipeline.queue.send(sample_lines[:5])
    fresh = pipeline.logins("run")
    assert "source freshness     pass: sqs._dlt_loads" in fresh.stdout
    assert fresh.stdout.count("source freshness") == 1, fresh.stdout  # the source, not hooks

    # no load for 30 hours: past warn_after (24 h), the run still succeeds and says so
    pipeline.query("update raw._dlt_loads set inserted_at = inserted_at - interval '30 hours'")
    warned = pipeline.logins("run")
    assert "source freshness     warn: sqs._dlt_loads, newest load 30.0 h ago" in warned.stdout

    # 100 hours: past error_after (72 h), `logins run` fails with exit 8, and records it
    pipeline.query("update raw._dlt_loads set inserted_at = inserted_at - interval '70 hours'")
    failed = pipeline.logins("run", check=False)
    assert failed.returncode == 8, failed.stderr
    assert "error: dbt source freshness: sqs._dlt_loads error" in failed.stderr
    last = runs(pipeline)[-1]
    assert (last["status"], last["error_class"]) == ("failed", "DataStale")

    # a new message lands: fresh again
    pipeline.queue.send(sample_lines[5:6])
    again = pipeline.logins("run")
    assert "source freshness     pass" in again.stdout
