"""Configuration, resolved with dlt's conventions.

Every value can be set in `.dlt/config.toml` / `.dlt/secrets.toml` or by environment variable,
e.g. `SOURCES__SQS__QUEUE_URL`, `DESTINATION__POSTGRES__CREDENTIALS`, `LOADER__CHUNK_SIZE`.
Postgres falls back to libpq's own variables (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE),
which the shipped dbt `profiles.yml` reads too, so one set of variables serves both.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
from pathlib import Path
from typing import TypeVar
from urllib.parse import SplitResult, urlsplit

from dlt.common.configuration import configspec, resolve_configuration
from dlt.common.configuration.exceptions import (
    ConfigurationException,
    ConfigValueCannotBeCoercedException,
    InvalidNativeValue,
)
from dlt.common.configuration.specs import BaseConfiguration
from dlt.common.typing import TSecretStrValue
from dlt.destinations.impl.postgres.configuration import PostgresCredentials

from loader.errors import ConfigurationError
from loader.names import MARTS_SCHEMA, RAW_SCHEMA

DEFAULT_QUEUE_URL = "http://localhost:4566/000000000000/login-queue"
QUEUE_URL_EXAMPLE = "https://sqs.us-east-1.amazonaws.com/123456789012/login-queue"
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
# SQS's own limits (seconds).
MAX_WAIT_TIME_SECONDS = 20
MAX_VISIBILITY_TIMEOUT_SECONDS = 12 * 60 * 60
# More receiver threads than this only adds connections: SQS answers each long poll alone.
MAX_RECEIVERS = 64
# Schema names go into SQL and dbt's profile: plain lower-case identifiers need no quoting.
IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}")
IDENTIFIER_RULE = "lower-case letters, digits and _, not starting with a digit, at most 63"
# botocore's own rule for region names.
REGION = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?")
# The pipeline name becomes a folder name and, with a slot number, a dlt pipeline name.
PIPELINE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,59}")
AWS_RETRY_MODES = ("legacy", "standard", "adaptive")
PG_SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
# Metric label values the grouping key carries (job, instance): plain, so URLs need no escaping.
LABEL_VALUE = re.compile(r"[A-Za-z0-9_.:-]{1,100}")
TEXTFILE_EXAMPLE = "/var/lib/node_exporter/textfile/logins.prom"
# scheme://user:password@ : the password runs to the last @ of the word, so one holding an
# unencoded @ or / is masked whole (masking too much is harmless, too little is a leak).
_URL_PASSWORD = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:@'\"]*):[^\s'\"]*@")

_Spec = TypeVar("_Spec", bound=BaseConfiguration)


def mask_url(text: str) -> str:
    """`text` with the password of every URL in it shown as ***: use it wherever a URL is
    printed (settings, SQS errors, `logins up`)."""
    return _URL_PASSWORD.sub(r"\1:***@", text)


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
        queue = check_url("SOURCES__SQS__QUEUE_URL", self.queue_url, QUEUE_URL_EXAMPLE)
        if not queue.path.strip("/"):
            raise ConfigurationError(
                f"SOURCES__SQS__QUEUE_URL is '{mask_url(self.queue_url)}', which names no "
                f"queue: set it to the queue's URL, e.g. {QUEUE_URL_EXAMPLE}"
            )
        if self.endpoint_url:
            check_url("SOURCES__SQS__ENDPOINT_URL", self.endpoint_url, "http://localhost:4566")
        if not REGION.fullmatch(self.region_name):
            raise ConfigurationError(
                f"SOURCES__SQS__REGION_NAME is '{self.region_name}': set it to an AWS region "
                f"such as {DEFAULT_REGION}"
            )
        check_range(
            "SOURCES__SQS__WAIT_TIME_SECONDS", self.wait_time_seconds, 0, MAX_WAIT_TIME_SECONDS
        )
        check_range(
            "SOURCES__SQS__VISIBILITY_TIMEOUT_SECONDS",
            self.visibility_timeout_seconds,
            0,
            MAX_VISIBILITY_TIMEOUT_SECONDS,
        )
        aws_retries()  # boto3's own variables, read when the client is made: checked now

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
    dataset_name: str = RAW_SCHEMA
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

    def on_resolved(self) -> None:
        if not PIPELINE_NAME.fullmatch(self.pipeline_name):
            raise ConfigurationError(
                f"LOADER__PIPELINE_NAME is '{self.pipeline_name}': use letters, digits, _ and -"
                " (at most 60, not starting with -)"
            )
        check_identifier("LOADER__DATASET_NAME", self.dataset_name)
        check_range("LOADER__RECEIVERS", self.receivers, 1, MAX_RECEIVERS)
        check_range("LOADER__CHUNK_SIZE", self.chunk_size, 1)
        check_range("LOADER__CHUNK_BYTES", self.chunk_bytes, 1)
        check_range("LOADER__CHUNK_SECONDS", self.chunk_seconds, 0.1, unit="seconds")
        check_range("LOADER__LOAD_ATTEMPTS", self.load_attempts, 1, 100)
        check_range("LOADER__RETRY_BACKOFF_SECONDS", self.retry_backoff_seconds, 0, 3600.0)
        check_range("LOADER__KEEP_LOADED_PACKAGES", self.keep_loaded_packages, 0)


@configspec
class TransformSettings(BaseConfiguration):
    """`[transform]`: the `dbt build` that `logins run` runs after the load."""

    # Also run the whole-table checks and unit tests (dbt selector `full_check`, see
    # selectors.yml): their cost grows with the table, so schedule them (nightly) rather than
    # run them after every load. `logins run --full-check` turns it on for one run.
    full_check: bool = False


@configspec
class OrchestrateSettings(BaseConfiguration):
    """`[orchestrate]`: when the Dagster code location (loader/orchestration) starts a run."""

    # The schedule's cron expression: a load and build every 5 minutes.
    schedule_cron: str = "*/5 * * * *"
    # The sensor requests a run once this many messages are visible in the queue...
    sensor_queue_depth: int = 10_000
    # ...and at most once per this many seconds, so a deep queue does not start a run per tick.
    sensor_min_interval_seconds: int = 60
    # How often Dagster's daemon asks the sensor (seconds).
    sensor_interval_seconds: int = 30

    def on_resolved(self) -> None:
        if len(self.schedule_cron.split()) != 5:
            raise ConfigurationError(
                f"ORCHESTRATE__SCHEDULE_CRON is '{self.schedule_cron}': set it to a cron "
                "expression of five fields, e.g. */5 * * * *"
            )
        check_range("ORCHESTRATE__SENSOR_QUEUE_DEPTH", self.sensor_queue_depth, 1)
        check_range("ORCHESTRATE__SENSOR_MIN_INTERVAL_SECONDS", self.sensor_min_interval_seconds, 0)
        check_range("ORCHESTRATE__SENSOR_INTERVAL_SECONDS", self.sensor_interval_seconds, 1)


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
    # <prefix>pii_admin, <prefix>operator.
    prefix: str = "logins_"

    def role(self, name: str) -> str:
        """A pipeline role's name: loader, transformer, analyst, pii_admin, operator or owner."""
        return f"{self.prefix}{name}"

    def on_resolved(self) -> None:
        # the longest role name, <prefix>transformer, must still fit Postgres' 63 characters
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,51}", self.prefix):
            raise ConfigurationError(
                f"ROLES__PREFIX is '{self.prefix}': use lower-case letters, digits and _, not "
                "starting with a digit, at most 52"
            )


