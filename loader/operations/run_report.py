"""What one `logins load` or `logins run` did: its counts, step times and the queue before
and after. It names no body, IP, device id or secret: error classes, codes and counts only."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

RUNNING, SUCCEEDED, FAILED, INTERRUPTED = "running", "succeeded", "failed", "interrupted"


@dataclass
class QueueState:
    visible: int
    in_flight: int
    # seconds; None where the queue cannot tell (SQS gives it to CloudWatch only)
    oldest_age_seconds: float | None = None


@dataclass
class DbtSummary:
    """dbt's run_results.json, summarised: node counts by resource type and status."""

    success: bool
    seconds: float
    # e.g. {"model": {"success": 3}, "test": {"pass": 20, "fail": 1}}
    statuses: dict[str, dict[str, int]] = field(default_factory=dict)
    failed_nodes: list[str] = field(default_factory=list)  # unique ids, never a row


@dataclass
class RunReport:
    command: str  # "load" or "run"
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    ended_at: datetime | None = None
    status: str = RUNNING
    error_class: str | None = None  # the exception's class name, never its message
    received: int = 0
    landed: int = 0
    deleted: int = 0
    rejects_by_code: dict[str, int] = field(default_factory=dict)  # this run's new rejects
    rows_added: int | None = None  # to user_logins, of the messages this run landed
    user_logins_rows: int | None = None  # after the run
    step_seconds: dict[str, float] = field(default_factory=dict)
    queue_before: QueueState | None = None
    queue_after: QueueState | None = None
    # the oldest message this run landed: its age when received (sent_at to received_at)
    oldest_received_age_seconds: float | None = None
    dbt: DbtSummary | None = None

    @property
    def left(self) -> int | None:
        """Messages still visible in the queue after the run."""
        return self.queue_after.visible if self.queue_after else None

    @property
    def waiting_before(self) -> dict[str, int] | None:
        """The queue's visible and in-flight messages as the run began, None if SQS did not
        answer then (the load asks again, and its error names the fix)."""
        if self.queue_before is None:
            return None
        return {"visible": self.queue_before.visible, "in_flight": self.queue_before.in_flight}

    @property
    def rejected(self) -> int:
        return sum(self.rejects_by_code.values())

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Times the block as step `name` (load, build, purge...), also when it fails."""
        started = time.monotonic()
        try:
            yield
        finally:
            self.step_seconds[name] = self.step_seconds.get(name, 0.0) + (
                time.monotonic() - started
            )
