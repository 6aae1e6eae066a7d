"""`python -m bench --loaders 1,2,4`: K `logins load` processes on one queue, for each K.

Each round seeds N messages, starts K loaders at once (each takes a dlt pipeline slot of its
own in the shared working folder, loader/ingest/slots.py) and waits for all: the queue's
throughput with K consumers, their CPU summed per message, and proof that the work was split
without loss or duplicates (the rows this round added == distinct message ids == N, the queue
empty). The first K's round runs again at the end, so the comparison is paired in time on a
shared machine.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any

from bench.measure import StepFailed, run_measured_group, servers_cpu

if TYPE_CHECKING:
    from bench.__main__ import Bench

SUMMARY = re.compile(r"received ([\d,]+), landed ([\d,]+), deleted ([\d,]+)")


def measure_scale_out(
    bench: Bench, counts: list[int], n: int, split_receivers: bool = False
) -> list[dict[str, Any]]:
    rounds = [*counts, counts[0]] if len(counts) > 1 else counts
    return [one_round(bench, k, n, split_receivers) for k in rounds]


def one_round(bench: Bench, k: int, n: int, split_receivers: bool = False) -> dict[str, Any]:
    """With `split_receivers`, the K loaders share the receiver threads one loader has (at
    least one each), so every K polls SQS with the same number of threads."""
    from bench.__main__ import BIN, REPO, say

    rows_before = bench.raw_rows_or_zero()
    bench.seed(n)
    bench.steps += 1
    logs = [bench.work / f"{bench.steps:02d}-loaders-{k}-{i}.log" for i in range(k)]
    receivers = int(bench.env["LOADER__RECEIVERS"])
    if split_receivers:
        receivers = max(1, receivers // k)
    env = {**bench.env_as("loader"), "LOADER__RECEIVERS": str(receivers)}
    sample, outs = run_measured_group(
        [[str(BIN / "logins"), "load"]] * k, env, logs, n, cwd=REPO, servers=bench.servers
    )
    per_loader = [_counts(out) for out in outs]
    landed = sum(c["landed"] for c in per_loader)
    added = bench.raw_rows() - rows_before
    rows, distinct = bench.raw_counts()
    waiting = bench.waiting()
    if not (landed == added == n and rows == distinct and waiting == 0):
        raise StepFailed(
            f"{k} loaders: {n:,} sent, {landed:,} landed by their count, {added:,} rows added, "
            f"{rows:,} rows for {distinct:,} distinct ids, {waiting:,} left in the queue"
        )
    say(
        f"{k} loader(s): {n:,} in {sample.wall:.1f} s ({n / sample.wall:,.0f} msg/s), "
        f"{sample.cpu_us_per_message:.0f} us CPU/msg summed, landed "
        f"{[c['landed'] for c in per_loader]}, load avg {sample.load_average:.2f}"
        + (f"; meanwhile {servers_cpu(sample.as_dict())}" if servers_cpu(sample.as_dict()) else "")
    )
    return {
        "loaders": k,
        "receivers_each": receivers,
        "messages": n,
        "throughput": n / sample.wall,
        "per_loader": per_loader,
        "rows_added": added,
        "raw_rows": rows,
        "raw_distinct_message_ids": distinct,
        "queue_left": waiting,
        "load_average_after": os.getloadavg()[0],
        **sample.as_dict(),
    }


def _counts(out: str) -> dict[str, int]:
    match = SUMMARY.search(out)
    if not match:
        raise StepFailed(f"a loader printed no summary: {out.strip()[:200]}")
    received, landed, deleted = (int(g.replace(",", "")) for g in match.groups())
    return {"received": received, "landed": landed, "deleted": deleted}


def render_scale_out(result: dict[str, Any]) -> str:
    rounds = result["scale_out"]
    base = rounds[0]
    lines = [
        f"scale-out {result['date']}: N={result['settings']['count']:,} a round, "
        f"{result['settings']['receivers']} receivers "
        + ("shared by the K loaders" if result["settings"].get("split_receivers") else "a loader")
        + "; the first K again at the end",
        "",
        f"{'loaders':<8} {'wall s':>7} {'msg/s':>7} {'CPU us/msg':>11} {'vs K=1':>7} "
        f"{'LocalStack CPU s':>17} {'load avg':>9}  landed each",
    ]
    for r in rounds:
        ratio = r["cpu_us_per_message"] / base["cpu_us_per_message"]
        emulator = f"{r['emulator_cpu']:.1f}" if r.get("emulator_cpu") is not None else "-"
        each = ", ".join(f"{c['landed']:,}" for c in r["per_loader"])
        lines.append(
            f"{r['loaders']:<8} {r['wall']:>7.1f} {r['throughput']:>7,.0f} "
            f"{r['cpu_us_per_message']:>11.0f} {ratio:>6.3f}x {emulator:>17} "
            f"{r['load_average']:>9.2f}  {each}"
        )
    last = rounds[-1]
    lines += [
        "",
        f"every round: rows added == messages sent, {last['raw_rows']:,} raw rows for "
        f"{last['raw_distinct_message_ids']:,} distinct message ids, queue empty",
    ]
    return "\n".join(lines)
