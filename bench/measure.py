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
    # CPU seconds the servers used meanwhile (None where not measurable, e.g. a remote host)
    postgres_cpu: float | None = None
    emulator_cpu: float | None = None
    # how `cpu` splits, and the context switches behind the kernel's part (threads waiting on
    # each other or on sockets: voluntary; preempted: involuntary)
    system_cpu: float = 0.0
    voluntary_switches: int = 0
    involuntary_switches: int = 0

    @property
    def cpu_us_per_message(self) -> float:
        return 1e6 * self.cpu / max(self.messages, 1)

    def as_dict(self) -> dict[str, float]:
        return {**asdict(self), "cpu_us_per_message": self.cpu_us_per_message}


class StepFailed(RuntimeError):
    pass


def run_measured(
    command: list[str],
    env: dict[str, str],
    log: Path,
    messages: int = 0,
    cwd: Path | None = None,
    servers: dict[str, int | None] | None = None,
) -> tuple[Sample, str]:
    """Run `command` to its end; its stdout is returned, its stderr goes to `log`.

    os.wait4 gives the child's own rusage: CPU and peak RSS of that process alone. `servers`
    names the root processes (postgres, emulator) whose CPU meanwhile is recorded too.
    """
    servers = servers or {}
    load_average = os.getloadavg()[0]
    servers_before = {name: tree_cpu_seconds(pid) for name, pid in servers.items()}
    out_path = log.with_suffix(".out")
    with out_path.open("wb") as out, log.open("wb") as err:
        started = time.monotonic()
        process = subprocess.Popen(command, env=env, stdout=out, stderr=err, cwd=cwd)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.monotonic() - started
    servers_used = {
        f"{name}_cpu": _used(servers_before[name], tree_cpu_seconds(pid))
        for name, pid in servers.items()
    }
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
        system_cpu=usage.ru_stime,
        voluntary_switches=usage.ru_nvcsw,
        involuntary_switches=usage.ru_nivcsw,
        **servers_used,
    )
    return sample, out_path.read_text()


def tree_cpu_seconds(root_pid: int | None) -> float | None:
    """CPU seconds used so far by a process and all its descendants, those it has reaped
    included (a Postgres backend's time moves to the postmaster when it exits); None if the
    process is not on this machine."""
    if root_pid is None:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    seconds: dict[int, float] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited meanwhile
        pid = int(stat.parent.name)
        children.setdefault(int(fields[1]), []).append(pid)
        # utime, stime, cutime, cstime (stat(5) fields 14-17)
        seconds[pid] = sum(int(value) for value in fields[11:15]) / tick
    if root_pid not in seconds:
        return None
    total, todo = 0.0, [root_pid]
    while todo:
        pid = todo.pop()
        total += seconds.get(pid, 0.0)
        todo.extend(children.get(pid, ()))
    return total


def servers_cpu(sample: dict[str, float | None]) -> str:
    """The servers' CPU beside a step (`Sample.as_dict()`), e.g. "Postgres 1.5 s, LocalStack
    43.2 s"; empty where none was measured."""
    beside = (("Postgres", "postgres_cpu"), ("LocalStack", "emulator_cpu"))
    return ", ".join(
        f"{who} {sample[key]:.1f} s" for who, key in beside if sample.get(key) is not None
    )


def _used(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else after - before


def spread(values: list[float]) -> dict[str, float]:
    """Median and range of repeated measurements."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


@dataclass
class GroupSample:
    """K processes started together: wall time until the last ends, their CPU summed."""

    wall: float
    cpu: float  # user + system, summed over the processes
    peak_rss_mb: float  # the largest process's
    messages: int
    load_average: float
    emulator_cpu: float | None = None
    postgres_cpu: float | None = None

    @property
    def cpu_us_per_message(self) -> float:
        return 1e6 * self.cpu / max(self.messages, 1)

    def as_dict(self) -> dict[str, float | None]:
        return {**asdict(self), "cpu_us_per_message": self.cpu_us_per_message}


def run_measured_group(
    commands: list[list[str]],
    env: dict[str, str],
    logs: list[Path],
    messages: int,
    cwd: Path | None = None,
    servers: dict[str, int | None] | None = None,
) -> tuple[GroupSample, list[str]]:
    """Start every command at once, wait for all (os.wait4 each: its own CPU and peak RSS);
    their stdouts are returned in order, each stderr goes to its log."""
    servers = servers or {}
    load_average = os.getloadavg()[0]
    servers_before = {name: tree_cpu_seconds(pid) for name, pid in servers.items()}
    outs = [log.with_suffix(".out") for log in logs]
    handles = [path.open("wb") for path in outs + logs]
    started = time.monotonic()
    processes = [
        subprocess.Popen(command, env=env, stdout=out, stderr=err, cwd=cwd)
        for command, out, err in zip(
            commands, handles[: len(outs)], handles[len(outs) :], strict=True
        )
    ]
    cpu, rss, failed = 0.0, 0.0, []
    for process, log in zip(processes, logs, strict=True):
        _, status, usage = os.wait4(process.pid, 0)
        cpu += usage.ru_utime + usage.ru_stime
        rss = max(rss, usage.ru_maxrss / 1024)
        if os.waitstatus_to_exitcode(status) != 0:
            failed.append(f"{log.name}: exited {os.waitstatus_to_exitcode(status)}")
    wall = time.monotonic() - started
    for handle in handles:
        handle.close()
    if failed:
        raise StepFailed("; ".join(failed))
    used = {
        f"{name}_cpu": _used(servers_before[name], tree_cpu_seconds(pid))
        for name, pid in servers.items()
    }
    sample = GroupSample(wall, cpu, rss, messages, load_average, **used)
    return sample, [path.read_text() for path in outs]
