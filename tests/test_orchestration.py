"""The Dagster code location (loader/orchestration): its definitions validate, a run of its
assets in-process lands the sample through dbt against real Postgres and the SQS emulator,
its sensor reads the real queue, and the web UI draws the asset graph in Chromium."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from loader.devstack.ports import free_port, wait_until_answers
from tests.conftest import REPO, Pipeline
from tests.expected import USER_LOGINS_COLUMNS, expected_row, valid_records

dg = pytest.importorskip("dagster", reason="the orchestrate extra is not installed")

SCREENSHOT = REPO / "test-artifacts" / "dagster" / "asset-graph.png"
# the code location's one asset group (loader/orchestration/load_asset.py)
GROUP = "user_logins_pipeline"
# what the graph must show: the load's table, then dbt's models
GRAPH_NAMES = [
    "login_messages",
    "stg_sqs__login_events",
    "user_logins",
    "stg_sqs__login_event_rejects",
]


@pytest.fixture(scope="module")
def orchestration() -> ModuleType:
    """The code location, imported once per worker (Dagster and dbt are slow to import)."""
    import loader.orchestration

    return loader.orchestration


@pytest.fixture
def pipeline_environment(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> Pipeline:
    """This process's environment made the test pipeline's, as a deployment's would be."""
    for name in list(os.environ):
        if name.startswith(("PG", "AWS_", "DBT_")) and name not in pipeline.env:
            monkeypatch.delenv(name)
    for name, value in pipeline.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(pipeline.workdir)
    return pipeline


