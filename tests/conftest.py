"""Real services for the tests: the machine's Postgres, and an SQS emulator over HTTP.

Every test gets its own database and its own queue, so nothing touches a developer's data.
The loader and dbt run as the user runs them: the `logins` command in a subprocess.
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg2
import pytest

from loader.devstack.ports import free_port, wait_until_answers
from loader.devstack.sqs_emulator import emulator_client

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO.parent / "shared" / "data" / "fetch_login_queue_sample.jsonl"
# A fixed key, so tests can compute the expected masks independently.
TEST_HMAC_KEY = bytes(range(32)).hex()

PG = {
    "host": os.environ.get("TEST_PGHOST", "127.0.0.1"),
    "port": int(os.environ.get("TEST_PGPORT", "5432")),
    "user": os.environ.get("TEST_PGUSER", "postgres"),
    "password": os.environ.get("TEST_PGPASSWORD", "postgres"),
}


def wait_for_port(host: str, port: int, timeout: float = 30) -> None:
    wait_until_answers(host, port, timeout)


@pytest.fixture(scope="session")
def sqs_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's SQS server (serialized: loader/sqs_emulator.py), a process spoken to over HTTP."""
    port = free_port()
    log = (tmp_path_factory.mktemp("moto") / "moto.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "loader.devstack.sqs_emulator", "--port", str(port)],
        env={**os.environ, "MOTO_ACCOUNT_ID": "000000000000"},
        stdout=log,
        stderr=log,
    )
    try:
        wait_for_port("127.0.0.1", port)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


def sqs_client(endpoint: str) -> Any:
    return emulator_client(endpoint)


