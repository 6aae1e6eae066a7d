"""When a load and build starts: a schedule (every 5 minutes by default), and a sensor that
asks for a run when the queue is deeper than a threshold, at most once per interval."""

import time

import dagster as dg

from loader.ingest.sqs import SqsQueue
from loader.settings import orchestrate_settings, sqs_settings

JOB_NAME = "load_and_build"

load_and_build = dg.define_asset_job(
    JOB_NAME,
    selection=dg.AssetSelection.all(),
    description="The SQS load, then dbt build (models and their tests), as `logins run` does.",
)


def every_few_minutes() -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name="load_and_build_schedule",
        job=load_and_build,
        cron_schedule=orchestrate_settings().schedule_cron,
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )


@dg.sensor(
    name="queue_depth_sensor",
    job=load_and_build,
    minimum_interval_seconds=orchestrate_settings().sensor_interval_seconds,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def queue_depth_sensor(context: dg.SensorEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    """Requests a run when ApproximateNumberOfMessages reaches ORCHESTRATE__SENSOR_QUEUE_DEPTH;
    the cursor holds when it last did, so a deep queue gets one run per minimum interval."""
    settings = orchestrate_settings()
    visible = SqsQueue(sqs_settings()).approximate_counts()["visible"]
    if visible < settings.sensor_queue_depth:
        return dg.SkipReason(
            f"{visible:,} messages waiting, below the threshold of {settings.sensor_queue_depth:,}"
        )
    now = time.time()
    last_request = float(context.cursor) if context.cursor else 0.0
    if now - last_request < settings.sensor_min_interval_seconds:
        return dg.SkipReason(
            f"{visible:,} messages waiting, but a run was requested {now - last_request:.0f} s "
            f"ago (minimum interval {settings.sensor_min_interval_seconds} s)"
        )
    context.update_cursor(str(now))
    return dg.RunRequest(run_key=f"queue-depth-{int(now)}", tags={"queue_visible": str(visible)})
