"""`python -m bench` (or `make bench`): the pipeline against the queue's own limit.

In one run, on one native LocalStack and one fresh Postgres database:
1. a bare boto3 drain of N messages (receive 10 + delete-batch) at the loader's concurrency;
2. `logins load` of N messages: wall time, CPU per message, and their ratios to the drain's;
3. `dbt build` over everything landed, then incremental builds after 10k more messages, then
   the nightly `dbt build --selector full_check` (whole-table checks);
4. the loader's peak RSS at N (and at 1M with --million).
Drain and load alternate, each `--repeat` times, so both see the same machine load.
Prints a table and writes bench/results/<time>.json (and latest.json).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg2
from psycopg2 import sql

from bench import localstack
from bench.measure import Sample, StepFailed, run_measured, servers_cpu, spread
from bench.scaleout import measure_scale_out, render_scale_out
from loader.devstack import seed, synthetic
from loader.devstack.ports import free_port
from loader.ingest.sqs import SqsQueue
from loader.settings import LoaderSettings, SqsSettings

REPO = Path(__file__).resolve().parents[1]
HOME = REPO / ".local" / "bench"
RESULTS = REPO / "bench" / "results"
BIN = Path(sys.executable).parent
QUEUE = "login-queue"

TARGETS = {
    "wall_ratio": 1.05,
    "cpu_ratio": 1.10,
    "dbt_full_1m_seconds": 30.0,
    "dbt_incremental_seconds": 5.0,
    "peak_rss_mb": 250.0,
    "rss_growth": 0.10,
}


CONFIGURATIONS = {
    "production": "production configuration: load as the loader role, dbt as the transformer, "
    "a recovery key installed (new values sealed), no raw retention",
    "superuser": "superuser configuration (--superuser): every step as PGUSER, no recovery key",
}


def say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


class Bench:
    """One benchmark run: its queue, database, environment and measurements."""

    def __init__(
        self,
        args: argparse.Namespace,
        port: int,
        database: str,
        work: Path,
        emulator_pid: int | None = None,
    ) -> None:
        self.args = args
        self.database = database
        self.work = work
        self.queue_url = f"http://localhost:{port}/000000000000/{QUEUE}"
        self.pg = {
            "host": os.environ.get("PGHOST", "127.0.0.1"),
            "port": os.environ.get("PGPORT", "5432"),
            "user": os.environ.get("PGUSER", "postgres"),
            "password": os.environ.get("PGPASSWORD", "postgres"),
        }
        inherited = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PG", "AWS_", "SOURCES__", "LOADER__", "DESTINATION__", "DBT_"))
        }
        self.env = {
            **inherited,
            "PGHOST": self.pg["host"],
            "PGPORT": self.pg["port"],
            "PGUSER": self.pg["user"],
            "PGPASSWORD": self.pg["password"],
            "PGDATABASE": database,
            "SOURCES__SQS__QUEUE_URL": self.queue_url,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "LOADER__PIPELINES_DIR": str(work / "dlt"),
            "LOADER__RECEIVERS": str(args.receivers),
            "LOADER__CHUNK_SIZE": str(args.chunk_size),
            # a key for this run only: the database is dropped at the end
            "PII__HMAC_KEY": secrets.token_hex(32),
            "STACK__STATE_DIR": str(work / "stack"),
            "DBT_TARGET_PATH": str(work / "target"),
            "DBT_LOG_PATH": str(work / "logs"),
            "RUNTIME__DLTHUB_TELEMETRY": "false",
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        }
        self.steps = 0
        # the production configuration (docs/operations.md): the load as the loader role, dbt
        # as the transformer, erasure as the PII admin; --superuser runs everything as PGUSER
        self.roles_prefix = f"{database}_"
        self.env["ROLES__PREFIX"] = self.roles_prefix
        self.env["PII__RECOVERY_KEY_FILE"] = str(work / "recovery_key.asc")
        self.role_passwords: dict[str, str] = {}
        # whose CPU each step records beside its own: what else kept the two cores busy
        self.servers = {"postgres": self.postmaster_pid(), "emulator": emulator_pid}

    # -- set-up -------------------------------------------------------------------------------

    def create_queue(self) -> None:
        SqsQueue(SqsSettings(queue_url=self.queue_url)).create()

    def seed(self, count: int) -> None:
        started = time.monotonic()
        queue = SqsQueue(SqsSettings(queue_url=self.queue_url), max_connections=20)
        stats = seed.send_all(
            queue, synthetic.bodies(count, seed=self.steps), threads=8, progress=False
        )
        if stats.sent != count:
            raise StepFailed(f"seeding sent {stats.sent:,} of {count:,} messages")
        took = time.monotonic() - started
        say(f"seeded {count:,} messages in {took:.1f} s ({count / took:,.0f} msg/s)")

    def postmaster_pid(self) -> int | None:
        """Postgres' postmaster, if it runs on this machine and its data folder is readable."""
        try:
            data_directory = Path(str(self.query("show data_directory")))
            return int((data_directory / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError, psycopg2.Error):
            return None

    def waiting(self) -> int:
        queue = SqsQueue(SqsSettings(queue_url=self.queue_url))
        counts = queue.approximate_counts()
        return counts["visible"] + counts["in_flight"]

    def set_up_production(self) -> None:
        """Roles (each with a password of this run's), a recovery key, so new values are
        sealed, and no raw retention: what the README tells production users to run."""
        self.logins("roles", "apply")
        conn = psycopg2.connect(dbname=self.database, **self.pg)
        conn.autocommit = True
        try:
            with conn.cursor() as cursor:
                for role in ("loader", "transformer", "pii_admin"):
                    password = secrets.token_hex(16)
                    cursor.execute(
                        sql.SQL("alter role {} password %s").format(
                            sql.Identifier(self.roles_prefix + role)
                        ),
                        (password,),
                    )
                    self.role_passwords[role] = password
        finally:
            conn.close()
        self.logins("pii", "keygen", "--demo")

    def drop_roles(self) -> None:
        """This run's roles (the database is dropped first, so they own nothing)."""
        conn = psycopg2.connect(dbname="postgres", **self.pg)
        conn.autocommit = True
        try:
            with conn.cursor() as cursor:
                cursor.execute(
                    "select rolname from pg_roles where starts_with(rolname, %s)",
                    (self.roles_prefix,),
                )
                for (role,) in cursor.fetchall():
                    cursor.execute(sql.SQL("drop role {}").format(sql.Identifier(role)))
        finally:
            conn.close()

    def env_as(self, role: str) -> dict[str, str]:
        """The environment of a step run as `role` (PGUSER itself under --superuser)."""
        if role not in self.role_passwords:
            return self.env
        return {
            **self.env,
            "PGUSER": self.roles_prefix + role,
            "PGPASSWORD": self.role_passwords[role],
        }

    # -- measured steps -----------------------------------------------------------------------

    def _run(
        self, name: str, command: list[str], messages: int = 0, role: str = ""
    ) -> tuple[Sample, str]:
        self.steps += 1
        log = self.work / f"{self.steps:02d}-{name}.log"
        env = self.env_as(role)
        sample, out = run_measured(command, env, log, messages, cwd=REPO, servers=self.servers)
        servers = servers_cpu(sample.as_dict())
        say(
            f"{name}: {sample.wall:.1f} s wall, {sample.cpu:.1f} s CPU"
            + (f" ({sample.cpu_us_per_message:.0f} us/msg)" if messages else "")
            + f", peak RSS {sample.peak_rss_mb:.0f} MB, load avg {sample.load_average:.2f}"
            + (f"; meanwhile CPU of {servers}" if servers else "")
        )
        return sample, out

    def logins(self, *args: str, role: str = "") -> None:
        self._run(f"logins-{args[0]}", [str(BIN / "logins"), *args], role=role)

    def drain(self, count: int) -> Sample:
        self.seed(count)
        sample, out = self._run(
            "drain",
            [
                sys.executable,
                "-m",
                "bench.drain",
                "--queue-url",
                self.queue_url,
                "--count",
                str(count),
                "--threads",
                str(self.args.receivers),
            ],
            count,
        )
        drained = json.loads(out)["received"]
        if drained != count or self.waiting():
            raise StepFailed(f"the bare drain received {drained:,} of {count:,} messages")
        return sample

    def load(self, count: int) -> Sample:
        self.seed(count)
        sample, out = self._run(
            "load",
            [str(BIN / "logins"), "load", "--max-messages", str(count)],
            count,
            role="loader",
        )
        if not out.startswith(f"received {count:,}, landed {count:,}, deleted {count:,}"):
            raise StepFailed(f"logins load did not land and delete all {count:,}: {out.strip()}")
        if self.waiting():
            raise StepFailed("messages are left in the queue after logins load")
        return sample

    def dbt_build(self, *extra: str) -> Sample:
        project = ["--project-dir", str(REPO), "--profiles-dir", str(REPO)]
        sample, _ = self._run(
            "dbt-build", [str(BIN / "dbt"), "build", *extra, *project], role="transformer"
        )
        return sample

    def disk(self) -> dict[str, Any]:
        """Bytes a message takes in each table (indexes and TOAST included), then what
        `logins pii purge-raw --rewrite` of every processed body gives back in raw."""
        tables = {
            "raw": "raw.login_messages",
            "staging": "staging.stg_sqs__login_events",
            "user_logins": "public.user_logins",
            "vault": "pii.vault",
        }
        messages = self.raw_rows()
        sizes = {
            name: int(self.query(f"select pg_total_relation_size('{t}')"))
            for name, t in tables.items()
        }
        self._run(
            "purge-raw",
            [str(BIN / "logins"), "pii", "purge-raw", "--older-than", "0 seconds", "--rewrite"],
            role="pii_admin",
        )
        raw_after = int(self.query("select pg_total_relation_size('raw.login_messages')"))
        return {
            "messages": messages,
            "bytes": sizes,
            "bytes_per_message": {name: size / messages for name, size in sizes.items()},
            "raw_after_purge": raw_after,
            "raw_after_purge_per_message": raw_after / messages,
        }

    def query(self, sql: str) -> Any:
        conn = psycopg2.connect(dbname=self.database, **self.pg)
        try:
            with conn.cursor() as cursor:
                cursor.execute(sql)
                return cursor.fetchone()[0]
        finally:
            conn.close()

    def raw_rows(self) -> int:
        return int(self.query("select count(*) from raw.login_messages"))

    def raw_rows_or_zero(self) -> int:
        """raw's rows, 0 before the first load creates the table."""
        if not self.query("select to_regclass('raw.login_messages') is not null"):
            return 0
        return self.raw_rows()

    def raw_counts(self) -> tuple[int, int]:
        """raw's rows and its distinct message ids."""
        conn = psycopg2.connect(dbname=self.database, **self.pg)
        try:
            with conn.cursor() as cursor:
                cursor.execute(
                    "select count(*), count(distinct message_id) from raw.login_messages"
                )
                rows, distinct = cursor.fetchone()
                return int(rows), int(distinct)
        finally:
            conn.close()

    def check_outcomes(self) -> dict[str, int]:
        """Every landed message is in exactly one of user_logins or the rejects."""
        landed = int(self.query("select count(distinct message_id) from raw.login_messages"))
        logins = int(self.query("select count(*) from public.user_logins"))
        rejects = int(self.query("select count(*) from staging.stg_sqs__login_event_rejects"))
        if logins + rejects != landed:
            raise StepFailed(f"{landed:,} landed but {logins:,} + {rejects:,} rejects")
        return {"landed": landed, "user_logins": logins, "rejects": rejects}


def run(args: argparse.Namespace) -> dict[str, Any]:
    stamp = datetime.now(UTC)
    work = HOME / "runs" / stamp.strftime("%Y%m%dT%H%M%S")
    work.mkdir(parents=True)
    port = args.port or free_port()
    database = f"bench_{stamp:%Y%m%d%H%M%S}_{uuid.uuid4().hex[:6]}"
    admin_params = {
        "host": os.environ.get("PGHOST", "127.0.0.1"),
        "port": os.environ.get("PGPORT", "5432"),
        "user": os.environ.get("PGUSER", "postgres"),
        "password": os.environ.get("PGPASSWORD", "postgres"),
        "dbname": "postgres",
    }
    admin = psycopg2.connect(**admin_params)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'create database "{database}"')
    say(f"database {database}, LocalStack on 127.0.0.1:{port}, work folder {work}")
    try:
        with localstack.running(HOME, port) as emulator:
            bench = Bench(args, port, database, work, emulator.pid)
            bench.create_queue()
            try:
                bench.logins("db", "init")
                if not args.superuser:
                    bench.set_up_production()
                if args.loaders:
                    return measure_loaders(bench, args, stamp)
                return measure(bench, args, stamp)
            finally:
                if not args.keep_database:
                    with admin.cursor() as cursor:
                        cursor.execute(f'drop database if exists "{database}" with (force)')
                    bench.drop_roles()
    finally:
        admin.close()


