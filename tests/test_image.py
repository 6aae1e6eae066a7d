"""The container image and its compose service, which no engine here can build or run: the
Dockerfile lints clean, keeps CI's install steps, runs as a non-root user with `logins` as
its entrypoint and no secret in any layer, and its build-time `dbt parse` works on exactly
the files it copies; the compose service is wired to the compose's Postgres and LocalStack."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import REPO, run_venv_tool

DOCKERFILE = REPO / "Dockerfile"
SECRET_LOOKING = re.compile(r"PASS|SECRET|TOKEN|KEY|CREDENTIAL", re.IGNORECASE)


def instructions(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    joined, found = "", []
    for line in path.read_text().splitlines():
        if not joined and (not line.strip() or line.lstrip().startswith("#")):
            continue
        joined += line.rstrip("\\").strip() + " "
        if not line.endswith("\\"):
            keyword, _, rest = joined.strip().partition(" ")
            found.append((keyword.upper(), rest.strip()))
            joined = ""
    return found


def of(kind: str) -> list[str]:
    return [arguments for keyword, arguments in instructions() if keyword == kind]


def pip_installs(text: str) -> list[str]:
    """Each `python -m pip install ...` command in `text`, its venv path and -e dropped."""
    commands = re.findall(r"python -m pip install [^&\n]*", text)
    return [" ".join(word for word in c.split() if word != "-e").strip() for c in commands]


def extras(command: str) -> set[str]:
    match = re.search(r"\.\[([a-z,]+)\]", command)
    assert match, command
    return set(match.group(1).split(","))


def test_the_dockerfile_lints_clean() -> None:
    linted = run_venv_tool("hadolint", "Dockerfile")
    assert linted.returncode == 0, linted.stdout + linted.stderr


def test_it_builds_in_two_stages_from_slim_python_3_11() -> None:
    assert of("FROM") == ["python:3.11-slim AS builder", "python:3.11-slim AS runtime"]
    assert any(arguments.startswith("--from=builder /opt/venv") for arguments in of("COPY"))


def test_it_runs_logins_as_a_non_root_user() -> None:
    (user,) = of("USER")
    uid = user.split(":")[0]
    assert uid.isdigit()
    assert int(uid) != 0
    assert f"--uid {uid}" in " ".join(of("RUN"))
    # the user comes after every RUN of the runtime stage: nothing it runs is root's
    assert instructions()[-3:] == [("USER", user), ("ENTRYPOINT", '["logins"]'), ("CMD", '["run"]')]


def test_no_secret_is_built_into_a_layer() -> None:
    assert of("ARG") == []
    names = [
        assignment.split("=")[0] for arguments in of("ENV") for assignment in shlex.split(arguments)
    ]
    assert names
    assert [name for name in names if SECRET_LOOKING.search(name)] == []
    assert "PGPASSWORD" not in DOCKERFILE.read_text()
    # nothing the image copies is a local secret or state: the context is an allow-list
    ignored = (REPO / ".dockerignore").read_text().splitlines()
    assert ignored[ignored.index("*") - 1].startswith("#")
    allowed = [line[1:] for line in ignored if line.startswith("!")]
    assert [line for line in allowed if line.startswith((".secrets", ".venv", ".local"))] == []
    copied = {
        word
        for arguments in of("COPY")
        if "--from" not in arguments
        for word in arguments.split()[:-1]
    }
    assert copied <= {line.rstrip("/") for line in allowed}, copied


def test_it_installs_as_ci_does_with_the_runtime_extras() -> None:
    makefile = pip_installs((REPO / "Makefile").read_text())
    image = pip_installs("\n".join(of("RUN")))
    assert makefile[0] == image[0] == "python -m pip install --quiet --upgrade pip"
    ci_all = extras(makefile[-1])
    (installed,) = image[1:]
    # the same command and options, only the extras differ
    without_extras = re.compile(r"'\.\[[a-z,]+\]'")
    assert without_extras.sub("", installed) == without_extras.sub("", makefile[-1])
    # the runtime extras CI installs, without its test tools and local emulator
    assert "orchestrate" in extras(installed)
    assert extras(installed) <= ci_all - {"dev", "local"}


def test_its_dbt_parse_works_on_the_files_it_copies(tmp_path: Path) -> None:
    """The build's `dbt parse`, run on a copy of just what the runtime stage copies, with no
    Postgres setting at all: the manifest the Dagster code location reads appears."""
    for arguments in of("COPY"):
        if "--from" in arguments:
            continue
        *sources, target = arguments.split()
        for source in sources:
            # COPY SRC... DIR/ puts each source in DIR; COPY SRC DEST names the copy DEST
            into = tmp_path / target.removeprefix("./")
            destination = into / Path(source).name if target.endswith("/") else into
            destination.parent.mkdir(parents=True, exist_ok=True)
            if (REPO / source).is_dir():
                shutil.copytree(REPO / source, destination)
            else:
                shutil.copy(REPO / source, destination)
    (parse,) = [a for a in of("RUN") if a.startswith("dbt parse")]
    command = shlex.split(parse.split("&&")[0])
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("PG", "DBT_", "DESTINATION__"))
    }
    environment["PATH"] = f"{Path(sys.executable).parent}:{environment.get('PATH', '')}"
    parsed = subprocess.run(
        command, cwd=tmp_path, env=environment, capture_output=True, text=True, check=False
    )
    assert parsed.returncode == 0, parsed.stdout[-3000:] + parsed.stderr[-3000:]
    manifest = tmp_path / "target" / "dagster" / "manifest.json"
    assert manifest.exists()
    assert '"model.user_logins.user_logins"' in manifest.read_text()


def compose() -> dict[str, Any]:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def test_the_compose_loader_runs_the_image_beside_postgres_and_localstack() -> None:
    services = compose()["services"]
    setup, loader = services["loader-setup"], services["loader"]
    assert setup["build"] == "."
    assert loader["image"] == setup["image"]
    assert setup["command"] == ["db", "init", "--generate-key"]
    assert loader["command"] == ["run"]
    assert loader["depends_on"] == {"loader-setup": {"condition": "service_completed_successfully"}}
    assert setup["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "localstack": {"condition": "service_healthy"},
    }
    environment = loader["environment"]
    assert environment == setup["environment"]
    # Postgres: the compose's service, with its password variable
    assert environment["PGHOST"] == "postgres"
    assert environment["PGPASSWORD"] == services["postgres"]["environment"]["POSTGRES_PASSWORD"]
    # SQS: the queue LocalStack's init script creates, on its service's port
    script = (REPO / "docker" / "localstack" / "create-login-queue.sh").read_text()
    queue_name = re.search(r"--queue-name (\S+)", script).group(1)
    assert environment["SOURCES__SQS__QUEUE_URL"] == (
        f"http://localstack:4566/000000000000/{queue_name}"
    )
    assert "4566:4566" in services["localstack"]["ports"][0]
    # the key and dlt's pending packages live in the loader's volume, which the user owns
    assert environment["PII__HMAC_KEY_FILE"].startswith("/var/lib/logins/")
    assert loader["volumes"] == ["loader-state:/var/lib/logins"]
    assert "loader-state" in compose()["volumes"]
    assert "chown -R logins:logins target logs /var/lib/logins" in " ".join(of("RUN"))
    # `docker compose up` alone still starts just the stack the README describes
    assert setup["profiles"] == loader["profiles"] == ["loader"]


def test_the_keda_example_scales_the_image_on_the_queue() -> None:
    documents = list(yaml.safe_load_all((REPO / "deploy" / "keda-scaledjob.yaml").read_text()))
    by_kind = {document["kind"]: document for document in documents}
    assert set(by_kind) == {"TriggerAuthentication", "ScaledJob"}
    assert all(document["apiVersion"] == "keda.sh/v1alpha1" for document in documents)
    authentication, job = by_kind["TriggerAuthentication"], by_kind["ScaledJob"]
    assert authentication["spec"] == {"podIdentity": {"provider": "aws"}}
    (trigger,) = job["spec"]["triggers"]
    assert trigger["type"] == "aws-sqs-queue"
    assert trigger["authenticationRef"]["name"] == authentication["metadata"]["name"]
    metadata = trigger["metadata"]
    assert set(metadata) >= {"queueURL", "queueLength", "awsRegion"}
    assert all(isinstance(value, str) for value in metadata.values())  # KEDA reads strings
    assert int(metadata["queueLength"]) > 0
    pod = job["spec"]["jobTargetRef"]["template"]["spec"]
    (container,) = pod["containers"]
    environment = {item["name"]: item for item in container["env"]}
    # the job runs the image's entrypoint on the queue the scaler watches, as the image's user
    assert container["args"] == ["load"]
    assert environment["SOURCES__SQS__QUEUE_URL"]["value"] == metadata["queueURL"]
    assert metadata["queueURL"].split(".")[1] == metadata["awsRegion"]
    assert pod["securityContext"]["runAsUser"] == int(of("USER")[0].split(":")[0])
    assert pod["restartPolicy"] == "Never"
    # no secret written into the manifest: the password comes from a Secret
    assert "value" not in environment["PGPASSWORD"]
    assert "secretKeyRef" in environment["PGPASSWORD"]["valueFrom"]
    assert [
        n for n, item in environment.items() if SECRET_LOOKING.search(n) and "value" in item
    ] == []
