"""`logins up` / `logins down`: a local stack without Docker.

Where nothing answers on the configured Postgres or SQS address (and that address is this
machine), start one: a private Postgres cluster from the machine's PostgreSQL binaries in
`.local/postgres` (git-ignored), and moto's SQS server as a local process. `down` stops only
what `up` started.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from dlt.destinations.impl.postgres.configuration import PostgresCredentials
from psycopg2 import sql

from loader import warehouse
from loader.devstack.ports import answers
from loader.devstack.sqs_emulator import EMULATOR_ACCOUNT_ID
from loader.errors import ConfigurationError, PipelineError, PostgresUnavailable
from loader.ingest.sqs import SqsQueue
from loader.paths import project_root
from loader.settings import SqsSettings, mask_url, stack_settings

LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}
START_TIMEOUT_SECONDS = 30


def state_dir() -> Path:
    path = Path(stack_settings().state_dir)
    return path if path.is_absolute() else project_root() / path


# -- Postgres ---------------------------------------------------------------------------------


def ensure_postgres(credentials: PostgresCredentials) -> str:
    """Returns how Postgres was made available: 'running' or 'started'."""
    host, port = str(credentials.host), int(credentials.port)
    elsewhere = PostgresUnavailable(
        f"nothing answers at {host}:{port} and it is not this machine: start that "
        "Postgres or point PGHOST / PGPORT at one"
    )
    how = _running_or_started(host, port, lambda: _start_cluster(credentials), elsewhere)
    _ensure_database(credentials)
    return how


def _running_or_started(
    host: str, port: int, start: Callable[[], None], elsewhere: PipelineError
) -> str:
    """'running' when something answers on host:port; else, on this machine, `start` it
    ('started'); elsewhere, `elsewhere` is raised."""
    if answers(host, port):
        return "running"
    if host not in LOCAL_HOSTS:
        raise elsewhere
    start()
    return "started"


def _ensure_database(credentials: PostgresCredentials) -> None:
    """Create the configured database if the server lacks it."""
    try:
        warehouse.check(credentials)
        return
    except PostgresUnavailable as error:
        if "does not exist" not in str(error):
            raise
    with warehouse.connect(credentials, database="postgres") as conn, conn.cursor() as cursor:
        cursor.execute(
            sql.SQL("create database {}").format(sql.Identifier(str(credentials.database)))
        )


def _cluster_dir() -> Path:
    return state_dir() / "postgres"


def _pg_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=_version_key)
    if not candidates:
        raise ConfigurationError(
            f"{name} not found: install PostgreSQL's server binaries, or run a Postgres yourself "
            "(docker compose up -d, or set PGHOST / PGPORT)"
        )
    return candidates[-1]


def _version_key(path: str) -> int:
    part = Path(path).parts[-3]
    return int(part) if part.isdigit() else 0


def _as_postgres_user() -> list[str]:
    """initdb and postgres refuse to run as root: run them as the `postgres` OS user."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError as error:
        raise ConfigurationError(
            "running as root and there is no `postgres` OS user to run a private cluster as"
        ) from error
    return ["runuser", "-u", "postgres", "--"]


def _start_cluster(credentials: PostgresCredentials) -> None:
    root = _cluster_dir()
    data = root / "data"
    sockets = root / "run"
    as_postgres = _as_postgres_user()
    for folder in (root, sockets):
        folder.mkdir(parents=True, exist_ok=True)
        if as_postgres:
            shutil.chown(folder, "postgres", "postgres")
    if not (data / "PG_VERSION").exists():
        with tempfile.NamedTemporaryFile("w", dir=root, delete=False) as pwfile:
            pwfile.write(str(credentials.password or "postgres"))
        if as_postgres:
            shutil.chown(pwfile.name, "postgres", "postgres")
        try:
            _run(
                [
                    *as_postgres,
                    _pg_bin("initdb"),
                    "-D",
                    str(data),
                    "-U",
                    str(credentials.username),
                    f"--pwfile={pwfile.name}",
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    "-E",
                    "UTF8",
                    "--no-locale",
                ],
                "initdb",
            )
        finally:
            os.unlink(pwfile.name)
    listen = "localhost" if credentials.host == "localhost" else str(credentials.host)
    _run(
        [
            *as_postgres,
            _pg_bin("pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(root / "postgres.log"),
            "-w",
            "-t",
            str(START_TIMEOUT_SECONDS),
            "-o",
            f"-p {credentials.port} -c listen_addresses={listen} -k {sockets}",
            "start",
        ],
        "pg_ctl start",
    )
    (state_dir() / "postgres.started").write_text(str(data))


def stop_postgres() -> bool:
    marker = state_dir() / "postgres.started"
    if not marker.exists():
        return False
    data = marker.read_text().strip()
    if (Path(data) / "postmaster.pid").exists():
        _run(
            [*_as_postgres_user(), _pg_bin("pg_ctl"), "-D", data, "-m", "fast", "-w", "stop"],
            "pg_ctl stop",
        )
    marker.unlink()
    return True


# -- SQS --------------------------------------------------------------------------------------


def ensure_sqs(settings: SqsSettings) -> str:
    """Returns 'running' or 'started'; creates the queue on a local endpoint."""
    endpoint = settings.resolved_endpoint_url
    if endpoint is None:  # real AWS: `up` only checks the queue is there
        SqsQueue(settings).approximate_counts()
        return "running"
    parts = urlsplit(endpoint)
    host, port = parts.hostname or "localhost", parts.port or 80
    elsewhere = ConfigurationError(
        f"nothing answers at {mask_url(endpoint)} and it is not this machine: start that "
        "SQS endpoint or set SOURCES__SQS__QUEUE_URL"
    )
    how = _running_or_started(host, port, lambda: _start_emulator(host, port), elsewhere)
    SqsQueue(settings).create()
    return how


def _start_emulator(host: str, port: int) -> None:
    try:
        import moto  # noqa: F401
    except ImportError as error:
        raise ConfigurationError(
            "no SQS answers and moto is not installed: `pip install -e '.[local]'`, or run "
            "LocalStack (docker compose up -d)"
        ) from error
    state_dir().mkdir(parents=True, exist_ok=True)
    log = (state_dir() / "sqs-emulator.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "loader.devstack.sqs_emulator", "--host", host, "--port", str(port)],
        env={**os.environ, "MOTO_ACCOUNT_ID": EMULATOR_ACCOUNT_ID},
        stdout=log,
        stderr=log,
        start_new_session=True,  # outlives this command; `logins down` stops it
    )
    (state_dir() / "sqs-emulator.pid").write_text(str(process.pid))
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not answers(host, port):
        if process.poll() is not None or time.monotonic() > deadline:
            raise ConfigurationError(
                f"the SQS emulator did not start on {host}:{port}; see {log.name}"
            )
        time.sleep(0.2)


def stop_sqs() -> bool:
    pid_file = state_dir() / "sqs-emulator.pid"
    if not pid_file.exists():
        return False
    pid = int(pid_file.read_text())
    if _is_emulator(pid):
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while _is_emulator(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
    pid_file.unlink()
    return True


def _is_emulator(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    # loader.sqs_emulator: one an earlier version of `logins up` started
    return b"loader.devstack.sqs_emulator" in cmdline or b"loader.sqs_emulator" in cmdline


# -- helpers ----------------------------------------------------------------------------------


def _run(command: list[str], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise ConfigurationError(f"{what} failed: {detail[-1] if detail else result.returncode}")