@configspec
class StatusSettings(BaseConfiguration):
    """`[status]`: when `logins status` calls the data stale."""

    # Newest row in user_logins older than this (by its load time): exit 8. The default is
    # dbt source freshness's warning threshold (a day without a new message).
    max_age_minutes: float = 24 * 60

    def on_resolved(self) -> None:
        check_range("STATUS__MAX_AGE_MINUTES", self.max_age_minutes, 1, unit="minutes")


@configspec
class ConsoleSettings(BaseConfiguration):
    """`[console]`: the web console `logins console` serves (docs/console.md)."""

    # A signed-in session unused this long is closed, its Postgres connection with it.
    idle_minutes: float = 15
    # Where `dbt docs generate` writes the docs site the console serves under /docs.
    docs_dir: str = ".local/console-docs"

    def on_resolved(self) -> None:
        check_range("CONSOLE__IDLE_MINUTES", self.idle_minutes, 1, 24 * 60, unit="minutes")


@configspec
class StackSettings(BaseConfiguration):
    """`[stack]`: the local stack `logins up` starts."""

    # Private Postgres cluster, emulator pid and logs (relative to the checkout).
    state_dir: str = ".local"


@configspec
class MetricsSettings(BaseConfiguration):
    """`[metrics]`: where `logins load` and `logins run` publish each run's metrics (neither
    set: nowhere)."""

    # A Pushgateway's base URL; a password in it (https://user:password@host) is sent as basic
    # auth and never printed.
    pushgateway_url: TSecretStrValue | None = None
    # A file for node_exporter's textfile collector (it reads only *.prom), replaced atomically.
    textfile: str | None = None
    # The grouping key: job, the command, and instance when set (one group per host, say).
    job: str = "logins"
    instance: str | None = None
    # A Pushgateway that does not answer in this long is skipped (one note line, the run goes on).
    timeout_seconds: float = 10.0

    def on_resolved(self) -> None:
        if self.pushgateway_url:
            check_url("METRICS__PUSHGATEWAY_URL", self.pushgateway_url, "http://pushgateway:9091")
        if self.textfile:
            check_textfile(self.textfile)
        for name, value in (("METRICS__JOB", self.job), ("METRICS__INSTANCE", self.instance)):
            if value is not None and not LABEL_VALUE.fullmatch(value):
                raise ConfigurationError(
                    f"{name} is {_quoted(value)}: use letters, digits, _, ., : and - (at most 100)"
                )
        check_range("METRICS__TIMEOUT_SECONDS", self.timeout_seconds, 0.1, 300.0, unit="seconds")


