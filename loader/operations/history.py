"""The run history: one row per run in `ops.pipeline_runs` (being built: issue 18)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dlt.destinations.impl.postgres.configuration import PostgresCredentials

    from loader.operations.run_report import RunReport


def record(credentials: PostgresCredentials, report: RunReport) -> None:
    """Writes `report` as one row of the run history."""
