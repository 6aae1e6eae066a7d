"""No secret in the repo, in compiled SQL, in dbt's target/ or in its logs."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.conftest import REPO, TEST_HMAC_KEY, Pipeline, PrivatePostgres, Queue, pipeline_env

PASSWORD = "Distinctive-Test-Passw0rd"  # trust auth on the test server accepts any password


def _files_containing(root: Path, needle: str) -> list[str]:
    return [
        str(path)
        for path in root.rglob("*")
        if path.is_file() and needle.encode() in path.read_bytes()
    ]


def test_key_and_password_stay_out_of_target_and_logs(
    pipeline: Pipeline, sample_lines: list[str]
) -> None:
    pipeline.queue.send(sample_lines[:10])
    result = pipeline.logins("run", PGPASSWORD=PASSWORD)
    for secret in (TEST_HMAC_KEY, PASSWORD):
        assert secret not in result.stdout + result.stderr
        for folder in ("target", "logs", "dlt"):
            assert _files_containing(pipeline.workdir / folder, secret) == []
    compiled = pipeline.workdir / "target" / "compiled"
    assert any(compiled.rglob("user_logins.sql"))  # dbt did write compiled SQL to look in


def test_no_secret_files_are_tracked() -> None:
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    assert not [name for name in tracked if name.startswith((".secrets/", ".local/"))]
    assert ".dlt/secrets.toml" not in tracked
    key_file = REPO / ".secrets" / "hmac_key"
    if key_file.exists():  # a developer's generated demo key
        key = key_file.read_text().strip()
        assert _files_containing_tracked(tracked, key) == []


def _files_containing_tracked(tracked: list[str], needle: str) -> list[str]:
    return [name for name in tracked if needle.encode() in (REPO / name).read_bytes()]


def test_no_secret_reaches_statement_text(
    private_postgres: PrivatePostgres, queue: Queue, sample_lines: list[str], tmp_path: Path
) -> None:
    """With every statement logged (what pg_stat_activity shows, too), installing the HMAC key,
    making and using the recovery key, recovering and re-masking send no secret as SQL."""
    hmac_key = "5ec7e7" * 11  # 33 bytes, distinctive
    passphrase = "Another distinctive passphrase 9"
    admin = private_postgres.connect()
    database = private_postgres.create_database()
    with admin.cursor() as cursor:
        cursor.execute("show data_directory")
        server_log = Path(cursor.fetchone()[0]).parent / "postgres.log"
    try:
        env = {
            **pipeline_env(database, queue.url, tmp_path),
            "PGPORT": str(private_postgres.port),
            "PGOPTIONS": "-c log_statement=all",
            "PII__HMAC_KEY": hmac_key,
            "PII__RECOVERY_PASSPHRASE": passphrase,
        }
        pipeline = Pipeline(env, database, queue, tmp_path)
        key_file = tmp_path / "recovery.asc"
        logged_before = server_log.stat().st_size
        pipeline.logins("db", "init")
        pipeline.logins("pii", "keygen", "--private-key", str(key_file))
        queue.send(sample_lines[:5])
        pipeline.logins("run")
        user = json.loads(sample_lines[0])["user_id"]
        pipeline.logins("pii", "recover", "--user-id", user, "--private-key", str(key_file))
        pipeline.logins("pii", "rotate")
        pipeline.logins("pii", "remask", "--private-key", str(key_file))
        with server_log.open("rb") as handle:
            handle.seek(logged_before)
            logged = handle.read().decode(errors="replace")
        assert "copy pii.hmac_keys" in logged  # statements were logged
        private_lines = [line for line in key_file.read_text().splitlines() if len(line) > 40]
        assert private_lines
        for secret in (hmac_key, passphrase, *private_lines):
            assert secret not in logged
            for folder in ("target", "logs"):
                assert _files_containing(tmp_path / folder, secret) == []
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'drop database if exists "{database}" with (force)')
        admin.close()