def sqs_settings() -> SqsSettings:
    return _resolve(SqsSettings(), ("sources", "sqs"))


def loader_settings() -> LoaderSettings:
    return _resolve(LoaderSettings(), ("loader",))


def transform_settings() -> TransformSettings:
    return _resolve(TransformSettings(), ("transform",))


def pii_settings() -> PiiSettings:
    return _resolve(PiiSettings(), ("pii",))


def roles_settings() -> RolesSettings:
    return _resolve(RolesSettings(), ("roles",))


def status_settings() -> StatusSettings:
    return _resolve(StatusSettings(), ("status",))


def console_settings() -> ConsoleSettings:
    return _resolve(ConsoleSettings(), ("console",))


def stack_settings() -> StackSettings:
    return _resolve(StackSettings(), ("stack",))


def orchestrate_settings() -> OrchestrateSettings:
    return _resolve(OrchestrateSettings(), ("orchestrate",))


def metrics_settings() -> MetricsSettings:
    return _resolve(MetricsSettings(), ("metrics",))


CREDENTIALS_VARIABLE = "DESTINATION__POSTGRES__CREDENTIALS"
CREDENTIALS_EXAMPLE = "postgresql://user:password@host:5432/database"


def postgres_credentials() -> PostgresCredentials:
    """libpq variables (or the exercise's defaults), overridden by dlt's destination config."""
    _check_ssl_mode()
    defaults = PostgresCredentials()
    defaults.host = _pg_env("PGHOST")
    defaults.port = _pg_port()
    defaults.username = _pg_env("PGUSER")
    defaults.password = _pg_env("PGPASSWORD")
    defaults.database = _pg_env("PGDATABASE")
    try:
        credentials = _resolve(defaults, ("destination", "postgres"), f"{CREDENTIALS_VARIABLE}__")
    except InvalidNativeValue:
        raise ConfigurationError(
            f"{CREDENTIALS_VARIABLE} is {_shown_secret(CREDENTIALS_VARIABLE)}, not a connection "
            f"string dlt can read: set it to {CREDENTIALS_EXAMPLE} (or unset it and use PGHOST, "
            "PGPORT, PGUSER, PGPASSWORD, PGDATABASE)"
        ) from None
    if not credentials.host:
        raise ConfigurationError(
            f"the Postgres host is empty: set PGHOST or {CREDENTIALS_VARIABLE} "
            f"({CREDENTIALS_EXAMPLE})"
        )
    check_range(f"the Postgres port (PGPORT or {CREDENTIALS_VARIABLE})", credentials.port, 1, 65535)
    return credentials


def aws_retries() -> dict[str, str | int]:
    """botocore's retry settings: AWS_RETRY_MODE and AWS_MAX_ATTEMPTS, checked."""
    mode = os.environ.get("AWS_RETRY_MODE") or "standard"
    if mode not in AWS_RETRY_MODES:
        raise ConfigurationError(
            f"AWS_RETRY_MODE is '{mode}': set it to {', '.join(AWS_RETRY_MODES)} (or unset it)"
        )
    attempts = _integer("AWS_MAX_ATTEMPTS", os.environ.get("AWS_MAX_ATTEMPTS") or "5")
    check_range("AWS_MAX_ATTEMPTS", attempts, 1, 20)
    return {"mode": mode, "max_attempts": attempts}


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
    return check_identifier("DBT_SCHEMA", os.environ.get("DBT_SCHEMA", MARTS_SCHEMA))


def writable_pipelines_dir(settings: LoaderSettings) -> Path:
    """LOADER__PIPELINES_DIR (or dlt's default), made and proven writable before any message
    is received: dlt would fail only once the first chunk is on its way."""
    from dlt.common.pipeline import get_dlt_pipelines_dir

    where = settings.pipelines_dir or get_dlt_pipelines_dir()
    name = "LOADER__PIPELINES_DIR" if settings.pipelines_dir else "dlt's default folder"
    path = Path(where)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as error:
        raise ConfigurationError(
            f"{name} '{where}' is not a writable folder ({error.strerror or error}): set "
            "LOADER__PIPELINES_DIR to a folder this user may write"
        ) from None
    return path


