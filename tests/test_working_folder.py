"""dlt's working folder: one per pipeline (destination and queue), private to its owner, and
settled (pending packages finished, failure records gone) before an erasure."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from dlt.destinations.impl.postgres.configuration import PostgresCredentials

from loader.ingest.load import settle_pending_packages
from loader.settings import LoaderSettings
from tests.conftest import PG, Pipeline, query
from tests.test_delivery import SHORT_VISIBILITY, wait_until_visible
from tests.test_hostile_input import login

MARKER = "MARKER-5c0e2a77-plaintext"


def slots(pipelines_dir: Path) -> set[str]:
    return {path.name for path in pipelines_dir.iterdir() if not path.name.startswith(".")}


def files_holding(folder: Path, text: str) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and text.encode() in p.read_bytes()]


def test_two_pipelines_never_share_a_slot_or_a_package(
    pipeline: Pipeline, database: str, tmp_path: Path
) -> None:
    other = f"{database}_other"
    query("postgres", f'create database "{other}"')
    try:
        shared = {"LOADER__PIPELINES_DIR": str(tmp_path / "shared")}
        pipeline.queue.send([login(user_id=MARKER)])
        # the message stays hidden (300 s): only the package on disk can bring it anywhere
        crashed = pipeline.logins("load", check=False, LOGINS_CRASH_AT="normalized", **shared)
        assert crashed.returncode == -9  # left a normalized package in its slot
        (mine,) = slots(tmp_path / "shared")

        # another database, the same queue and working folder
        other_run = pipeline.logins("load", PGDATABASE=other, **shared)
        assert "finishing" not in other_run.stderr
        assert len(slots(tmp_path / "shared")) == 2
        assert query(other, "select count(*) from raw.login_messages") == [(0,)]
        assert files_holding(tmp_path / "shared" / mine, MARKER)  # still pending, for its own

        rerun = pipeline.logins("load", **shared)
        assert "finishing 1 load package(s)" in rerun.stderr
        assert len(slots(tmp_path / "shared")) == 2
        assert pipeline.query(
            "select count(*) from raw.login_messages where strpos(body, %s) > 0", (MARKER,)
        ) == [(1,)]
        assert query(other, "select count(*) from raw.login_messages") == [(0,)]
    finally:
        query("postgres", f'drop database if exists "{other}" with (force)')


def test_the_working_folder_is_the_owners_alone(pipeline: Pipeline, tmp_path: Path) -> None:
    pipeline.queue.send([login()])
    pipeline.logins("load", LOGINS_CRASH_AT="normalized", check=False, **SHORT_VISIBILITY)
    wait_until_visible(pipeline.queue, 1)
    pipelines_dir = tmp_path / "dlt"
    pipelines_dir.chmod(0o755)  # as an older loader left it
    pipeline.logins("load")

    for path in [pipelines_dir, *pipelines_dir.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))


def test_settling_finishes_pending_packages_and_leaves_no_body(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    pipeline.queue.send([login()])
    pipeline.logins("load")
    pipeline.queue.send([login(user_id=MARKER)])
    crashed = pipeline.logins("load", check=False, LOGINS_CRASH_AT="normalized")
    assert crashed.returncode == -9
    pipelines_dir = tmp_path / "dlt"
    assert files_holding(pipelines_dir, MARKER)

    (pipelines_dir / "sqs_logins").mkdir()  # an older loader's slot: unknown database
    said: list[str] = []
    finished = settle_pending_packages(
        LoaderSettings(pipelines_dir=str(pipelines_dir)),
        _credentials(pipeline.database),
        pipeline.queue.url,
        said.append,
    )

    assert finished == 1
    assert pipeline.query(
        "select count(*) from raw.login_messages where strpos(body, %s) > 0", (MARKER,)
    ) == [(1,)]
    assert files_holding(pipelines_dir, MARKER) == []
    assert all(MARKER not in line for line in said)
    assert any("older loader (sqs_logins)" in line for line in said), said


def _credentials(database: str) -> PostgresCredentials:
    credentials = PostgresCredentials()
    credentials.host, credentials.port = PG["host"], PG["port"]
    credentials.username, credentials.password = PG["user"], PG["password"]
    credentials.database = database
    return credentials


def test_umask_is_restored() -> None:
    from loader.ingest.slots import owner_only_files

    before = os.umask(0o022)
    try:
        with owner_only_files():
            pass
        assert os.umask(0o022) == 0o022
    finally:
        os.umask(before)
