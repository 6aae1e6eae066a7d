"""Every schema and relation name the Python side uses, in one place.

SQS -> dlt -> `raw.login_messages` -> dbt -> `staging.stg_sqs__login_events` (and its
rejects) -> `public.user_logins`, with `pii` (keys, vault, audit log) and `pipeline_lib`
(functions every role may call) beside them. The schemas are configurable (`Schemas`);
the table names are the dlt resource's and the dbt models'.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg2 import sql

RAW_SCHEMA = "raw"
STAGING_SCHEMA = "staging"
MARTS_SCHEMA = "public"
PII_SCHEMA = "pii"
PIPELINE_LIB_SCHEMA = "pipeline_lib"
OPS_SCHEMA = "ops"  # the run history (loader/operations/sql/ops_setup.sql)

RAW_TABLE = "login_messages"  # the dlt resource's table
DLT_LOADS = "_dlt_loads"  # dlt's record of committed loads
STAGING = "stg_sqs__login_events"
REJECTS = "stg_sqs__login_event_rejects"
USER_LOGINS = "user_logins"
PIPELINE_RUNS = "pipeline_runs"  # one row per `logins load` or `logins run`

# the mart's masked column for each kind of PII
KINDS = {"ip": "masked_ip", "device_id": "masked_device_id"}


@dataclass(frozen=True)
class Schemas:
    """Where the pipeline's tables are: raw (dlt), staging and the marts (dbt)."""

    raw: str = RAW_SCHEMA
    staging: str = STAGING_SCHEMA
    marts: str = MARTS_SCHEMA
    # the pipeline's owner role: functions it owns are trusted (loader/warehouse/attached_code.py)
    owner_role: str | None = None

    def relation(self, schema: str, table: str) -> sql.Composed:
        return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))

    @property
    def raw_messages(self) -> sql.Composed:
        return self.relation(self.raw, RAW_TABLE)

    @property
    def raw_loads(self) -> sql.Composed:
        return self.relation(self.raw, DLT_LOADS)

    @property
    def user_logins(self) -> sql.Composed:
        return self.relation(self.marts, USER_LOGINS)

    @property
    def rejects(self) -> sql.Composed:
        return self.relation(self.staging, REJECTS)

    @property
    def staging_events(self) -> sql.Composed:
        return self.relation(self.staging, STAGING)

    @property
    def pipeline_tables(self) -> list[tuple[str, str]]:
        """The tables erasure rewrites, owned by the loader and the transformer."""
        return [
            (self.raw, RAW_TABLE),
            (self.staging, STAGING),
            (self.staging, REJECTS),
            (self.marts, USER_LOGINS),
        ]