def measure(bench: Bench, args: argparse.Namespace, stamp: datetime) -> dict[str, Any]:
    n = args.count
    drains: list[Sample] = []
    loads: list[Sample] = []
    for round_ in range(args.repeat):
        say(f"round {round_ + 1} of {args.repeat}: bare drain, then logins load, of {n:,}")
        drains.append(bench.drain(n))
        loads.append(bench.load(n))
    million: Sample | None = None
    if args.million:
        say("1M messages through logins load (peak RSS)")
        million = bench.load(1_000_000)

    full_rows = bench.raw_rows()
    # one first build: a --full-refresh rebuilds staging only (the marts are the record and
    # never fully refresh), so it would not measure the same thing
    full = [bench.dbt_build()]
    incremental = []
    for _ in range(args.repeat):
        bench.load(args.incremental)
        incremental.append(bench.dbt_build())
    # the nightly check (selectors.yml): nothing new to build, every whole-table test
    full_check = bench.dbt_build("--selector", "full_check")
    outcomes = bench.check_outcomes()
    disk = None if args.superuser else bench.disk()

    cpu_rounds = [ld.cpu / dr.cpu for dr, ld in zip(drains, loads, strict=True)]
    result: dict[str, Any] = {
        "date": stamp.isoformat(timespec="seconds"),
        "machine": {"cores": os.cpu_count(), "load_average_after": os.getloadavg()},
        "configuration": "superuser" if args.superuser else "production",
        "settings": {
            "count": n,
            "repeat": args.repeat,
            "receivers": args.receivers,
            "chunk_size": args.chunk_size,
            "incremental": args.incremental,
        },
        "drain": [s.as_dict() for s in drains],
        "load": [s.as_dict() for s in loads],
        "ratios": {
            "wall": spread([ld.wall / dr.wall for dr, ld in zip(drains, loads, strict=True)]),
            "cpu": spread(cpu_rounds),
            # single rounds vary by 10% or more on this shared machine: the median is judged
            "cpu_rounds": cpu_rounds,
        },
        "dbt": {
            "full_raw_rows": full_rows,
            "full": [s.wall for s in full],
            "incremental_rows": args.incremental,
            "incremental": [s.wall for s in incremental],
            "full_check": full_check.wall,
            "samples": {
                "full": [s.as_dict() for s in full],
                "incremental": [s.as_dict() for s in incremental],
                "full_check": full_check.as_dict(),
            },
        },
        "peak_rss_mb": {"n": [s.peak_rss_mb for s in loads]},
        "outcomes": outcomes,
    }
    if disk:
        result["disk"] = disk
    if million:
        result["load_1m"] = million.as_dict()
        result["peak_rss_mb"]["1m"] = million.peak_rss_mb
    return result


