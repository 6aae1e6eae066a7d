"""`dbt build`, run in-process for `logins run`, pointed where the loader points."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from dlt.destinations.impl.postgres.configuration import PostgresCredentials

from loader import logs, warehouse
from loader.errors import TransformFailed
from loader.paths import project_root
from loader.settings import libpq_environment
from loader.warehouse.connection import describe_postgres

# Builds of one database take turns on this advisory lock; dbt's hooks take the same one
# (dbt_project/macros/build_lock/), so a plain `dbt build` waits for `logins run` too.
BUILD_LOCK = "logins dbt build"
# Names the session holding the lock for this build, so dbt's hooks do not wait for it.
LOCK_HOLDER_VARIABLE = "LOGINS_BUILD_LOCK_PID"


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
    with build_lock(credentials) as holder:
        os.environ[LOCK_HOLDER_VARIABLE] = str(holder)
        try:
            result = dbtRunner().invoke(
                [
                    "build",
                    "--project-dir",
                    root,
                    "--profiles-dir",
                    root,
                    *selector,
                    *(["--log-format", "json"] if logs.current_format() == logs.JSON else []),
                    *(extra_args or []),
                ]
            )
        finally:
            del os.environ[LOCK_HOLDER_VARIABLE]
    if not result.success:
        reason = f": {result.exception}" if result.exception else ""
        raise TransformFailed(
            f"dbt build failed{reason} (the errors are above and in logs/dbt.log); the loaded "
            "messages are safe in raw and the next build picks them up"
        )


@contextmanager
def build_lock(credentials: PostgresCredentials) -> Iterator[int]:
    """Waits for any other build of this database, then holds the lock until the build ends.
    Yields the pid of the session holding it."""
    waiting = (
        f"waiting for another dbt build of {describe_postgres(credentials)} to finish "
        "(builds take turns)"
    )
    with warehouse.advisory_lock(credentials, BUILD_LOCK, waiting) as holder:
        yield holder
