"""Duplicates (the analyst's): masked device ids and masked IPs that several users share,
with counts, and a drill-down to the rows. Masks only: the analyst can read no value."""

from __future__ import annotations

import re
from typing import Any

from psycopg2 import sql
from psycopg2.extensions import connection as Connection
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from loader.console.access import Access
from loader.console.web import BadInput, visit
from loader.names import KINDS

SHOWN = 100  # masks per kind on the page, most shared first
MASK = re.compile(r"[0-9a-f]{64}")


def _allowed(access: Access) -> bool:
    return access.analyst


async def duplicates(request: Request) -> Response:
    current = visit(request)
    marts = current.console.config.schemas.user_logins

    def work(conn: Connection, access: Access) -> dict[str, Any]:
        shared = {}
        with conn.cursor() as cursor:
            for kind, column in KINDS.items():
                cursor.execute(
                    sql.SQL(
                        "select {col}, pg_catalog.count(distinct user_id),"
                        " pg_catalog.count(*) from {marts} group by 1"
                        " having pg_catalog.count(distinct user_id) > 1"
                        " order by 2 desc, 3 desc, 1 limit %s"
                    ).format(col=sql.Identifier(column), marts=marts),
                    (SHOWN,),
                )
                shared[kind] = cursor.fetchall()
        return {"shared": shared}

    return await current.page("duplicates.html", _allowed, work)


async def duplicate_rows(request: Request) -> Response:
    current = visit(request)
    marts = current.console.config.schemas.user_logins
    kind = request.path_params["kind"]
    mask = request.path_params["mask"]
    if kind not in KINDS or not MASK.fullmatch(mask):
        return current.render(
            "error.html",
            {"title": "Unknown mask", "message": "A mask is 64 hex digits of an ip or device_id."},
            404,
        )

    def work(conn: Connection, access: Access) -> dict[str, Any]:
        with conn.cursor() as cursor:
            cursor.execute(
                sql.SQL(
                    "select user_id, device_type, masked_ip, masked_device_id, locale,"
                    " app_version_string, create_date::text, message_id from {}"
                    " where {} = %s order by create_date, user_id, message_id"
                ).format(marts, sql.Identifier(KINDS[kind])),
                (mask,),
            )
            rows = cursor.fetchall()
        if not rows:
            raise BadInput(f"no row has the {kind} mask {mask}")
        return {"kind": kind, "mask": mask, "rows": rows}

    return await current.page("duplicate_rows.html", _allowed, work)


routes = [
    Route("/duplicates", duplicates, methods=["GET"]),
    Route("/duplicates/{kind}/{mask}", duplicate_rows, methods=["GET"]),
]
