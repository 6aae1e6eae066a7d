"""Each run's report as Prometheus metrics (being built: issue 18)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from loader.operations.run_report import RunReport


def publish(report: RunReport) -> None:
    """Pushes `report` to the Pushgateway and/or writes the textfile, as configured."""
