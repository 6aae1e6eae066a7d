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


def _readable(kind: str, name: str) -> str:
    """SQL: whether the role may use `name` (a parameter), false when its schema is missing or
    not the role's to use (looking a name up in such a schema is itself refused)."""
    check = {
        "table": "pg_catalog.has_table_privilege(pg_catalog.to_regclass({n}), 'select')",
        "function": "pg_catalog.has_function_privilege(pg_catalog.to_regprocedure({n}), 'execute')",
    }[kind].format(n=name)
    return (
        "case when exists (select from pg_catalog.pg_namespace as ns"
        f" where ns.nspname = pg_catalog.split_part({name}, '.', 1)"
        " and pg_catalog.has_schema_privilege(ns.oid, 'usage'))"
        f" then coalesce({check}, false) else false end"
    )


def access_of(conn: Connection, config: ConsoleConfig) -> Access:
    with conn.cursor() as cursor:
        cursor.execute(
            f"select {_readable('table', '%(marts)s')},"
            " case when exists (select from pg_catalog.pg_roles where rolname = %(analyst)s)"
            " then pg_catalog.pg_has_role(%(analyst)s, 'usage') else false end,"
            f" {_readable('table', '%(runs)s')}, {_readable('table', '%(rejects)s')},"
            f" {_readable('function', '%(recover)s')}",
            {
                "marts": f"{config.schemas.marts}.{USER_LOGINS}",
                "analyst": config.analyst_role,
                "runs": f"{OPS_SCHEMA}.{PIPELINE_RUNS}",
                "rejects": f"{config.schemas.staging}.{REJECTS}",
                "recover": RECOVER_FUNCTION,
            },
        )
        row = cursor.fetchone()
    return Access(*(bool(value) for value in row))
