"""`dbt build`, run in-process for `logins run`, pointed where the loader points."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlt.destinations.impl.postgres.configuration import PostgresCredentials

from loader import logs, warehouse
from loader.errors import TransformFailed
from loader.paths import project_root
from loader.settings import libpq_environment
from loader.warehouse.connection import describe_postgres

# Builds of one database take turns on this advisory lock; dbt's hooks take the same one
# (dbt_project/macros/build_lock/), so a plain `dbt build` waits for `logins run` too.
BUILD_LOCK = "logins dbt build"
# Names the session holding the lock for this build, so dbt's hooks do not wait for it.
LOCK_HOLDER_VARIABLE = "LOGINS_BUILD_LOCK_PID"


def dbt_build(
    credentials: PostgresCredentials,
    extra_args: list[str] | None = None,
    full_check: bool = False,
    on_result: Callable[[Any], None] | None = None,
) -> None:
    """The default selector (selectors.yml) builds every model with the checks that grow with
    new data only; `full_check` adds the whole-table checks and unit tests. `on_result` is
    handed dbt's result (a dbtRunnerResult) before a failure is raised, so what dbt did is
    known either way."""
    selector = ["--selector", "full_check"] if full_check else []
    result = _invoke(credentials, ["build"], [*selector, *(extra_args or [])])
    if on_result is not None:
        on_result(result)
    if not result.success:
        reason = f": {result.exception}" if result.exception else ""
        raise TransformFailed(
            f"dbt build failed{reason} (the errors are above and in logs/dbt.log); the loaded "
            "messages are safe in raw and the next build picks them up"
        )


@dataclass
class SourceFreshness:
    """One source table's `dbt source freshness` outcome."""

    source: str  # e.g. sqs._dlt_loads
    status: str  # pass, warn, error or runtime error (dbt's)
    age_seconds: float | None  # since its newest load; None where dbt could not tell


def source_freshness(credentials: PostgresCredentials) -> list[SourceFreshness]:
    """`dbt source freshness` with the default selector (the raw source, selectors.yml), on
    its turn as builds take it; each checked source and its status."""
    result = _invoke(credentials, ["source", "freshness"], [])
    # the run's hooks are results too: only the sources' count
    outcomes = [
        outcome
        for outcome in getattr(result.result, "results", None) or []
        if str(getattr(outcome.node, "unique_id", "")).startswith("source.")
    ]
    if not outcomes and not result.success:
        reason = f": {type(result.exception).__name__}" if result.exception else ""
        raise TransformFailed(
            f"dbt source freshness failed{reason} (the errors are above and in logs/dbt.log)"
        )
    return [
        SourceFreshness(
            source=".".join(outcome.node.unique_id.split(".")[-2:]),
            status=str(getattr(outcome.status, "value", outcome.status)),
            age_seconds=getattr(outcome, "age", None),
        )
        for outcome in outcomes
    ]


def docs_generate(credentials: PostgresCredentials, target: Path) -> None:
    """`dbt docs generate` into `target` (the site: index.html, manifest.json, catalog.json)."""
    result = _invoke(credentials, ["docs", "generate"], ["--target-path", str(target)])
    if not result.success:
        reason = f": {type(result.exception).__name__}" if result.exception else ""
        raise TransformFailed(
            f"dbt docs generate failed{reason} (the errors are above and in logs/dbt.log)"
        )


def _invoke(credentials: PostgresCredentials, command: list[str], options: list[str]) -> Any:
    """dbt, in-process, pointed where the loader points, holding the build lock (its hooks
    replace functions) so that its hooks see the turn is theirs."""
    from dbt.cli.main import dbtRunner  # dbt is slow to import; only `run` needs it

    environment = libpq_environment(credentials)
    # dbt scrubs DBT_ENV_SECRET_* values from its logs; the shipped profile reads this first.
    environment["DBT_ENV_SECRET_PGPASSWORD"] = environment["PGPASSWORD"]
    os.environ.update(environment)
    root = str(project_root())
    with build_lock(credentials) as holder:
        os.environ[LOCK_HOLDER_VARIABLE] = str(holder)
        try:
            log_format = ["--log-format", "json"] if logs.current_format() == logs.JSON else []
            return dbtRunner().invoke(
                [*command, "--project-dir", root, "--profiles-dir", root, *log_format, *options]
            )
        finally:
            del os.environ[LOCK_HOLDER_VARIABLE]


@contextmanager
def build_lock(credentials: PostgresCredentials) -> Iterator[int]:
    """Waits for any other build of this database, then holds the lock until the build ends.
    Yields the pid of the session holding it."""
    waiting = (
        f"waiting for another dbt build of {describe_postgres(credentials)} to finish "
        "(builds take turns)"
    )
    with warehouse.advisory_lock(credentials, BUILD_LOCK, waiting) as holder:
        yield holder
