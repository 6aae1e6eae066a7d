"""The console's configuration: where Postgres is (the pipeline's settings, without their
user and password: each person brings their own), the schemas, the roles, the idle timeout."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from loader.names import Schemas

if TYPE_CHECKING:
    from dlt.destinations.impl.postgres.configuration import PostgresCredentials


@dataclass(frozen=True)
class ConsoleConfig:
    host: str
    port: int
    database: str
    schemas: Schemas
    analyst_role: str
    idle_seconds: float
    docs_dir: Path | None  # dbt's docs site, when generated

    def credentials(self, user: str, password: str) -> PostgresCredentials:
        from dlt.destinations.impl.postgres.configuration import PostgresCredentials

        credentials = PostgresCredentials()
        credentials.host, credentials.port, credentials.database = (
            self.host,
            self.port,
            self.database,
        )
        credentials.username, credentials.password = user, password
        return credentials


def from_settings(docs_dir: Path | None = None) -> ConsoleConfig:
    """The console's view of the pipeline's settings (environment, .dlt/*.toml)."""
    from loader.settings import (
        console_settings,
        loader_settings,
        marts_schema,
        postgres_credentials,
        roles_settings,
    )

    credentials = postgres_credentials()
    roles = roles_settings()
    return ConsoleConfig(
        host=str(credentials.host),
        port=int(credentials.port),
        database=str(credentials.database),
        schemas=Schemas(
            raw=loader_settings().dataset_name,
            marts=marts_schema(),
            owner_role=roles.role("owner"),
        ),
        analyst_role=roles.role("analyst"),
        idle_seconds=console_settings().idle_minutes * 60,
        docs_dir=docs_dir,
    )
