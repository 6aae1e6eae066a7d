"""The pipeline as a Dagster code location: `dagster dev -m loader.orchestration`.

SQS load -> raw -> dbt staging -> user_logins as assets, dbt tests as asset checks, a schedule
and a queue-depth sensor (docs/deployment.md). Nothing else in loader/ imports this package,
so the `logins` command never loads Dagster.
"""

from loader.orchestration.definitions import defs

__all__ = ["defs"]
