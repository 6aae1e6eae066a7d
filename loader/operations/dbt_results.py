"""dbt's results (what `run_results.json` holds), summarised for the run history."""

from __future__ import annotations

from typing import Any

from loader.operations.run_report import DbtSummary

# node statuses that mean the node did not do its job (models: error; tests: fail, error)
FAILED_STATUSES = {"error", "fail", "runtime error"}


def dbt_summary(result: Any, seconds: float) -> DbtSummary:
    """A dbtRunnerResult as counts by resource type and status, and the unique ids of the
    nodes that failed; `seconds` stands in where dbt ran no node (a failure before any)."""
    execution = getattr(result, "result", None)
    statuses: dict[str, dict[str, int]] = {}
    failed: list[str] = []
    for node_result in getattr(execution, "results", None) or []:
        kind = _text(node_result.node.resource_type)
        status = _text(node_result.status)
        counts = statuses.setdefault(kind, {})
        counts[status] = counts.get(status, 0) + 1
        if status in FAILED_STATUSES:
            failed.append(str(node_result.node.unique_id))
    elapsed = getattr(execution, "elapsed_time", None)
    return DbtSummary(
        success=bool(result.success),
        seconds=round(float(elapsed if elapsed is not None else seconds), 3),
        statuses=statuses,
        failed_nodes=failed,
    )


def _text(value: Any) -> str:
    """dbt's enums (NodeType, RunStatus, TestStatus) as their values."""
    return str(getattr(value, "value", value))
