"""The package's layout holds: dependencies point one way (cli -> the flow's packages ->
warehouse -> names), admin and PII code load neither dlt nor pyarrow, and the benchmark uses
only the loader's public names."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "loader"

# what each part of loader/ may import from loader/ (besides itself and the base modules)
BASE = {"loader.errors", "loader.names", "loader.paths", "loader.settings", "loader.faults"}
MAY_IMPORT = {
    "warehouse": set(),
    "privacy": {"warehouse"},
    "ingest": {"warehouse"},
    "transform": {"warehouse", "ingest"},
    "devstack": {"warehouse", "ingest"},
    "db_init": {"warehouse", "ingest", "privacy", "operations"},
    "operations": {"warehouse", "ingest", "transform"},
    # the web console works through the signed-in role's connection, with the pipeline's code
    "console": {"warehouse", "privacy", "operations"},
    # the Dagster code location: an optional extra, so nothing else in loader/ imports it
    "orchestration": {"warehouse", "ingest", "transform", "operations"},
}


def loader_imports(path: Path) -> set[str]:
    """The loader modules `path` imports, wherever in it (functions too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("loader"):
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("loader"))
    return found


def part_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


@pytest.mark.parametrize("part", sorted(MAY_IMPORT))
def test_dependencies_point_one_way(part: str) -> None:
    files = [PACKAGE / f"{part}.py"] if (PACKAGE / f"{part}.py").exists() else []
    files += sorted((PACKAGE / part).rglob("*.py")) if (PACKAGE / part).is_dir() else []
    assert files, part
    allowed = MAY_IMPORT[part] | {part}
    wrong = {
        f"{path.relative_to(REPO)} imports {module}"
        for path in files
        for module in loader_imports(path)
        if module not in BASE
        and not any(module.startswith(f"{b}.") for b in BASE)
        and part_of(module) in {p for p in MAY_IMPORT} | {"cli"}
        and part_of(module) not in allowed
    }
    assert wrong == set()


def test_nothing_but_the_cli_imports_the_console() -> None:
    wrong = [
        str(path.relative_to(REPO))
        for path in PACKAGE.rglob("*.py")
        if path.relative_to(PACKAGE).parts[0] not in {"cli", "console"}
        and any(part_of(m) == "console" for m in loader_imports(path))
    ]
    assert wrong == []


def test_the_cli_loads_no_web_framework_until_the_console_runs() -> None:
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, loader.cli; loader.cli.build_parser();"
            " print(sorted({m.split('.')[0] for m in sys.modules}))",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    ).stdout
    for framework in ("starlette", "uvicorn", "jinja2"):
        assert f"'{framework}'" not in loaded


def test_nothing_but_the_cli_imports_the_cli() -> None:
    wrong = [
        str(path.relative_to(REPO))
        for path in PACKAGE.rglob("*.py")
        if "cli" not in path.relative_to(PACKAGE).parts[:1]
        and any(part_of(m) == "cli" for m in loader_imports(path))
    ]
    assert wrong == []


@pytest.mark.parametrize(
    "module",
    [
        "loader.names",
        "loader.warehouse",
        "loader.warehouse.attached_code",
        "loader.privacy.erasure",
        "loader.privacy.recovery",
        "loader.privacy.vault",
        "loader.privacy.roles",
        "loader.privacy.masking",
        "loader.privacy.keys",
        "loader.privacy.recovery_keys",
    ],
)
def test_admin_and_pii_code_load_neither_dlt_nor_pyarrow(module: str) -> None:
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sys, {module}; print(sorted({{m.split('.')[0] for m in sys.modules}}))",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    ).stdout
    assert "'dlt'" not in loaded
    assert "'pyarrow'" not in loaded


def test_nothing_imports_the_orchestration() -> None:
    wrong = [
        str(path.relative_to(REPO))
        for path in PACKAGE.rglob("*.py")
        if "orchestration" not in path.relative_to(PACKAGE).parts[:1]
        and any(part_of(m) == "orchestration" for m in loader_imports(path))
    ]
    assert wrong == []


def test_the_command_and_the_flow_never_load_dagster() -> None:
    """Dagster is an optional extra: `logins` and its packages run without it."""
    modules = [
        "loader.cli",
        "loader.cli.pipeline_commands",
        "loader.ingest.load",
        "loader.transform.dbt_build",
        "loader.operations.reporting",
        "loader.db_init",
    ]
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sys, {', '.join(modules)}; "
            "print(sorted({m.split('.')[0] for m in sys.modules}))",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    ).stdout
    assert "'loader'" in loaded
    assert "'dagster'" not in loaded
    assert "'dagster_dbt'" not in loaded


def test_the_benchmark_uses_only_public_loader_names() -> None:
    private = [
        f"{path.name}: {name}"
        for path in (REPO / "bench").glob("*.py")
        for name in loader_imports(path)
        if name.rsplit(".", 1)[-1].startswith("_")
    ]
    assert private == []
