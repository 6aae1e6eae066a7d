"""The SQS load as an asset: this project's own load (`logins load`), pending dlt packages
finished first and messages deleted only after their commit, recorded in the run history."""

# No `from __future__ import annotations` in this package: Dagster reads the annotations.

import dagster as dg

from loader.ingest.load import loader_queue, run_load
from loader.names import RAW_SCHEMA, RAW_TABLE
from loader.operations.reporting import reported
from loader.settings import (
    loader_settings,
    metrics_settings,
    postgres_credentials,
    sqs_settings,
    writable_pipelines_dir,
)

# The raw table the load lands in; dbt's sources on raw map to this key (dbt_models.py).
LOAD_ASSET_KEY = dg.AssetKey([RAW_SCHEMA, RAW_TABLE])
# One group for the load and the models: the group's graph is the whole flow.
GROUP = "user_logins_pipeline"


@dg.asset(
    key=LOAD_ASSET_KEY,
    group_name=GROUP,
    kinds={"sqs", "dlt", "postgres"},
    description=(
        "SQS load: every message waiting in the queue landed in raw.login_messages, then "
        "deleted from the queue (`logins load`)."
    ),
)
def sqs_load(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    # every setting is checked before any work, as `logins load` does
    sqs, settings, credentials = sqs_settings(), loader_settings(), postgres_credentials()
    writable_pipelines_dir(settings)
    metrics_settings()
    queue = loader_queue(sqs, settings)
    with reported("load", credentials, queue) as report:
        with report.step("load"):
            stats = run_load(
                sqs, settings, credentials, None, False, queue=queue, waiting=report.waiting_before
            )
        report.received, report.landed, report.deleted = stats.received, stats.landed, stats.deleted
    context.log.info(
        f"received {stats.received:,}, landed {stats.landed:,}, deleted {stats.deleted:,} "
        f"in {stats.seconds:.1f} s"
    )
    return dg.MaterializeResult(
        metadata={
            "run_id": report.run_id,
            "received": stats.received,
            "landed": stats.landed,
            "deleted": stats.deleted,
            "delete_failed": stats.delete_failed,
            "chunks": stats.chunks,
            "pending_packages_finished": stats.pending_packages_finished,
            "duration_seconds": round(stats.seconds, 3),
            "queue_visible_after": report.left if report.left is not None else -1,
        }
    )
