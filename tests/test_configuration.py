"""Bad settings: one `error:` line naming the variable and the fix, exit 2, no traceback, and
no secret in anything printed. Each is refused before any message or row is touched."""

from __future__ import annotations

from pathlib import Path

import pytest

from loader.settings import mask_url
from tests.conftest import Pipeline, free_port

SECRET = "s3cr3t-pw"

# (variable, bad value): each must be refused by name
BAD_SETTINGS = [
    ("LOADER__RECEIVERS", "abc"),
    ("LOADER__RECEIVERS", "0"),
    ("LOADER__RECEIVERS", "100000"),
    ("LOADER__CHUNK_SIZE", "0"),
    ("LOADER__CHUNK_BYTES", "-5"),
    ("LOADER__CHUNK_SECONDS", "nan"),
    ("LOADER__LOAD_ATTEMPTS", "0"),
    ("LOADER__RETRY_BACKOFF_SECONDS", "-1"),
    ("LOADER__KEEP_LOADED_PACKAGES", "many"),
    ("LOADER__PIPELINE_NAME", "../elsewhere"),
    ("SOURCES__SQS__WAIT_TIME_SECONDS", "x"),
    ("SOURCES__SQS__WAIT_TIME_SECONDS", "21"),
    ("SOURCES__SQS__WAIT_TIME_SECONDS", "-1"),
    ("SOURCES__SQS__VISIBILITY_TIMEOUT_SECONDS", "43201"),
    ("SOURCES__SQS__REGION_NAME", "us east 1"),
    ("SOURCES__SQS__PROTOCOL", "xml"),
    ("SOURCES__SQS__QUEUE_URL", "not a url"),
    ("SOURCES__SQS__QUEUE_URL", "http://[::1"),
    ("SOURCES__SQS__QUEUE_URL", f"http://user:{SECRET}@localhost:notaport/0/queue"),
    ("SOURCES__SQS__QUEUE_URL", f"http://user:{SECRET}@localhost:4566"),
    ("SOURCES__SQS__ENDPOINT_URL", "localhost:4566"),
    ("AWS_MAX_ATTEMPTS", "x"),
    ("AWS_MAX_ATTEMPTS", "0"),
    ("AWS_RETRY_MODE", "sometimes"),
    ("PGPORT", "x"),
    ("PGPORT", "70000"),
    ("PGSSLMODE", "maybe"),
    ("DESTINATION__POSTGRES__CREDENTIALS", f"postgresql://u:{SECRET}@host:notaport/db"),
    ("DESTINATION__POSTGRES__CREDENTIALS", SECRET),  # a password where the URL belongs
    ("DESTINATION__POSTGRES__CREDENTIALS__PORT", "x"),
    ("LOADER__DATASET_NAME", 'raw"; drop table x; --'),
    ("LOADER__DATASET_NAME", "raw'"),
    ("LOADER__DATASET_NAME", "Raw"),
    ("DBT_SCHEMA", 'public"'),
    ("DBT_SCHEMA", "public'"),
    ("TRANSFORM__FULL_CHECK", "maybe"),
]


def one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr
    return errors[0]


@pytest.mark.parametrize(("variable", "value"), BAD_SETTINGS)
def test_bad_setting_is_one_line_naming_it(pipeline: Pipeline, variable: str, value: str) -> None:
    result = pipeline.logins("run", check=False, timeout=60, **{variable: value})
    assert result.returncode == 2, result.stderr
    line = one_error_line(result.stderr)
    assert variable in line, line
    assert SECRET not in result.stdout + result.stderr
    # refused before any work: nothing was installed in the database
    assert pipeline.query("select 1 from pg_namespace where nspname = 'pii'") == []


@pytest.mark.parametrize("variable", ["LOADER__DATASET_NAME", "DBT_SCHEMA"])
def test_schema_names_say_what_is_allowed(pipeline: Pipeline, variable: str) -> None:
    result = pipeline.logins("run", check=False, timeout=60, **{variable: 'x"y'})
    assert "plain identifier" in one_error_line(result.stderr)


def test_pipelines_dir_under_a_file(pipeline: Pipeline, tmp_path: Path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    result = pipeline.logins(
        "load", check=False, timeout=60, LOADER__PIPELINES_DIR=str(a_file / "dlt")
    )
    assert result.returncode == 2
    line = one_error_line(result.stderr)
    assert "LOADER__PIPELINES_DIR" in line
    assert "writable" in line


def test_unwritable_pipelines_dir(pipeline: Pipeline, tmp_path: Path) -> None:
    # /sys refuses new folders even to root, for whom permission bits would not
    result = pipeline.logins("load", check=False, timeout=60, LOADER__PIPELINES_DIR="/sys/logins")
    assert result.returncode == 2
    assert "LOADER__PIPELINES_DIR" in one_error_line(result.stderr)


def test_password_in_an_unreachable_queue_url_is_masked(pipeline: Pipeline) -> None:
    dead = f"http://loader:{SECRET}@127.0.0.1:{free_port()}/000000000000/login-queue"
    result = pipeline.logins("load", check=False, timeout=60, SOURCES__SQS__QUEUE_URL=dead)
    assert result.returncode == 3
    line = one_error_line(result.stderr)
    assert "cannot reach the SQS endpoint http://loader:***@127.0.0.1" in line
    assert SECRET not in result.stdout + result.stderr


@pytest.mark.parametrize(
    "arguments",
    [
        ("load", "--max-messages", "abc"),
        ("load", "--max-messages", "0"),
        ("run", "--max-messages", "1.5"),
        ("seed", "--count", "x"),
        ("seed", "--seed", "x"),
        ("seed", "--malformed-share", "2"),
        ("load", "--no-such-option"),
        ("no-such-command",),
    ],
)
def test_bad_argument_is_one_line(pipeline: Pipeline, arguments: tuple[str, ...]) -> None:
    result = pipeline.logins(*arguments, check=False, timeout=60)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr  # no usage text, no traceback
    one_error_line(result.stderr)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("postgresql://u:pw@host:5432/db", "postgresql://u:***@host:5432/db"),
        ("see http://a:b@h/x and https://c:d@e/", "see http://a:***@h/x and https://c:***@e/"),
        ("http://u:p@ss/w@host/q", "http://u:***@host/q"),  # unencoded @ and / in it
        ("http://host:4566/000000000000/q", "http://host:4566/000000000000/q"),
        ("http://user@host/q", "http://user@host/q"),
        ("'postgresql://u:pw@h/db'", "'postgresql://u:***@h/db'"),
    ],
)
def test_mask_url(text: str, shown: str) -> None:
    assert mask_url(text) == shown
