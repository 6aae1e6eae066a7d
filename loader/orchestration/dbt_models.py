"""The dbt models as assets (`@dbt_assets` on the project's manifest), dbt's tests as asset
checks, and dbt's raw sources drawn as the SQS load's output so the graph reads
SQS load -> raw -> staging -> user_logins."""

import fcntl
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    DbtProject,
    dbt_assets,
)

from loader import warehouse
from loader.names import REJECTS, STAGING, STAGING_SCHEMA, USER_LOGINS
from loader.orchestration.load_asset import GROUP, LOAD_ASSET_KEY
from loader.paths import project_root
from loader.settings import libpq_environment, marts_schema, postgres_credentials

# The manifest Dagster reads: its own folder under target/, so a `dbt build` elsewhere does
# not replace it midway. The image parses into it at build time (Dockerfile).
MANIFEST_DIR = Path("target") / "dagster"
# The dbt source that reads what the load lands (_sqs__sources.yml).
RAW_SOURCE = "sqs"
# What each build runs: the default selector (selectors.yml), as `logins run` does.
SELECTOR = "incremental"

# The tables whose row count each build's materialization carries.
_COUNTED = {STAGING, USER_LOGINS, REJECTS}

PROJECT = DbtProject(project_dir=project_root(), target_path=MANIFEST_DIR)


def dbt_executable() -> str:
    """This environment's dbt (the venv's, beside its Python), whether or not it is on PATH."""
    beside = Path(sys.executable).parent / "dbt"
    return str(beside) if beside.exists() else "dbt"


def dbt_resource() -> DbtCliResource:
    return DbtCliResource(project_dir=PROJECT, dbt_executable=dbt_executable())


def _dbt_files_newer_than(manifest: Path) -> bool:
    """Whether any dbt file changed since `manifest` was parsed (or it is missing)."""
    if not manifest.exists():
        return True
    parsed_at = manifest.stat().st_mtime
    root = project_root()
    files = [root / name for name in ("dbt_project.yml", "selectors.yml", "profiles.yml")]
    files += [path for path in (root / "dbt_project").rglob("*") if path.is_file()]
    return any(path.stat().st_mtime > parsed_at for path in files if path.exists())


def ensure_manifest(project: DbtProject = PROJECT) -> Path:
    """The manifest, parsed (`dbt parse`, no database needed) when it is older than the dbt
    files: at definition time, so `dagster definitions validate` and a fresh clone work."""
    if not _dbt_files_newer_than(project.manifest_path):
        return project.manifest_path
    folder = project.project_dir / project.target_path
    folder.mkdir(parents=True, exist_ok=True)
    # processes loading the code location at once (test workers, the webserver and its
    # code server) parse one at a time; the others then find the manifest fresh
    with (folder / "parse.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _dbt_files_newer_than(project.manifest_path):
            dbt_resource().cli(["parse", "--quiet"], target_path=project.target_path).wait()
    return project.manifest_path


class LoginsTranslator(DagsterDbtTranslator):
    """dbt's raw sources are the load's table; the models join the load's group."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if (
            dbt_resource_props["resource_type"] == "source"
            and dbt_resource_props["source_name"] == RAW_SOURCE
        ):
            return LOAD_ASSET_KEY
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return GROUP


TRANSLATOR = LoginsTranslator(
    # both raw sources (login_messages, _dlt_loads) are the one load asset
    settings=DagsterDbtTranslatorSettings(
        enable_asset_checks=True, enable_duplicate_source_asset_keys=True
    )
)


@dbt_assets(
    manifest=ensure_manifest(),
    project=PROJECT,
    selector=SELECTOR,
    dagster_dbt_translator=TRANSLATOR,
)
def dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource) -> Iterator[Any]:
    """`dbt build` pointed where the loader points. dbt's own on-run-start hook takes the
    build lock (dbt_project/macros/build_lock/), so it takes turns with `logins run`."""
    environment = libpq_environment(postgres_credentials())
    marts_schema()  # dbt's profile reads DBT_SCHEMA itself: checked now
    # dbt scrubs DBT_ENV_SECRET_* values from its logs; the shipped profile reads this first
    environment["DBT_ENV_SECRET_PGPASSWORD"] = environment["PGPASSWORD"]
    os.environ.update(environment)
    for event in dbt.cli(["build"], context=context).stream():
        yield _with_row_count(context, event)


def _with_row_count(context: dg.AssetExecutionContext, event: Any) -> Any:
    """`event` with the row count of the table it built: staging, user_logins, the rejects
    (the count of rejected messages). Counted here, not by dagster-dbt's fetch_row_counts,
    which names relations in the database the manifest was parsed against."""
    if not isinstance(event, dg.Output):
        return event
    table = context.asset_key_for_output(event.output_name).path[-1]
    if table not in _COUNTED:
        return event
    schema = marts_schema() if table == USER_LOGINS else STAGING_SCHEMA
    with warehouse.connect(postgres_credentials()) as conn:
        rows = warehouse.count_rows(conn, schema, table)
    return event.with_metadata({**event.metadata, "dagster/row_count": rows or 0})