def measure_loaders(bench: Bench, args: argparse.Namespace, stamp: datetime) -> dict[str, Any]:
    """--loaders: the scale-out rounds (bench/scaleout.py) instead of the default steps."""
    return {
        "date": stamp.isoformat(timespec="seconds"),
        "machine": {"cores": os.cpu_count(), "load_average_after": os.getloadavg()},
        "settings": {
            "count": args.count,
            "loaders": args.loaders,
            "split_receivers": args.split_receivers,
            "receivers": args.receivers,
            "chunk_size": args.chunk_size,
        },
        "scale_out": measure_scale_out(bench, args.loaders, args.count, args.split_receivers),
    }


def loader_counts(text: str) -> list[int]:
    """--loaders' value: K, or Ks separated by commas (1,2,4), each 1 to 16."""
    try:
        counts = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number or list like 1,2,4") from None
    if not counts or not all(1 <= k <= 16 for k in counts):
        raise argparse.ArgumentTypeError(f"'{text}': each K must be 1 to 16")
    return counts


def disk_rows(disk: dict[str, Any] | None) -> list[tuple[str, str]]:
    if not disk:  # --superuser runs, and results from before 2026-12-01
        return []
    per = disk["bytes_per_message"]
    return [
        ("disk, bytes per message", ", ".join(f"{name} {per[name]:,.0f}" for name in per)),
        (
            "  raw after purge-raw --rewrite",
            f"{disk['raw_after_purge_per_message']:,.0f} bytes/message "
            f"({disk['bytes']['raw'] - disk['raw_after_purge']:,} bytes given back)",
        ),
    ]


