"""The project's own checks: ruff, sqlfluff (dbt templater), the CI workflow's schema."""

from __future__ import annotations

from tests.conftest import REPO, run_venv_tool


def test_ruff_is_clean() -> None:
    result = run_venv_tool("ruff", "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_sqlfluff_is_clean() -> None:
    result = run_venv_tool("sqlfluff", "lint", "dbt_project")
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]


def test_github_workflow_matches_its_schema() -> None:
    workflows = sorted(str(p) for p in (REPO / ".github" / "workflows").glob("*.yml"))
    assert workflows
    result = run_venv_tool(
        "check-jsonschema", "--builtin-schema", "vendor.github-workflows", *workflows
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_files_match_their_schema() -> None:
    compose_files = sorted(str(p) for p in REPO.glob("docker-compose*.yml"))
    assert len(compose_files) == 2  # the default stack and the exercise's images
    result = run_venv_tool(
        "check-jsonschema", "--builtin-schema", "vendor.compose-spec", *compose_files
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _dbt_tests(*selection: str) -> set[str]:
    result = run_venv_tool(
        "dbt", "ls", "--resource-type", "test", "--resource-type", "unit_test", "--output",
        "name", "--quiet", "--project-dir", str(REPO), "--profiles-dir", str(REPO), *selection,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    return set(result.stdout.split())


def test_a_plain_build_runs_only_checks_that_grow_with_new_data() -> None:
    """selectors.yml: whole-table checks and unit tests are the nightly full check."""
    per_build = _dbt_tests()
    full = _dbt_tests("--selector", "full_check")
    whole_table = {
        "assert_every_message_lands_exactly_once",
        "unique_user_logins_message_id",
        "sha256_hex_user_logins_masked_ip",
        "sha256_hex_user_logins_masked_device_id",
    }
    assert whole_table <= full
    assert not whole_table & per_build
    assert "unique_stg_sqs__login_event_rejects_message_id" in per_build
    assert {"each_bad_message_gets_its_reason", "keeps_last_delivery_ignores_uncommitted"} <= full
    assert not {name for name in per_build if name.startswith(("each_", "keeps_", "app_"))}


def reject_codes() -> list[str]:
    """The one list: dbt_project.yml's `reject_codes`, in the order staging checks them."""
    import yaml

    return list(yaml.safe_load((REPO / "dbt_project.yml").read_text())["vars"]["reject_codes"])


def test_the_docs_list_the_reject_codes_in_order() -> None:
    import re

    text = (REPO / "docs" / "data.md").read_text()
    table = text[text.index("| `reject_code` | meaning |") :].split("\n\n", 1)[0]
    documented = re.findall(r"^\| `(\w+)` \|", table, re.M)
    assert documented[1:] == reject_codes()  # the first row is the table's heading


def test_the_hostile_corpus_expects_only_listed_codes() -> None:
    from tests.test_hostile_input import CORPUS

    expected = {code for _, code in CORPUS if code is not None}
    assert expected <= set(reject_codes())
    # the corpus reaches every code a body alone can earn
    assert set(reject_codes()) - expected <= {"erased", "unstorable_body", "missing_sent_timestamp"}
