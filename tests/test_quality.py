"""The project's own checks: ruff, sqlfluff (dbt templater), the CI workflow's schema."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    bin_dir = Path(sys.executable).parent
    return subprocess.run(
        [str(bin_dir / command[0]), *command[1:]],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_ruff_is_clean() -> None:
    result = _run("ruff", "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_sqlfluff_is_clean() -> None:
    result = _run("sqlfluff", "lint", "dbt_project")
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]


def test_github_workflow_matches_its_schema() -> None:
    workflows = sorted(str(p) for p in (REPO / ".github" / "workflows").glob("*.yml"))
    assert workflows
    result = _run("check-jsonschema", "--builtin-schema", "vendor.github-workflows", *workflows)
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_files_match_their_schema() -> None:
    compose_files = sorted(str(p) for p in REPO.glob("docker-compose*.yml"))
    assert len(compose_files) == 2  # the default stack and the exercise's images
    result = _run("check-jsonschema", "--builtin-schema", "vendor.compose-spec", *compose_files)
    assert result.returncode == 0, result.stdout + result.stderr
