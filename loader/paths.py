"""Where the project's files are: the checkout the package runs from."""

from __future__ import annotations

from pathlib import Path


def project_root() -> Path:
    """The checkout this package runs from (it holds dbt_project.yml), else the working dir."""
    here = Path(__file__).resolve().parent.parent
    if (here / "dbt_project.yml").exists():
        return here
    return Path.cwd()
