"""What a signed-in role may see, asked of Postgres on its own connection: the grants decide,
the console keeps no list of its own."""

from __future__ import annotations

from dataclasses import dataclass

from psycopg2.extensions import connection as Connection

from loader.console.config import ConsoleConfig
from loader.names import OPS_SCHEMA, PIPELINE_RUNS, REJECTS, USER_LOGINS

RECOVER_FUNCTION = "pii.recover(text, text[], text[])"


@dataclass(frozen=True)
class Access:
    marts: bool  # reads user_logins: the overview
    analyst: bool  # the analyst role, or a member of it: the duplicates
    run_history: bool  # reads ops.pipeline_runs (the operator): last runs, rejects by code
    reject_bodies: bool  # reads the rejects with their bodies (pii_admin)
    privacy: bool  # may call pii.recover (pii_admin): the privacy desk

    @property
    def rejects(self) -> bool:
        return self.run_history or self.reject_bodies

    def pages(self) -> list[tuple[str, str]]:
        """(path, title) of every page this role may open, in the menu's order."""
        shown = [
            ("/", "Overview", self.marts),
            ("/duplicates", "Duplicates", self.analyst),
            ("/rejects", "Rejects", self.rejects),
            ("/privacy", "Privacy desk", self.privacy),
            ("/docs/", "Docs", True),
        ]
        return [(path, title) for path, title, allowed in shown if allowed]


def access_of(conn: Connection, config: ConsoleConfig) -> Access:
    marts = f'"{config.schemas.marts}"."{USER_LOGINS}"'
    rejects = f'"{config.schemas.staging}"."{REJECTS}"'
    runs = f'"{OPS_SCHEMA}"."{PIPELINE_RUNS}"'
    with conn.cursor() as cursor:
        cursor.execute(
            "select"
            " coalesce(pg_catalog.has_table_privilege(pg_catalog.to_regclass(%(marts)s),"
            " 'select'), false),"
            " case when exists (select from pg_catalog.pg_roles where rolname = %(analyst)s)"
            " then pg_catalog.pg_has_role(%(analyst)s, 'usage') else false end,"
            " coalesce(pg_catalog.has_table_privilege(pg_catalog.to_regclass(%(runs)s),"
            " 'select'), false),"
            " coalesce(pg_catalog.has_table_privilege(pg_catalog.to_regclass(%(rejects)s),"
            " 'select'), false),"
            " coalesce(pg_catalog.has_function_privilege("
            "pg_catalog.to_regprocedure(%(recover)s), 'execute'), false)",
            {
                "marts": marts,
                "analyst": config.analyst_role,
                "runs": runs,
                "rejects": rejects,
                "recover": RECOVER_FUNCTION,
            },
        )
        row = cursor.fetchone()
    return Access(*(bool(value) for value in row))
