"""The age of the queue's oldest message, where it can be known honestly.

SQS's GetQueueAttributes does not give it: only CloudWatch's `ApproximateAgeOfOldestMessage`
metric does (one-minute data, a few minutes late). So:
- against real AWS, `cloudwatch_oldest_age` asks CloudWatch for the newest datapoint, and
  answers None when CloudWatch does not (no permission, no datapoint yet);
- against an emulator, there is no CloudWatch: None;
- and every run records `oldest_received_age`: of the messages loads landed while it ran, the
  longest any waited between SentTimestamp and its receipt. That is measured, not estimated.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from psycopg2 import sql

from loader import warehouse
from loader.names import DLT_LOADS, RAW_TABLE
from loader.warehouse.attached_code import refuse_attached_code

if TYPE_CHECKING:
    from dlt.destinations.impl.postgres.configuration import PostgresCredentials

    from loader.settings import SqsSettings

# CloudWatch publishes SQS metrics each minute; a datapoint older than this is not "now"
CLOUDWATCH_WINDOW = timedelta(minutes=15)


def cloudwatch_oldest_age(settings: SqsSettings) -> float | None:
    """CloudWatch's newest ApproximateAgeOfOldestMessage (seconds) for the queue, when the
    queue is on AWS itself and CloudWatch answers; otherwise None. Never raises."""
    if settings.resolved_endpoint_url is not None:  # an emulator or other endpoint
        return None
    try:
        import boto3
        from botocore.config import Config

        from loader.ingest.sqs import credentials_for

        client = boto3.session.Session().client(
            "cloudwatch",
            region_name=settings.region_name,
            config=Config(connect_timeout=3, read_timeout=5, retries={"max_attempts": 1}),
            **credentials_for(settings),
        )
        now = datetime.now(UTC)
        answer = client.get_metric_statistics(
            Namespace="AWS/SQS",
            MetricName="ApproximateAgeOfOldestMessage",
            Dimensions=[{"Name": "QueueName", "Value": settings.queue_name}],
            StartTime=now - CLOUDWATCH_WINDOW,
            EndTime=now,
            Period=60,
            Statistics=["Maximum"],
        )
    except Exception:  # no permission, no network: the age is unknown, not an error
        return None
    points = sorted(answer.get("Datapoints", []), key=lambda point: point["Timestamp"])
    return float(points[-1]["Maximum"]) if points else None


def oldest_received_age(
    credentials: PostgresCredentials, raw_schema: str, since: datetime, owner_role: str | None
) -> float | None:
    """Seconds the longest-waiting message landed since `since` waited before it was received
    (received_at - sent_at), over the loads committed since then; None if none landed. Reads
    dlt's load list (one row a load) and the rows of those loads (by their indexed load id),
    after refusing the tables if they carry another role's code."""
    tables = [(raw_schema, DLT_LOADS), (raw_schema, RAW_TABLE)]
    with warehouse.connect(credentials) as conn, conn.cursor() as cursor:
        if not all(warehouse.table_exists(conn, *table) for table in tables):
            return None
        cursor.execute("begin")
        refuse_attached_code(cursor, tables, write=False, owner_role=owner_role)
        cursor.execute(
            sql.SQL(
                "select pg_catalog.max(pg_catalog.date_part('epoch', m.received_at - m.sent_at))"
                " from {loads} as l join {messages} as m on m._dlt_load_id = l.load_id"
                " where l.status = 0 and l.inserted_at >= %s"
            ).format(
                loads=sql.Identifier(raw_schema, DLT_LOADS),
                messages=sql.Identifier(raw_schema, RAW_TABLE),
            ),
            (since,),
        )
        row = cursor.fetchone()
        cursor.execute("commit")
    return max(0.0, float(row[0])) if row and row[0] is not None else None