def check_textfile(value: str) -> Path:
    """METRICS__TEXTFILE: a *.prom file in a folder that exists and this user may write (the
    file is written beside itself, then renamed over)."""
    path = Path(value)
    if path.suffix != ".prom":
        raise ConfigurationError(
            f"METRICS__TEXTFILE is {_quoted(value)}: node_exporter's textfile collector reads "
            f"only *.prom files: set it to a path such as {TEXTFILE_EXAMPLE}"
        )
    try:
        with tempfile.TemporaryFile(dir=path.parent):
            pass
    except OSError as error:
        raise ConfigurationError(
            f"METRICS__TEXTFILE is {_quoted(value)}, whose folder is not one this user may "
            f"write ({error.strerror or error}): create it, or set a path such as "
            f"{TEXTFILE_EXAMPLE}"
        ) from None
    return path


def _pg_env(name: str) -> str:
    return os.environ.get(name) or DEFAULT_POSTGRES[name]


def _pg_port() -> int:
    port = _integer("PGPORT", _pg_env("PGPORT"))
    check_range("PGPORT", port, 1, 65535)
    return port


def _check_ssl_mode() -> None:
    """libpq reads PGSSLMODE itself; a bad one would read as 'cannot connect'."""
    mode = os.environ.get("PGSSLMODE")
    if mode and mode not in PG_SSL_MODES:
        raise ConfigurationError(
            f"PGSSLMODE is '{mode}': set it to one of {', '.join(PG_SSL_MODES)} (or unset it)"
        )


# -- checks: each failure is one line naming the variable and what to set it to -------------


def check_range(
    name: str, value: float, low: float, high: float | None = None, unit: str = ""
) -> None:
    """`value` lies in [low, high] (no upper bound when `high` is None) and is a number."""
    if isinstance(value, float) and not math.isfinite(value):
        ok = False
    else:
        ok = low <= value and (high is None or value <= high)
    if not ok:
        wanted = f"from {low:g} to {high:g}" if high is not None else f"of at least {low:g}"
        suffix = f" {unit}" if unit else ""
        raise ConfigurationError(f"{name} is {value}: set it to a number {wanted}{suffix}")


def check_identifier(name: str, value: str) -> str:
    if not IDENTIFIER.fullmatch(value):
        raise ConfigurationError(
            f"{name} is {_quoted(value)}: a schema name here must be a plain identifier "
            f"({IDENTIFIER_RULE} characters), e.g. raw or public"
        )
    return value


def check_url(name: str, value: str, example: str) -> SplitResult:
    """An http(s) URL with a host; shown with its password masked."""
    fix = f"set it to a URL such as {example}"
    shown = _quoted(mask_url(value))
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        # not urlsplit's text: it may quote a part of the value
        raise ConfigurationError(
            f"{name} is {shown}, which is not a valid URL (a bad [IPv6] host or a port that "
            f"is not a number from 0 to 65535): {fix}"
        ) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"{name} is {shown}, not an http(s) URL with a host: {fix}")
    if port == 0:
        raise ConfigurationError(f"{name} is {shown}, whose port is 0: {fix}")
    return parts


def _integer(name: str, text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise ConfigurationError(f"{name} is {_quoted(text)}: set it to a whole number") from None


def _quoted(value: str, limit: int = 80) -> str:
    """A value as an error shows it: its own quotes visible, long ones cut."""
    text = value if len(value) <= limit else value[:limit] + "..."
    return repr(text)


def _shown_secret(name: str) -> str:
    """A secret setting as an error may show it: a URL with its password masked; anything
    else might be the password itself, so it is not shown."""
    value = os.environ.get(name, "")
    if "://" in value:
        return _quoted(mask_url(value))
    return "set but not shown (it may hold a password)" if value else "set (in .dlt/secrets.toml)"


def _resolve(spec: _Spec, sections: tuple[str, ...], prefix: str | None = None) -> _Spec:
    """dlt's resolution, its errors turned into one line naming the variable to fix."""
    prefix = prefix if prefix is not None else "__".join(sections).upper() + "__"
    try:
        return resolve_configuration(spec, sections=sections)
    except ConfigValueCannotBeCoercedException as error:
        name = f"{prefix}{error.field_name.upper()}"
        wanted = _TYPE_NAMES.get(error.hint, f"a {getattr(error.hint, '__name__', error.hint)}")
        value = _quoted(mask_url(str(error.field_value)))
        raise ConfigurationError(f"{name} is {value}: set it to {wanted}") from None
    except InvalidNativeValue:
        raise
    except ConfigurationException as error:
        first = mask_url(str(error).strip().splitlines()[0] if str(error).strip() else "")
        raise ConfigurationError(
            f"the {prefix.rstrip('_')}__* settings are invalid ({first}): fix them in the "
            "environment or .dlt/config.toml"
        ) from None


_TYPE_NAMES: dict[object, str] = {
    int: "a whole number",
    float: "a number",
    bool: "true or false",
}
