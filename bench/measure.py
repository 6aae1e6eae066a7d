"""Running one measured step: a child process's wall time, CPU and peak memory."""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass
class Sample:
    """One run of one command: wall seconds, CPU seconds (user + system), peak RSS."""

    wall: float
    cpu: float
    peak_rss_mb: float
    messages: int
    load_average: float  # 1-minute load average when it started (2 cores here)

    @property
    def cpu_us_per_message(self) -> float:
        return 1e6 * self.cpu / max(self.messages, 1)

    def as_dict(self) -> dict[str, float]:
        return {**asdict(self), "cpu_us_per_message": self.cpu_us_per_message}


class StepFailed(RuntimeError):
    pass


def run_measured(
    command: list[str], env: dict[str, str], log: Path, messages: int = 0, cwd: Path | None = None
) -> tuple[Sample, str]:
    """Run `command` to its end; its stdout is returned, its stderr goes to `log`.

    os.wait4 gives the child's own rusage: CPU and peak RSS of that process alone.
    """
    load_average = os.getloadavg()[0]
    out_path = log.with_suffix(".out")
    with out_path.open("wb") as out, log.open("wb") as err:
        started = time.monotonic()
        process = subprocess.Popen(command, env=env, stdout=out, stderr=err, cwd=cwd)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.monotonic() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-5:]
        raise StepFailed(
            f"{' '.join(command[:4])} exited {process.returncode}: " + " | ".join(tail)
        )
    sample = Sample(
        wall=wall,
        cpu=usage.ru_utime + usage.ru_stime,
        peak_rss_mb=usage.ru_maxrss / 1024,  # KiB on Linux
        messages=messages,
        load_average=load_average,
    )
    return sample, out_path.read_text()


def spread(values: list[float]) -> dict[str, float]:
    """Median and range of repeated measurements."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}
