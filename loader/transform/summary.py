"""The one-screen summary `logins run` ends with.

Its "this run" counts are of the messages this run's loads landed (`LoadStats.load_ids`),
counted in the marts before and after the build: a build also processes loads that no build
saw yet (a `logins load` run alone, a crashed run's package), which are not this run's.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from dlt.destinations.impl.postgres.configuration import PostgresCredentials
from psycopg2 import sql

from loader import warehouse
from loader.ingest.load import LoadStats
from loader.names import MARTS_SCHEMA, RAW_SCHEMA, REJECTS, STAGING_SCHEMA, USER_LOGINS, Schemas

REJECTS_TABLE = (STAGING_SCHEMA, REJECTS)


def user_logins_table() -> tuple[str, str]:
    return (os.environ.get("DBT_SCHEMA", MARTS_SCHEMA), USER_LOGINS)


@dataclass
class Outcomes:
    user_logins: int
    rejects: int
    reject_codes: dict[str, int]


def outcomes(
    credentials: PostgresCredentials,
    load_ids: Sequence[str] | None = None,
    raw_schema: str = RAW_SCHEMA,
) -> Outcomes:
    """The rows in `user_logins` and the rejects: all of them, or with `load_ids`, those of
    the messages these loads landed (in `raw_schema`)."""
    if load_ids is not None:
        return _outcomes_of_loads(credentials, list(load_ids), raw_schema)
    with warehouse.connect(credentials) as conn:
        logins = warehouse.count_rows(conn, *user_logins_table()) or 0
        rejects = warehouse.count_rows(conn, *REJECTS_TABLE) or 0
        codes: dict[str, int] = {}
        if rejects:
            with conn.cursor() as cursor:
                cursor.execute(
                    "select reject_code, count(*) from staging.stg_sqs__login_event_rejects"
                    " group by 1 order by 2 desc"
                )
                codes = {str(code): int(count) for code, count in cursor.fetchall()}
    return Outcomes(logins, rejects, codes)


def _outcomes_of_loads(
    credentials: PostgresCredentials, load_ids: list[str], raw_schema: str
) -> Outcomes:
    schemas = Schemas(raw=raw_schema, marts=user_logins_table()[0])
    if not load_ids:
        return Outcomes(0, 0, {})
    # message ids, not rows: SQS may have delivered a message twice within the run
    of_loads = sql.SQL(
        "message_id in (select message_id from {raw} where _dlt_load_id = any(%(ids)s))"
    ).format(raw=schemas.raw_messages)
    with warehouse.connect(credentials) as conn, conn.cursor() as cursor:
        logins = codes = None
        # before the first build the exercise's pre-created user_logins has no message_id
        if warehouse.column_exists(conn, schemas.marts, USER_LOGINS, "message_id"):
            cursor.execute(
                sql.SQL("select count(*) from {} where {}").format(schemas.user_logins, of_loads),
                {"ids": load_ids},
            )
            logins = cursor.fetchone()
        if warehouse.column_exists(conn, schemas.staging, REJECTS, "message_id"):
            cursor.execute(
                sql.SQL(
                    "select reject_code, count(*) from {} where {} group by 1 order by 2 desc"
                ).format(schemas.rejects, of_loads),
                {"ids": load_ids},
            )
            codes = {str(code): int(count) for code, count in cursor.fetchall()}
    codes = codes or {}
    return Outcomes(int(logins[0]) if logins else 0, sum(codes.values()), codes)


def this_run(before: Outcomes, after: Outcomes) -> Outcomes:
    """What the build added, from counts of the same messages before and after it."""
    codes = {
        code: count - before.reject_codes.get(code, 0)
        for code, count in after.reject_codes.items()
        if count > before.reject_codes.get(code, 0)
    }
    return Outcomes(after.user_logins - before.user_logins, after.rejects - before.rejects, codes)


def render(
    load: LoadStats, added: Outcomes, after: Outcomes, load_seconds: float, build_seconds: float
) -> str:
    """`added`: this run's rows (`this_run`); `after`: every row, after the build."""
    new_logins, new_rejects = added.user_logins, added.rejects
    codes = ", ".join(f"{code} {count:,}" for code, count in after.reject_codes.items())
    rows = [
        ("received from SQS", f"{load.received:,}"),
        ("landed in raw", f"{load.landed:,}  (deleted from SQS: {load.deleted:,})"),
        (
            "rejected",
            f"{new_rejects:,} this run  ({after.rejects:,} in all{': ' if codes else ''}{codes})",
        ),
        ("rows in user_logins", f"{after.user_logins:,}  (+{new_logins:,} this run)"),
        (
            "time",
            f"{load_seconds + build_seconds:.1f} s  (load {load_seconds:.1f} s, "
            f"dbt build {build_seconds:.1f} s)",
        ),
    ]
    width = max(len(label) for label, _ in rows)
    lines = ["", "logins run: done"] + [f"  {label.ljust(width)}  {value}" for label, value in rows]
    return "\n".join(lines)