def render(result: dict[str, Any]) -> str:
    """The figures, one line each, with the target where the issue sets one."""

    def ranged(values: list[float], fmt: str) -> str:
        s = spread(values)
        text = format(s["median"], fmt)
        if len(values) > 1:
            text += f" ({format(s['min'], fmt)}-{format(s['max'], fmt)})"
        return text

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    settings, drains, loads = result["settings"], result["drain"], result["load"]
    n = settings["count"]
    lines = [
        f"benchmark {result['date']}: N={n:,}, {settings['receivers']} receivers, "
        f"chunk {settings['chunk_size']:,}, {settings['repeat']} rounds; median (min-max)",
        CONFIGURATIONS[result.get("configuration", "superuser")],
        "",
        f"{'measurement':<40} {'value':<34} target",
    ]

    def row(what: str, value: str, target: str = "") -> None:
        lines.append(f"{what:<40} {value:<34} {target}".rstrip())

    for name, samples in (("bare drain", drains), ("logins load", loads)):
        row(
            f"{name}: wall s ({n:,} msg)",
            ranged([s["wall"] for s in samples], ".1f")
            + f"  {n / spread([s['wall'] for s in samples])['median']:,.0f} msg/s",
        )
        row(f"{name}: CPU us/message", ranged([s["cpu_us_per_message"] for s in samples], ".0f"))
        if "system_cpu" in samples[0]:  # results from before 2026-11-24's sixth run lack them
            row(
                f"{name}: kernel CPU s; switches/msg",
                ranged([s["system_cpu"] for s in samples], ".1f")
                + "  "
                + ranged([s["voluntary_switches"] / n for s in samples], ".2f")
                + " vol., "
                + ranged([s["involuntary_switches"] / n for s in samples], ".2f")
                + " invol.",
            )
    wall, cpu = result["ratios"]["wall"], result["ratios"]["cpu"]
    row(
        "load / drain: wall",
        f"{wall['median']:.3f}x ({wall['min']:.3f}-{wall['max']:.3f})",
        f"<= {TARGETS['wall_ratio']}x {verdict(wall['median'] <= TARGETS['wall_ratio'])}",
    )
    row(
        "load / drain: CPU",
        f"{cpu['median']:.3f}x ({cpu['min']:.3f}-{cpu['max']:.3f})",
        f"<= {TARGETS['cpu_ratio']}x {verdict(cpu['median'] <= TARGETS['cpu_ratio'])}",
    )
    if "cpu_rounds" in result["ratios"]:  # results from before 2026-11-25 lack them
        row("  each round", ", ".join(f"{r:.3f}x" for r in result["ratios"]["cpu_rounds"]))
    dbt = result["dbt"]
    at_1m = dbt["full_raw_rows"] >= 1_000_000
    full_ok = at_1m and max(dbt["full"]) <= TARGETS["dbt_full_1m_seconds"]
    row(
        f"dbt build, full ({dbt['full_raw_rows']:,} raw rows)",
        ranged(dbt["full"], ".1f") + " s",
        f"<= {TARGETS['dbt_full_1m_seconds']:.0f} s at 1M "
        + (verdict(full_ok) if at_1m else "(run with --million)"),
    )
    beside = servers_cpu(dbt.get("samples", {}).get("full", [{}])[0])
    if beside:
        row("  CPU meanwhile (2 cores)", beside)
    incremental_ok = max(dbt["incremental"]) <= TARGETS["dbt_incremental_seconds"]
    row(
        f"dbt build, incremental (+{dbt['incremental_rows']:,})",
        ranged(dbt["incremental"], ".1f") + " s",
        f"<= {TARGETS['dbt_incremental_seconds']:.0f} s {verdict(incremental_ok)}"
        + ("" if at_1m else " (on 1M: --million)"),
    )
    checked_rows = dbt["full_raw_rows"] + dbt["incremental_rows"] * len(dbt["incremental"])
    row(
        f"dbt build --selector full_check ({checked_rows:,} raw rows)",
        f"{dbt['full_check']:.1f} s",
        "(nightly: whole-table checks)",
    )
    rss = result["peak_rss_mb"]
    row(
        f"loader peak RSS MB at {n:,}",
        ranged(rss["n"], ".0f"),
        f"<= {TARGETS['peak_rss_mb']:.0f} {verdict(max(rss['n']) <= TARGETS['peak_rss_mb'])}",
    )
    if "1m" in rss:
        growth = rss["1m"] / max(rss["n"]) - 1
        row(
            "loader peak RSS MB at 1,000,000",
            f"{rss['1m']:.0f} ({growth:+.1%} vs {n:,})",
            f"<= {TARGETS['peak_rss_mb']:.0f}, within 10% "
            + verdict(rss["1m"] <= TARGETS["peak_rss_mb"] and growth <= TARGETS["rss_growth"]),
        )
        m = result["load_1m"]
        row("logins load 1M: wall s, CPU us/msg", f"{m['wall']:.0f}, {m['cpu_us_per_message']:.0f}")
    lines += [f"{what:<40} {value}" for what, value in disk_rows(result.get("disk"))]
    out = result["outcomes"]
    lines += [
        "",
        f"outcomes: {out['landed']:,} landed = {out['user_logins']:,} user_logins + "
        f"{out['rejects']:,} rejects; queue empty",
        "machine load (1-min average, 2 cores) at each step: "
        + ", ".join(f"{s['load_average']:.1f}" for s in drains + loads),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000, help="messages per drain/load")
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="rounds of each measurement (3; their median is judged, 5 for a steadier one)",
    )
    parser.add_argument(
        "--receivers",
        type=int,
        default=int(os.environ.get("LOADER__RECEIVERS", LoaderSettings().receivers)),
        help="threads for the drain and the loader (default: the loader's)",
    )
    parser.add_argument(
        "--chunk-size",
        type=int,
        default=int(os.environ.get("LOADER__CHUNK_SIZE", LoaderSettings().chunk_size)),
        help="messages per dlt load (default: the loader's)",
    )
    parser.add_argument(
        "--incremental", type=int, default=10_000, help="messages before an incremental build"
    )
    parser.add_argument("--million", action="store_true", help="also load 1M (peak RSS, dbt)")
    parser.add_argument(
        "--superuser",
        action="store_true",
        help="run every step as PGUSER, with no roles and no recovery key (for comparison; "
        "the default is the production configuration)",
    )
    parser.add_argument("--port", type=int, default=0, help="LocalStack port (default: free)")
    parser.add_argument(
        "--loaders",
        type=loader_counts,
        default=None,
        help="scale-out instead: K `logins load` processes on one queue, for each K of a "
        "list such as 1,2,4 (the first K again at the end, for a paired comparison)",
    )
    parser.add_argument(
        "--split-receivers",
        action="store_true",
        help="with --loaders: the K loaders share --receivers threads (at least one each)",
    )
    parser.add_argument("--keep-database", action="store_true", help="do not drop it at the end")
    args = parser.parse_args(argv)
    try:
        result = run(args)
    except (localstack.BenchSetupError, StepFailed) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    table = render_scale_out(result) if args.loaders else render(result)
    print(table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    text = json.dumps({**result, "table": table}, indent=2)
    (RESULTS / f"{result['date'].replace(':', '')}.json").write_text(text)
    (RESULTS / ("latest-scale-out.json" if args.loaders else "latest.json")).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