def test_the_definitions_validate(tmp_path: Path) -> None:
    validated = subprocess.run(
        [
            sys.executable,
            "-m",
            "dagster",
            "definitions",
            "validate",
            "-m",
            "loader.orchestration",
        ],
        cwd=REPO,
        env={**os.environ, "DAGSTER_HOME": str(tmp_path), "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert validated.returncode == 0, validated.stderr[-3000:]
    assert "Validation successful for code location loader.orchestration" in (
        validated.stdout + validated.stderr
    )


def test_a_materialization_lands_every_message_and_empties_the_queue(
    orchestration: ModuleType, pipeline_environment: Pipeline, sample_lines: list[str]
) -> None:
    pipeline = pipeline_environment
    pipeline.logins("db", "init")
    pipeline.queue.send(sample_lines)
    defs = orchestration.defs

    result = defs.resolve_job_def("load_and_build").execute_in_process(
        instance=dg.DagsterInstance.ephemeral()
    )

    assert result.success
    # every message landed once, reached user_logins or the rejects, and left the queue
    assert pipeline.query(
        "select count(*), count(distinct message_id) from raw.login_messages"
    ) == [(100, 100)]
    rows = pipeline.query(f"select {USER_LOGINS_COLUMNS} from public.user_logins")
    assert sorted(rows, key=str) == sorted(
        (expected_row(record) for record in valid_records(sample_lines)), key=str
    )
    assert pipeline.query("select count(*) from staging.stg_sqs__login_event_rejects") == [(1,)]
    assert pipeline.queue.counts() == {"visible": 0, "in_flight": 0}

    load = _materialization(result, ["raw", "login_messages"])
    assert {
        name: load[name] for name in ("received", "landed", "deleted", "queue_visible_after")
    } == {
        "received": 100,
        "landed": 100,
        "deleted": 100,
        "queue_visible_after": 0,
    }
    assert load["duration_seconds"] > 0
    # the run is in the history as `logins load` records it
    assert pipeline.query(
        "select command, status, received, landed, deleted from ops.pipeline_runs"
    ) == [("load", "succeeded", 100, 100, 100)]
    assert _materialization(result, ["user_logins"])["dagster/row_count"] == 99
    staging = _materialization(result, ["staging", "stg_sqs__login_events"])
    assert staging["dagster/row_count"] == 100
    assert staging["Execution Duration"] > 0  # dagster-dbt's own timing
    rejects = _materialization(result, ["staging", "stg_sqs__login_event_rejects"])
    assert rejects["dagster/row_count"] == 1
    checks = result.get_asset_check_evaluations()
    assert checks
    assert all(check.passed for check in checks), [c.check_name for c in checks if not c.passed]


def _materialization(result: Any, key: list[str]) -> dict[str, Any]:
    """The metadata of the run's one materialization of `key`."""
    (event,) = [
        materialization
        for materialization in (
            event.step_materialization_data.materialization
            for event in result.get_asset_materialization_events()
        )
        if materialization.asset_key == dg.AssetKey(key)
    ]
    return {name: value.value for name, value in event.metadata.items()}


def test_the_sensor_requests_a_run_past_the_queue_depth_and_not_again_too_soon(
    orchestration: ModuleType, pipeline_environment: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loader.orchestration.triggers import queue_depth_sensor

    monkeypatch.setenv("ORCHESTRATE__SENSOR_QUEUE_DEPTH", "5")
    monkeypatch.setenv("ORCHESTRATE__SENSOR_MIN_INTERVAL_SECONDS", "3600")
    queue = pipeline_environment.queue
    queue.send(["{}"] * 4)
    context = dg.build_sensor_context()

    below = queue_depth_sensor(context)
    assert isinstance(below, dg.SkipReason)
    assert "4 messages waiting, below the threshold of 5" in below.skip_message
    assert context.cursor is None

    queue.send(["{}"] * 2)
    above = queue_depth_sensor(context)
    assert isinstance(above, dg.RunRequest)
    assert above.tags["queue_visible"] == "6"
    assert context.cursor is not None
    # within the minimum interval, a deep queue asks for no second run
    again = queue_depth_sensor(dg.build_sensor_context(cursor=context.cursor))
    assert isinstance(again, dg.SkipReason)
    assert "minimum interval 3600 s" in again.skip_message
    # the sensor only looked: every message is still waiting
    assert queue.counts() == {"visible": 6, "in_flight": 0}


def test_the_schedule_runs_every_five_minutes_unless_configured(
    orchestration: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loader.errors import ConfigurationError
    from loader.orchestration.triggers import every_few_minutes

    (schedule,) = orchestration.defs.schedules
    assert schedule.cron_schedule == "*/5 * * * *"
    assert schedule.job_name == "load_and_build"
    monkeypatch.setenv("ORCHESTRATE__SCHEDULE_CRON", "0 * * * *")
    assert every_few_minutes().cron_schedule == "0 * * * *"
    monkeypatch.setenv("ORCHESTRATE__SCHEDULE_CRON", "every minute")
    with pytest.raises(ConfigurationError, match="ORCHESTRATE__SCHEDULE_CRON"):
        every_few_minutes()


@pytest.fixture(scope="module")
def webserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`dagster-webserver` on the code location, on a free port; yields its base URL."""
    home = tmp_path_factory.mktemp("dagster-home")
    port = free_port()
    log = (home / "webserver.log").open("wb")
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "dagster-webserver"),
            *("-m", "loader.orchestration", "-h", "127.0.0.1", "-p", str(port)),
        ],
        cwd=REPO,
        env={**os.environ, "DAGSTER_HOME": str(home), "PYTHONPATH": str(REPO)},
        stdout=log,
        stderr=log,
    )
    try:
        wait_until_answers("127.0.0.1", port, 120)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(30)
        log.close()


def test_the_web_ui_draws_the_load_and_the_dbt_models(webserver: str) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium")
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 900})
            page.goto(f"{webserver}/locations/loader.orchestration/asset-groups/{GROUP}/lineage")
            for name in GRAPH_NAMES:
                page.get_by_text(name, exact=True).first.wait_for(state="visible", timeout=60_000)
            # every node's status loaded from the (new) instance
            expect(page.get_by_text("Never materialized", exact=True)).to_have_count(
                4, timeout=60_000
            )
            # a first visit asks to join a newsletter, over the graph, a moment after it
            # loads: decline it when it comes
            skip = page.get_by_role("button", name="Skip")
            # (not asked, as another Dagster version may not: nothing covers the graph)
            with contextlib.suppress(PlaywrightTimeout):
                skip.click(timeout=10_000)
            expect(skip).to_be_hidden()
            # each name once: a node in the graph, not a list entry beside it
            assert [page.get_by_text(name, exact=True).count() for name in GRAPH_NAMES] == [1] * 4
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOT))
        finally:
            browser.close()
    assert SCREENSHOT.stat().st_size > 10_000
