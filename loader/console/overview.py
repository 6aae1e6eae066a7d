"""The overview: logins per day by device type, app versions, locales, rejects per day by
code, freshness and the last runs; each chart with its table. Every query runs on the
signed-in role's connection."""

from __future__ import annotations

from typing import Any

from psycopg2 import sql
from psycopg2.extensions import connection as Connection
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from loader.console.access import Access
from loader.console.config import ConsoleConfig
from loader.console.web import visit
from loader.names import REJECTS
from loader.operations import history
from loader.operations.status import duration, newest, when
from loader.privacy.guards import guard, transaction

LAST_RUNS = 10
NULL_LOCALE = "(null)"


async def overview(request: Request) -> Response:
    current = visit(request)
    config = current.console.config

    def work(conn: Connection, access: Access) -> dict[str, Any]:
        return gather(conn, config, access)

    return await current.page("overview.html", lambda a: a.marts, work)


def gather(conn: Connection, config: ConsoleConfig, access: Access) -> dict[str, Any]:
    marts = config.schemas.user_logins
    found = newest(conn, config.schemas.marts, str(config.schemas.owner_role))
    context: dict[str, Any] = {
        "logins": _rows(
            conn,
            sql.SQL(
                "select create_date::text, device_type, pg_catalog.count(*) from {}"
                " group by 1, 2 order by 1, 2"
            ).format(marts),
        ),
        "versions": [
            (f"{v // 10000}.{v // 100 % 100}.{v % 100}", v, n)
            for v, n in _rows(
                conn,
                sql.SQL(
                    "select app_version, pg_catalog.count(*) from {} group by 1 order by 1"
                ).format(marts),
            )
        ],
        "locales": [
            (locale if locale is not None else NULL_LOCALE, locale is None, n)
            for locale, n in _rows(
                conn,
                sql.SQL(
                    "select locale, pg_catalog.count(*) from {}"
                    " group by 1 order by 2 desc, 1 nulls first"
                ).format(marts),
            )
        ],
        "freshness": found
        and {
            "newest_message": when(found.sent_at),
            "newest_load": when(found.loaded_at),
            "age": duration(found.age_seconds),
        },
        "rejects": rejects_per_day(conn, config, access),
        "runs": history.last_runs(conn, LAST_RUNS) if access.run_history else None,
    }
    context["logins_chart"] = stacked(context["logins"])
    context["rejects_chart"] = stacked(context["rejects"] or [])
    return context


def stacked(rows: list[tuple[Any, ...]]) -> dict[str, Any]:
    """(day, series, count) rows as a stacked chart's labels (days) and one dataset a series."""
    days = sorted({day for day, _, _ in rows})
    counts: dict[str, dict[str, int]] = {}
    for day, series, count in rows:
        counts.setdefault(str(series), {})[day] = int(count)
    return {
        "labels": days,
        "datasets": [
            {"label": series, "data": [by_day.get(day, 0) for day in days]}
            for series, by_day in counts.items()
        ],
    }


def rejects_per_day(
    conn: Connection, config: ConsoleConfig, access: Access
) -> list[tuple[Any, ...]] | None:
    """(day, code, count): from the rejects themselves where the role reads them (pii_admin),
    else from the runs' counts (the operator reads no body); None for a role that may read
    neither."""
    if access.reject_bodies:
        return guarded_rows(
            conn,
            config,
            (config.schemas.staging, REJECTS),
            sql.SQL(
                "select (received_at at time zone 'UTC')::date::text, reject_code,"
                " pg_catalog.count(*) from {} group by 1, 2 order by 1, 2"
            ).format(config.schemas.rejects),
        )
    if access.run_history:
        return _rows(
            conn,
            sql.SQL(
                "select (runs.ended_at at time zone 'UTC')::date::text, entry.key,"
                " pg_catalog.sum((entry.value)::text::bigint)::bigint"
                " from ops.pipeline_runs as runs,"
                " pg_catalog.jsonb_each(runs.rejects_by_code) as entry"
                " group by 1, 2 order by 1, 2"
            ),
        )
    return None


def guarded_rows(
    conn: Connection,
    config: ConsoleConfig,
    table: tuple[str, str],
    query: sql.Composable,
    params: Any = None,
) -> list[tuple[Any, ...]]:
    """`query`'s rows, read in one transaction after refusing `table` if it carries another
    role's code: the rejects are the transformer's, and pii_admin reads them."""
    with transaction(conn), conn.cursor() as cursor:
        guard(conn, config.schemas, [table], write=False)
        cursor.execute(query, params)
        return cursor.fetchall()


def _rows(conn: Connection, query: sql.Composable) -> list[tuple[Any, ...]]:
    with conn.cursor() as cursor:
        cursor.execute(query)
        return cursor.fetchall()


routes = [Route("/", overview, methods=["GET"])]
