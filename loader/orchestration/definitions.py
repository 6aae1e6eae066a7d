"""The code location's definitions: assets, checks, job, schedule, sensor, dbt resource."""

from __future__ import annotations

import dagster as dg

from loader.orchestration.dbt_models import dbt_models, dbt_resource
from loader.orchestration.load_asset import sqs_load
from loader.orchestration.triggers import every_few_minutes, load_and_build, queue_depth_sensor

defs = dg.Definitions(
    assets=[sqs_load, dbt_models],
    jobs=[load_and_build],
    schedules=[every_few_minutes()],
    sensors=[queue_depth_sensor],
    resources={"dbt": dbt_resource()},
)
