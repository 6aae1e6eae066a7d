"""The handlers of `logins up`, `down`, `db init`, `seed`, `load` and `run`: settings in,
the work done by the packages, a line or two out. Each imports what it needs when it runs,
so `logins --help` starts fast."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

from loader import logs
from loader.errors import PipelineError

if TYPE_CHECKING:
    from dlt.destinations.impl.postgres.configuration import PostgresCredentials

    from loader.ingest.sqs import SqsQueue
    from loader.operations.run_report import RunReport
    from loader.settings import LoaderSettings, PiiSettings, SqsSettings


def up(args: argparse.Namespace) -> None:
    from loader.devstack import stack
    from loader.ingest.sqs import SqsQueue
    from loader.settings import mask_url, pii_settings, postgres_credentials
    from loader.warehouse.connection import describe_postgres

    credentials, sqs = postgres_credentials(), _sqs_settings(args)
    how = stack.ensure_postgres(credentials)
    logs.result("up.postgres", f"Postgres {describe_postgres(credentials)}: {how}")
    how = stack.ensure_sqs(sqs)
    waiting = SqsQueue(sqs).approximate_counts()["visible"]
    logs.result(
        "up.sqs",
        f"SQS {mask_url(sqs.queue_url)}: {how}, {waiting:,} messages waiting",
        waiting=waiting,
    )
    for note in _init_database(credentials, pii_settings(), generate_key=True):
        logs.result("up.database", note)
    from loader.cli.pii_commands import schemas
    from loader.privacy import roles
    from loader.settings import roles_settings

    for line in roles.apply(credentials, roles_settings(), schemas()):
        logs.result("up.roles", line)


def down(args: argparse.Namespace) -> None:
    from loader.devstack import stack

    stopped = [
        name
        for name, stop in (("SQS emulator", stack.stop_sqs), ("Postgres", stack.stop_postgres))
        if stop()
    ]
    logs.result(
        "down",
        f"stopped: {', '.join(stopped)}" if stopped else "nothing that `logins up` started runs",
        stopped=stopped,
    )


def db_init(args: argparse.Namespace) -> None:
    from loader.settings import loader_settings, pii_settings, postgres_credentials

    notes = _init_database(
        postgres_credentials(), pii_settings(), args.generate_key, raw=loader_settings()
    )
    for note in notes:
        logs.result("db_init.note", note)
    logs.result("db_init.done", "database ready")


def seed(args: argparse.Namespace) -> None:
    from loader.devstack import seed, synthetic
    from loader.ingest.sqs import SqsQueue

    stats = seed.SeedStats()
    if args.file:
        bodies = seed.file_bodies(Path(args.file), stats.skipped)
    else:
        bodies = synthetic.bodies(args.count, args.seed, args.malformed_share)
    total = None if args.file else args.count
    sent = seed.send_all(SqsQueue(_sqs_settings(args)), bodies, total=total)
    for line in stats.skipped + sent.refused:
        logs.say("seed.not_sent", f"not sent: {line}", level=logging.WARNING)
    logs.result(
        "seed.done",
        f"sent {sent.sent:,} messages",
        sent=sent.sent,
        not_sent=len(stats.skipped) + len(sent.refused),
    )
    if stats.skipped or sent.refused:
        raise PipelineError(f"{len(stats.skipped) + len(sent.refused)} message(s) were not sent")


def load(args: argparse.Namespace) -> None:
    from loader.ingest.load import loader_queue, run_load
    from loader.operations.reporting import reported
    from loader.settings import (
        loader_settings,
        metrics_settings,
        postgres_credentials,
        writable_pipelines_dir,
    )

    # every setting is checked before any work: a bad one fails at once, in one line
    sqs, settings, credentials = _sqs_settings(args), loader_settings(), postgres_credentials()
    writable_pipelines_dir(settings)
    metrics_settings()  # used when the run ends: checked now
    queue = loader_queue(sqs, settings)
    with reported("load", credentials, queue) as report:
        with report.step("load"):
            stats = run_load(
                sqs,
                settings,
                credentials,
                args.max_messages,
                True,
                queue=queue,
                waiting=report.waiting_before,
            )
        report.received, report.landed, report.deleted = stats.received, stats.landed, stats.deleted
    logs.result(
        "load.summary",
        f"received {stats.received:,}, landed {stats.landed:,}, deleted {stats.deleted:,} "
        f"in {stats.seconds:.1f} s",
        received=stats.received,
        landed=stats.landed,
        deleted=stats.deleted,
        chunks=stats.chunks,
        seconds=round(stats.seconds, 3),
        queue_visible_after=report.left,
    )


def run(args: argparse.Namespace) -> None:
    from loader.ingest.load import loader_queue
    from loader.operations.reporting import reported
    from loader.settings import (
        loader_settings,
        marts_schema,
        metrics_settings,
        postgres_credentials,
        transform_settings,
        writable_pipelines_dir,
    )

    # every setting is checked before any work: a bad one fails at once, in one line
    credentials, sqs, settings = postgres_credentials(), _sqs_settings(args), loader_settings()
    full_check = args.full_check or transform_settings().full_check
    marts_schema()  # dbt's profile reads DBT_SCHEMA itself
    writable_pipelines_dir(settings)
    metrics_settings()  # used when the run ends: checked now
    queue = loader_queue(sqs, settings)
    with reported("run", credentials, queue) as report:
        _run_steps(args, report, credentials, queue, settings, full_check)


def status(args: argparse.Namespace) -> None:
    from loader.ingest.sqs import SqsQueue
    from loader.operations.status import status as take_status
    from loader.settings import marts_schema, postgres_credentials, roles_settings, status_settings

    credentials, sqs, marts = postgres_credentials(), _sqs_settings(args), marts_schema()
    max_age = status_settings().max_age_minutes
    owner = roles_settings().role("owner")
    report = take_status(credentials, SqsQueue(sqs), marts, owner, max_age)
    print("\n".join(report.lines))
    problem = report.verdict()
    if problem is not None:
        raise problem
    print("healthy")


def _run_steps(
    args: argparse.Namespace,
    report: RunReport,
    credentials: PostgresCredentials,
    queue: SqsQueue,
    settings: LoaderSettings,
    full_check: bool,
) -> None:
    """`logins run`'s steps, each timed in `report`: set-up, load, build, roles, retention."""
    from loader.cli.pii_commands import schemas
    from loader.ingest.load import run_load
    from loader.operations.dbt_results import dbt_summary
    from loader.privacy import erasure, roles
    from loader.settings import pii_settings, roles_settings
    from loader.transform import summary
    from loader.transform.dbt_build import dbt_build

    with report.step("setup"):
        for note in _init_database(credentials, pii_settings()):
            logs.result("run.setup", note)
    with report.step("load"):
        stats = run_load(
            queue.settings,
            settings,
            credentials,
            args.max_messages,
            True,
            queue=queue,
            waiting=report.waiting_before,
        )
    report.received, report.landed, report.deleted = stats.received, stats.landed, stats.deleted
    # this run's messages, as far as an earlier build had processed them (redeliveries)
    before = summary.outcomes(credentials, stats.load_ids, settings.dataset_name)
    with report.step("build"):
        started = time.monotonic()
        dbt_build(
            credentials,
            full_check=full_check,
            on_result=lambda result: setattr(
                report, "dbt", dbt_summary(result, time.monotonic() - started)
            ),
        )
    added = summary.this_run(
        before, summary.outcomes(credentials, stats.load_ids, settings.dataset_name)
    )
    after = summary.outcomes(credentials)
    report.rows_added, report.rejects_by_code = added.user_logins, added.reject_codes
    report.user_logins_rows = after.user_logins
    load_seconds, build_seconds = report.step_seconds["load"], report.step_seconds["build"]
    logs.result(
        "run.summary",
        summary.render(stats, added, after, load_seconds, build_seconds),
        message="logins run: done",
        received=stats.received,
        landed=stats.landed,
        deleted=stats.deleted,
        rejected=added.rejects,
        rejects_by_code=added.reject_codes,
        rows_added=added.user_logins,
        user_logins_rows=after.user_logins,
        rejects_in_all=after.rejects,
        load_seconds=round(load_seconds, 3),
        build_seconds=round(build_seconds, 3),
    )
    with report.step("roles"):
        if roles.reapply_after_build(credentials, roles_settings(), schemas()):
            logs.result(
                "run.roles",
                "  roles                tables given to the pipeline's roles, grants applied",
            )
    with report.step("freshness"):
        _check_freshness(credentials, settings)
    retention = pii_settings().purge_raw_older_than
    if retention:
        with report.step("purge_raw"):
            erased = erasure.purge_raw(credentials, schemas(), retention)
        logs.result(
            "run.purge_raw",
            f"  raw bodies erased    {erased}  (processed, older than {retention})",
            erased=erased,
        )


