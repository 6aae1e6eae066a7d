"""Rejects (the operator's and pii_admin's): counts by code over time; the bodies only to a
role that reads the rejects table (pii_admin), since they are plaintext PII."""

from __future__ import annotations

from typing import Any

from psycopg2 import sql
from psycopg2.extensions import connection as Connection
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from loader.console.access import Access
from loader.console.overview import guarded_rows, rejects_per_day, stacked
from loader.console.web import visit
from loader.names import REJECTS

SHOWN = 200  # newest bodies on the page


async def rejects(request: Request) -> Response:
    current = visit(request)
    config = current.console.config

    def work(conn: Connection, access: Access) -> dict[str, Any]:
        bodies = None
        if access.reject_bodies:
            bodies = guarded_rows(
                conn,
                config,
                (config.schemas.staging, REJECTS),
                sql.SQL(
                    "select received_at, message_id, reject_code, reject_reason, body"
                    " from {} order by received_at desc, message_id limit %s"
                ).format(config.schemas.rejects),
                (SHOWN,),
            )
        per_day = rejects_per_day(conn, config, access) or []
        return {"per_day": per_day, "rejects_chart": stacked(per_day), "bodies": bodies}

    return await current.page("rejects.html", lambda a: a.rejects, work)


routes = [Route("/rejects", rejects, methods=["GET"])]
