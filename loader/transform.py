"""`dbt build`, run in-process for `logins run`, pointed where the loader points."""

from __future__ import annotations

import os

from dlt.destinations.impl.postgres.configuration import PostgresCredentials

from loader.errors import TransformFailed
from loader.settings import libpq_environment, project_root


def dbt_build(
    credentials: PostgresCredentials,
    extra_args: list[str] | None = None,
    full_check: bool = False,
) -> None:
    """The default selector (selectors.yml) builds every model with the checks that grow with
    new data only; `full_check` adds the whole-table checks and unit tests."""
    from dbt.cli.main import dbtRunner  # dbt is slow to import; only `run` needs it

    environment = libpq_environment(credentials)
    # dbt scrubs DBT_ENV_SECRET_* values from its logs; the shipped profile reads this first.
    environment["DBT_ENV_SECRET_PGPASSWORD"] = environment["PGPASSWORD"]
    os.environ.update(environment)
    root = str(project_root())
    selector = ["--selector", "full_check"] if full_check else []
    result = dbtRunner().invoke(
        ["build", "--project-dir", root, "--profiles-dir", root, *selector, *(extra_args or [])]
    )
    if not result.success:
        reason = f": {result.exception}" if result.exception else ""
        raise TransformFailed(
            f"dbt build failed{reason} (the errors are above and in logs/dbt.log); the loaded "
            "messages are safe in raw and the next build picks them up"
        )
