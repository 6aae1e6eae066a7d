"""No secret in the repo, in compiled SQL, in dbt's target/ or in its logs."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import REPO, TEST_HMAC_KEY, Pipeline

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
