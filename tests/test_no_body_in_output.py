"""No message body ever reaches the loader's output: not dlt's log, not Postgres' error
detail (which quotes the failing row), not the retries, not the working folder."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Pipeline
from tests.test_hostile_input import login

MARKER = "MARKER-8d1f6b2e-plaintext"


def files_holding(folder: Path, text: str) -> list[Path]:
    return [
        path for path in folder.rglob("*") if path.is_file() and text.encode() in path.read_bytes()
    ]


def test_a_refused_copy_prints_no_body(pipeline: Pipeline) -> None:
    pipeline.queue.send([login()])
    pipeline.logins("load")  # creates raw.login_messages
    # Postgres refuses the row and quotes it: "DETAIL: Failing row contains (...)"
    pipeline.query(
        "alter table raw.login_messages add constraint no_marker"
        f" check (body not like '%{MARKER}%')"
    )
    pipeline.queue.send([login(user_id=MARKER), login()])

    result = pipeline.logins(
        "load",
        check=False,
        LOADER__LOAD_ATTEMPTS="2",
        LOADER__RETRY_BACKOFF_SECONDS="0",
        RUNTIME__LOG_LEVEL="INFO",  # the most dlt says: none of it may quote a body
    )

    assert result.returncode == 5, result.stderr
    assert "violates check constraint" in result.stderr  # the reason is still given
    assert MARKER not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert '\n  File "' not in result.stderr
    # only the package to finish next run holds it (data, as SQS does), no error record
    assert {path.parent.name for path in files_holding(pipeline.workdir / "dlt", MARKER)} == {
        "new_jobs"
    }
    assert pipeline.queue.counts() == {"visible": 2, "in_flight": 0}