@dataclass
class Queue:
    url: str
    client: Any

    def counts(self) -> dict[str, int]:
        attributes = self.client.get_queue_attributes(
            QueueUrl=self.url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return {
            "visible": int(attributes["ApproximateNumberOfMessages"]),
            "in_flight": int(attributes["ApproximateNumberOfMessagesNotVisible"]),
        }

    def send(self, bodies: list[str]) -> None:
        for start in range(0, len(bodies), 10):
            entries = [
                {"Id": str(n), "MessageBody": body}
                for n, body in enumerate(bodies[start : start + 10])
            ]
            response = self.client.send_message_batch(QueueUrl=self.url, Entries=entries)
            assert not response.get("Failed"), response["Failed"]


class QuietHandler(BaseHTTPRequestHandler):
    """A test server's request handler: answers in one call, logs nothing."""

    def answer(self, status: int, headers: list[tuple[str, str]], payload: bytes) -> None:
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in {"content-length", "connection", "transfer-encoding"}:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


def interruptible() -> None:
    """For a child that the test interrupts: Ctrl-C acts on it even where the tests were
    started in the background, whose shell makes children ignore SIGINT (as `nohup make test &`
    does), since an ignored signal stays ignored across exec."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextmanager
def http_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serves `handler` on a free local port, in threads; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class RecordingProxy:
    """An HTTP proxy in front of the SQS emulator that notes each request's protocol."""

    endpoint: str
    requests: list[tuple[str, str]] = field(default_factory=list)  # (content type, operation)
    refuse: set[str] = field(default_factory=set)  # operations answered with HTTP 500

    def via(self, url: str) -> str:
        """`url` (the emulator's) with the proxy's address instead."""
        return self.endpoint + urlsplit(url).path

    def operations(self, content_type_prefix: str) -> set[str]:
        return {op for kind, op in self.requests if kind.startswith(content_type_prefix)}


@pytest.fixture
def sqs_proxy(sqs_endpoint: str) -> Iterator[RecordingProxy]:
    upstream = urlsplit(sqs_endpoint)
    proxy = RecordingProxy("")

    class Forward(QuietHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            content_type = self.headers.get("Content-Type", "")
            target = self.headers.get("X-Amz-Target", "")
            action = parse_qs(body.decode()).get("Action", [""])[0] if not target else ""
            operation = target.rpartition(".")[2] or action
            proxy.requests.append((content_type, operation))
            if operation in proxy.refuse:
                refusal = b'{"__type": "InternalError", "message": "refused by the test proxy"}'
                self.answer(500, [("Content-Type", "application/x-amz-json-1.0")], refusal)
                return
            conn = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=60)
            try:
                conn.request("POST", self.path, body, dict(self.headers.items()))
                upstream_answer = conn.getresponse()
                payload = upstream_answer.read()
            finally:
                conn.close()
            self.answer(upstream_answer.status, upstream_answer.getheaders(), payload)

    with http_server(Forward) as endpoint:
        proxy.endpoint = endpoint
        yield proxy


@pytest.fixture
def queue(sqs_endpoint: str) -> Iterator[Queue]:
    client = sqs_client(sqs_endpoint)
    url = client.create_queue(QueueName=f"login-queue-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    yield Queue(url, client)
    client.delete_queue(QueueUrl=url)


def run_venv_tool(*command: str) -> subprocess.CompletedProcess[str]:
    """One of the project's own tools (dbt, ruff, ...) from this venv, in the repo folder."""
    bin_dir = Path(sys.executable).parent
    return subprocess.run(
        [str(bin_dir / command[0]), *command[1:]],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def connect(database: str, **overrides: Any) -> Any:
    conn = psycopg2.connect(dbname=database, **{**PG, **overrides})
    conn.autocommit = True
    return conn


@pytest.fixture
def database() -> Iterator[str]:
    name = f"logins_test_{uuid.uuid4().hex[:12]}"
    admin = connect("postgres")
    try:
        with admin.cursor() as cursor:
            cursor.execute(f'create database "{name}"')
        yield name
        drop_roles(name, roles_prefix_for(name))
        with admin.cursor() as cursor:
            cursor.execute(f'drop database if exists "{name}" with (force)')
    finally:
        admin.close()


def roles_prefix_for(database: str) -> str:
    """Roles are cluster-wide: each test database gets role names of its own
    (`logins up` and `logins roles apply` create them)."""
    return f"t{database.rsplit('_', 1)[-1]}_"


def drop_roles(database: str, prefix: str) -> None:
    admin = connect(database)
    try:
        with admin.cursor() as cursor:
            cursor.execute("select rolname from pg_roles where rolname like %s", (prefix + "%",))
            for (role,) in cursor.fetchall():
                cursor.execute(f'reassign owned by "{role}" to current_user')
                cursor.execute(f'drop owned by "{role}"')
                cursor.execute(f'drop role "{role}"')
    finally:
        admin.close()


def query(database: str, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    conn = connect(database)
    try:
        with conn.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall() if cursor.description else []  # [] for DDL and DML
    finally:
        conn.close()


@dataclass
class Pipeline:
    """Runs `logins` the way a user does, against this test's database and queue."""

    env: dict[str, str]
    database: str
    queue: Queue
    workdir: Path

    def logins(self, *args: str, check: bool = True, timeout: float = 600, **env: str) -> Any:
        result = subprocess.run(
            [sys.executable, "-m", "loader.cli", *args],
            env={**self.env, **env},
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"logins {' '.join(args)} exited {result.returncode}\n"
                f"--- stdout\n{result.stdout[-5000:]}\n--- stderr\n{result.stderr[-5000:]}"
            )
        return result

    def pii_with_key(
        self,
        command: str,
        key: Path,
        *args: str,
        passphrase: str,
        check: bool = True,
        **env: str,
    ) -> Any:
        """`logins pii COMMAND ARGS --private-key KEY` (keygen, recover, remask), the key's
        passphrase in the environment."""
        return self.logins(
            "pii",
            command,
            *args,
            "--private-key",
            str(key),
            check=check,
            PII__RECOVERY_PASSPHRASE=passphrase,
            **env,
        )

    def load_past_first_chunk(self, **env: str) -> subprocess.Popen[str]:
        """`logins load` started, returned once it reports its first chunk loaded."""
        loader = subprocess.Popen(
            [sys.executable, "-m", "loader.cli", "load"],
            env={**self.env, **env},
            cwd=self.workdir,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=interruptible,
        )
        assert loader.stderr is not None
        for line in loader.stderr:
            if line.startswith("[load] chunk 1:"):
                break
        return loader

    def query(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        return query(self.database, sql, params)


def pipeline_env(database: str, queue_url: str, workdir: Path) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PG", "AWS_", "DBT_"))},
        "PGHOST": PG["host"],
        "PGPORT": str(PG["port"]),
        "PGUSER": PG["user"],
        "PGPASSWORD": PG["password"],
        "PGDATABASE": database,
        "SOURCES__SQS__QUEUE_URL": queue_url,
        "SOURCES__SQS__WAIT_TIME_SECONDS": "1",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_MAX_ATTEMPTS": "2",
        "LOADER__PIPELINES_DIR": str(workdir / "dlt"),
        "PII__HMAC_KEY": TEST_HMAC_KEY,
        "ROLES__PREFIX": roles_prefix_for(database),
        "STACK__STATE_DIR": str(workdir / "stack"),
        "DBT_TARGET_PATH": str(workdir / "target"),
        "DBT_LOG_PATH": str(workdir / "logs"),
        # every build in the tests also runs the whole-table checks (conservation etc.)
        "TRANSFORM__FULL_CHECK": "true",
    }


@pytest.fixture
def pipeline(database: str, queue: Queue, tmp_path: Path) -> Pipeline:
    return Pipeline(pipeline_env(database, queue.url, tmp_path), database, queue, tmp_path)


@pytest.fixture
def sample_lines() -> list[str]:
    if not SAMPLE.exists():
        pytest.fail(
            f"the exercise's sample is missing: expected {SAMPLE} (../shared beside the repo)"
        )
    return SAMPLE.read_text().splitlines()


@dataclass
class PrivatePostgres:
    """A cluster of the tests' own, which they may stop and start."""

    port: int
    env: dict[str, str]

    def logins(self, *args: str) -> None:
        result = subprocess.run(
            [sys.executable, "-m", "loader.cli", *args],
            env=self.env,
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stderr

    def stop(self) -> None:
        self.logins("down")

    def start(self) -> None:
        self.logins("up")

    def connect(self, database: str = "postgres") -> Any:
        return connect(database, host="127.0.0.1", port=self.port, password="postgres")

    def create_database(self) -> str:
        name = f"logins_test_{uuid.uuid4().hex[:12]}"
        conn = self.connect()
        with conn.cursor() as cursor:
            cursor.execute(f'create database "{name}"')
        conn.close()
        return name


@pytest.fixture(scope="session")
def private_postgres(sqs_endpoint: str) -> Iterator[PrivatePostgres]:
    """A password-checking cluster started the way users get one: `logins up` (then `down`)."""
    state = Path(tempfile.mkdtemp(prefix="logins-stack-"))
    state.chmod(0o755)  # the postgres OS user runs the cluster inside it
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PG", "AWS_"))},
        "PGHOST": "127.0.0.1",
        "PGPORT": str(port),
        "PGPASSWORD": "postgres",
        "PGDATABASE": "postgres",
        "SOURCES__SQS__QUEUE_URL": f"{sqs_endpoint}/000000000000/login-queue",
        "PII__HMAC_KEY": TEST_HMAC_KEY,
        "STACK__STATE_DIR": str(state),
    }
    cluster = PrivatePostgres(port, env)
    cluster.start()
    try:
        yield cluster
    finally:
        subprocess.run([sys.executable, "-m", "loader.cli", "down"], env=env, check=True)
        shutil.rmtree(state, ignore_errors=True)


@pytest.fixture
def role_prefix(database: str) -> str:
    """This test's role-name prefix (the `database` fixture drops its roles)."""
    return roles_prefix_for(database)