def _check_freshness(credentials: PostgresCredentials, settings: LoaderSettings) -> None:
    """`dbt source freshness` on raw: a line in the summary; past its error threshold, exit 8."""
    from loader import warehouse
    from loader.errors import DataStale, TransformFailed
    from loader.names import DLT_LOADS
    from loader.transform.dbt_build import source_freshness

    with warehouse.connect(credentials) as conn:
        if not warehouse.table_exists(conn, settings.dataset_name, DLT_LOADS):
            logs.result(
                "run.freshness",
                "  source freshness     not checked: nothing has landed yet",
                status="not_checked",
            )
            return
    checked = source_freshness(credentials)
    for outcome in checked:
        age = f"{outcome.age_seconds / 3600:.1f} h" if outcome.age_seconds is not None else "?"
        logs.result(
            "run.freshness",
            f"  source freshness     {outcome.status}: {outcome.source}, newest load {age} ago",
            source=outcome.source,
            status=outcome.status,
            age_seconds=outcome.age_seconds,
        )
    broken = [outcome.source for outcome in checked if outcome.status == "runtime error"]
    if broken:
        raise TransformFailed(
            f"dbt source freshness could not check {', '.join(broken)} (the errors are above "
            "and in logs/dbt.log)"
        )
    stale = [outcome for outcome in checked if outcome.status == "error"]
    if stale:
        raise DataStale(
            f"dbt source freshness: {', '.join(f'{o.source} {o.status}' for o in stale)}: no new "
            "load in raw within its error threshold (_sqs__sources.yml); check that loads run "
            "and that messages reach the queue"
        )


def _init_database(
    credentials: PostgresCredentials,
    pii: PiiSettings,
    generate_key: bool = False,
    raw: LoaderSettings | None = None,
) -> list[str]:
    """`init_database`, one at a time per database: two `logins run` at once replaced the same
    functions, and Postgres refused one ("tuple concurrently updated")."""
    from loader.db_init import init_database
    from loader.warehouse import advisory_lock

    waiting = "waiting for another `logins` to finish setting up the database"
    with advisory_lock(credentials, "logins db init", waiting):
        return list(init_database(credentials, pii, generate_key, raw=raw))


def _sqs_settings(args: argparse.Namespace) -> SqsSettings:
    """SOURCES__SQS__* settings, with --sqs-protocol over SOURCES__SQS__PROTOCOL."""
    from loader.settings import sqs_settings

    settings = sqs_settings()
    if args.sqs_protocol:
        settings.protocol = args.sqs_protocol
    return settings
