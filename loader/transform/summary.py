"""The one-screen summary `logins run` ends with."""

from __future__ import annotations

import os
from dataclasses import dataclass

from dlt.destinations.impl.postgres.configuration import PostgresCredentials

from loader import warehouse
from loader.ingest.load import LoadStats
from loader.names import MARTS_SCHEMA, REJECTS, STAGING_SCHEMA, USER_LOGINS

REJECTS_TABLE = (STAGING_SCHEMA, REJECTS)


def user_logins_table() -> tuple[str, str]:
    return (os.environ.get("DBT_SCHEMA", MARTS_SCHEMA), USER_LOGINS)


@dataclass
class Outcomes:
    user_logins: int
    rejects: int
    reject_codes: dict[str, int]


def outcomes(credentials: PostgresCredentials) -> Outcomes:
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


def render(
    load: LoadStats, before: Outcomes, after: Outcomes, load_seconds: float, build_seconds: float
) -> str:
    new_logins = after.user_logins - before.user_logins
    new_rejects = after.rejects - before.rejects
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
