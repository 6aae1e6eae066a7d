"""Configuration, resolved with dlt's conventions.

Every value can be set in `.dlt/config.toml` / `.dlt/secrets.toml` or by environment variable,
e.g. `SOURCES__SQS__QUEUE_URL`, `DESTINATION__POSTGRES__CREDENTIALS`, `LOADER__CHUNK_SIZE`.
Postgres falls back to libpq's own variables (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE),
which the shipped dbt `profiles.yml` reads too, so one set of variables serves both.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

from dlt.common.configuration import configspec, resolve_configuration
from dlt.common.configuration.specs import BaseConfiguration
from dlt.common.typing import TSecretStrValue
from dlt.destinations.impl.postgres.configuration import PostgresCredentials

from loader.errors import ConfigurationError

DEFAULT_QUEUE_URL = "http://localhost:4566/000000000000/login-queue"
DEFAULT_REGION = "us-east-1"
# SQS wire protocols: botocore's current JSON one, and the query (XML) one old emulators speak.
SQS_PROTOCOLS = ("json", "query")
# The exercise's local setup; a real deployment sets PG* or DESTINATION__POSTGRES__CREDENTIALS.
DEFAULT_POSTGRES = {
    "PGHOST": "localhost",
    "PGPORT": "5432",
    "PGUSER": "postgres",
    "PGPASSWORD": "postgres",
    "PGDATABASE": "postgres",
}


@configspec
class SqsSettings(BaseConfiguration):
    """`[sources.sqs]`: where the login messages come from."""

    queue_url: str = DEFAULT_QUEUE_URL
    region_name: str = DEFAULT_REGION
    # Derived from queue_url for non-AWS hosts (an emulator); AWS endpoints come from the region.
    endpoint_url: str | None = None
    # Unset: boto3's default chain (env, ~/.aws, instance role); if that finds nothing, test/test.
    aws_access_key_id: TSecretStrValue | None = None
    aws_secret_access_key: TSecretStrValue | None = None
    aws_session_token: TSecretStrValue | None = None
    # Long polling: how long an empty receive waits before the loader decides the queue is drained.
    wait_time_seconds: int = 2
    # How long received messages stay hidden from other consumers while this loader holds them.
    visibility_timeout_seconds: int = 300
    # `query` for endpoints that predate SQS's JSON protocol, like the exercise's old LocalStack.
    protocol: str = "json"

    def on_resolved(self) -> None:
        if self.protocol not in SQS_PROTOCOLS:
            raise ConfigurationError(
                f"SOURCES__SQS__PROTOCOL is '{self.protocol}': set it to json or query"
            )

    @property
    def queue_name(self) -> str:
        return self.queue_url.rstrip("/").rsplit("/", 1)[-1]

    @property
    def resolved_endpoint_url(self) -> str | None:
        if self.endpoint_url:
            return self.endpoint_url
        parts = urlsplit(self.queue_url)
        if parts.hostname and parts.hostname.endswith("amazonaws.com"):
            return None
        return f"{parts.scheme}://{parts.netloc}"


@configspec
class LoaderSettings(BaseConfiguration):
    """`[loader]`: how the load is run."""

    pipeline_name: str = "sqs_logins"
    dataset_name: str = "raw"
    # dlt's working folder (pending load packages live here between runs).
    pipelines_dir: str | None = None
    # Threads receiving from SQS in parallel; deletes use as many.
    receivers: int = 4
    # Messages per dlt load. Each load costs dlt about 0.1 s of CPU however small, so larger
    # loads are cheaper; messages reach dlt as they arrive, so memory grows only by the receipt
    # handles a load keeps. It bounds how many messages wait for their commit (and come back
    # after a crash).
    chunk_size: int = 50_000
    # ...and message bodies per dlt load (characters: bytes, for ASCII JSON): bounds a load
    # package on disk and one COPY when messages are large (SQS allows 256 KB). 50,000 logins
    # of ~200 bytes are ~10 MB.
    chunk_bytes: int = 16 * 1024 * 1024
    # A chunk is loaded after this long even if not full, so messages never wait near their
    # visibility timeout.
    chunk_seconds: float = 30.0
    # A load that fails (Postgres down, a lost connection) is retried this many times, with
    # backoff doubling from retry_backoff_seconds, before the loader gives up.
    load_attempts: int = 4
    retry_backoff_seconds: float = 2.0
    # dlt keeps each finished load package's metadata (about 11 KB, one package a chunk) in
    # the working folder forever; a load keeps the newest this many (for `dlt pipeline ...
    # info`) and removes the older ones.
    keep_loaded_packages: int = 100


@configspec
class TransformSettings(BaseConfiguration):
    """`[transform]`: the `dbt build` that `logins run` runs after the load."""

    # Also run the whole-table checks and unit tests (dbt selector `full_check`, see
    # selectors.yml): their cost grows with the table, so schedule them (nightly) rather than
    # run them after every load. `logins run --full-check` turns it on for one run.
    full_check: bool = False


@configspec
class PiiSettings(BaseConfiguration):
    """`[pii]`: the HMAC key behind masked_ip / masked_device_id, recovery and retention."""

    # The key itself (hex or any string of at least 32 characters). Prefer a secret store.
    hmac_key: TSecretStrValue | None = None
    # Where the demo keeps a generated key when none is configured.
    hmac_key_file: str = ".secrets/hmac_key"
    # The recovery private key `logins pii keygen` writes and `pii recover` reads (git-ignored).
    recovery_key_file: str = ".secrets/recovery_key.asc"
    # Its passphrase, for unattended use; otherwise `logins pii` prompts (never a CLI argument).
    recovery_passphrase: TSecretStrValue | None = None
    # When set (a Postgres interval, e.g. "7 days"), `logins run` erases the plaintext bodies of
    # raw rows older than this whose messages are in user_logins or the rejects.
    purge_raw_older_than: str | None = None


@configspec
class RolesSettings(BaseConfiguration):
    """`[roles]`: the database roles `logins roles apply` manages."""

    # Roles are cluster-wide: the prefix keeps several pipelines (or test databases) on one
    # server apart. Names are <prefix>loader, <prefix>transformer, <prefix>analyst,
    # <prefix>pii_admin.
    prefix: str = "logins_"


@configspec
class StackSettings(BaseConfiguration):
    """`[stack]`: the local stack `logins up` starts."""

    # Private Postgres cluster, emulator pid and logs (relative to the checkout).
    state_dir: str = ".local"


def sqs_settings() -> SqsSettings:
    return resolve_configuration(SqsSettings(), sections=("sources", "sqs"))


def loader_settings() -> LoaderSettings:
    return resolve_configuration(LoaderSettings(), sections=("loader",))


def transform_settings() -> TransformSettings:
    return resolve_configuration(TransformSettings(), sections=("transform",))


def pii_settings() -> PiiSettings:
    return resolve_configuration(PiiSettings(), sections=("pii",))


def roles_settings() -> RolesSettings:
    return resolve_configuration(RolesSettings(), sections=("roles",))


def stack_settings() -> StackSettings:
    return resolve_configuration(StackSettings(), sections=("stack",))


def postgres_credentials() -> PostgresCredentials:
    """libpq variables (or the exercise's defaults), overridden by dlt's destination config."""
    defaults = PostgresCredentials()
    defaults.host = _pg_env("PGHOST")
    defaults.port = int(_pg_env("PGPORT"))
    defaults.username = _pg_env("PGUSER")
    defaults.password = _pg_env("PGPASSWORD")
    defaults.database = _pg_env("PGDATABASE")
    return resolve_configuration(defaults, sections=("destination", "postgres"))


def libpq_environment(credentials: PostgresCredentials) -> dict[str, str]:
    """The PG* variables that make dbt's profile point where the loader points."""
    return {
        "PGHOST": str(credentials.host),
        "PGPORT": str(credentials.port),
        "PGUSER": str(credentials.username),
        "PGPASSWORD": str(credentials.password or ""),
        "PGDATABASE": str(credentials.database),
    }


def marts_schema() -> str:
    """Where dbt puts user_logins (the shipped profile reads the same variable)."""
    return os.environ.get("DBT_SCHEMA", "public")


def describe_postgres(credentials: PostgresCredentials) -> str:
    """host:port/database as user, never the password."""
    return f"{credentials.username}@{credentials.host}:{credentials.port}/{credentials.database}"


def _pg_env(name: str) -> str:
    return os.environ.get(name) or DEFAULT_POSTGRES[name]


def project_root() -> Path:
    """The checkout this package runs from (it holds dbt_project.yml), else the working dir."""
    here = Path(__file__).resolve().parent.parent
    if (here / "dbt_project.yml").exists():
        return here
    return Path.cwd()
