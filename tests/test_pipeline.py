"""The pipeline end to end on the exercise's real 100 messages, against real services."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest

from tests.conftest import SAMPLE, TEST_HMAC_KEY, Pipeline, RecordingProxy
from tests.expected import USER_LOGINS_COLUMNS, expected_row, mask, valid_records

# What botocore sends in each protocol: the proxy in front of the emulator sees it on the wire.
WIRE_CONTENT_TYPES = {
    "json": "application/x-amz-json-1.0",
    "query": "application/x-www-form-urlencoded",
}


@pytest.mark.parametrize("protocol", ["json", "query"])
def test_real_sample_lands_masked_and_complete(
    pipeline: Pipeline, sample_lines: list[str], sqs_proxy: RecordingProxy, protocol: str
) -> None:
    via_proxy = {"SOURCES__SQS__QUEUE_URL": sqs_proxy.via(pipeline.queue.url)}
    before = datetime.now(UTC)
    # the option and the setting both choose the protocol
    seeded = pipeline.logins("seed", "--file", str(SAMPLE), "--sqs-protocol", protocol, **via_proxy)
    assert "sent 100 messages" in seeded.stdout

    run = pipeline.logins("run", **via_proxy, SOURCES__SQS__PROTOCOL=protocol)
    assert "rows in user_logins  99" in run.stdout, run.stdout
    # every request was in the protocol asked for
    kinds = {kind.split(";")[0] for kind, _ in sqs_proxy.requests}
    assert kinds == {WIRE_CONTENT_TYPES[protocol]}
    assert {"SendMessageBatch", "GetQueueAttributes", "ReceiveMessage", "DeleteMessageBatch"} <= (
        sqs_proxy.operations(WIRE_CONTENT_TYPES[protocol])
    )

    rows = pipeline.query(f"select {USER_LOGINS_COLUMNS} from public.user_logins")
    assert len(rows) == 99
    assert sorted(rows, key=str) == sorted(
        (expected_row(record) for record in valid_records(sample_lines)), key=str
    )
    assert pipeline.query("select count(*) from public.user_logins where locale is null") == [(29,)]

    rejects = pipeline.query(
        "select reject_code, reject_reason, body from staging.stg_sqs__login_event_rejects"
    )
    assert rejects == [
        (
            "missing_field",
            "missing_field: user_id",
            '{"foo": "oops_wrong_msg_type", "bar": "123"}',
        )
    ]

    # create_date is the UTC date SQS stamped on the message, not the processing date
    dates = pipeline.query(
        "select distinct create_date, (sent_at at time zone 'UTC')::date from public.user_logins"
    )
    assert all(created == sent for created, sent in dates)
    sent_range = pipeline.query("select min(sent_at), max(sent_at) from public.user_logins")[0]
    assert before.timestamp() - 5 <= sent_range[0].timestamp() <= sent_range[1].timestamp()

    # raw holds every body byte for byte (a row per delivery: SQS may deliver twice)
    raw = pipeline.query("select distinct on (message_id) body from raw.login_messages")
    assert sorted(body for (body,) in raw) == sorted(sample_lines)

    # every message was deleted from the queue, none is left in flight
    assert pipeline.queue.counts() == {"visible": 0, "in_flight": 0}

    # the load left planner statistics for the build that follows (not autovacuum's: its
    # own timing)
    analyzed = pipeline.query(
        "select relname from pg_stat_user_tables"
        " where schemaname = 'raw' and last_analyze is not null order by relname"
    )
    assert analyzed == [("_dlt_loads",), ("login_messages",)]


def test_masks_are_keyed_and_deterministic(pipeline: Pipeline, sample_lines: list[str]) -> None:
    first = json.loads(sample_lines[0])
    # the same IP and device sent again by another user, with the IP written another way
    twin = {**first, "user_id": "00000000-0000-4000-8000-000000000000"}
    twin["ip"] = "::ffff:" + first["ip"]
    pipeline.queue.send([sample_lines[0], json.dumps(twin)])
    pipeline.logins("run")

    masks = pipeline.query("select distinct masked_ip, masked_device_id from public.user_logins")
    assert masks == [(mask("ip", first["ip"]), mask("device_id", first["device_id"]))]
    # an unkeyed hash would let anyone find the IP by hashing all 2^32 of them
    plain = hashlib.sha256(first["ip"].encode()).hexdigest()
    assert masks[0][0] != plain
    assert TEST_HMAC_KEY not in masks[0][0]


def test_loading_twice_and_redelivery_make_no_duplicates(
    pipeline: Pipeline, sample_lines: list[str]
) -> None:
    pipeline.queue.send(sample_lines)
    # A consumer lands all 100 but "crashes" before deleting: land them with the loader's own
    # pipeline and leave them in flight with a short visibility timeout, so SQS redelivers them.
    _land_without_deleting(pipeline, visibility_timeout=5)
    assert pipeline.query("select count(*) from raw.login_messages") == [(100,)]
    deadline = time.monotonic() + 30
    while pipeline.queue.counts()["visible"] < 100:  # SQS hands them out again
        assert time.monotonic() < deadline, pipeline.queue.counts()
        time.sleep(0.5)

    pipeline.logins("run")
    pipeline.logins("run")  # the second run finds the queue empty and changes nothing

    landed, distinct = pipeline.query(
        "select count(*), count(distinct message_id) from raw.login_messages"
    )[0]
    assert distinct == 100
    assert landed >= 200  # every delivery is a row of raw
    assert pipeline.query(
        "select count(*), count(distinct message_id) from public.user_logins"
    ) == [(99, 99)]
    assert pipeline.query("select count(*) from staging.stg_sqs__login_event_rejects") == [(1,)]
    # the row kept is a redelivery (ApproximateReceiveCount 2, or more if SQS sent it twice)
    assert pipeline.query("select min(receive_count) from staging.stg_sqs__login_events") == [(2,)]
    assert pipeline.queue.counts() == {"visible": 0, "in_flight": 0}


def test_seeded_synthetic_messages_all_end_somewhere(pipeline: Pipeline) -> None:
    pipeline.logins("seed", "--count", "500", "--seed", "7", "--malformed-share", "0.05")
    pipeline.logins("run")

    logins = pipeline.query("select count(*) from public.user_logins")[0][0]
    rejects = pipeline.query("select count(*) from staging.stg_sqs__login_event_rejects")[0][0]
    assert logins + rejects == 500
    assert 5 <= rejects <= 50
    # devices and IPs repeat, and the masks let analysts count them
    duplicated = pipeline.query(
        "select count(*) from (select masked_ip from public.user_logins"
        " group by 1 having count(*) > 1) as dupes"
    )[0][0]
    assert duplicated > 0


def test_a_load_keeps_only_the_newest_finished_packages(pipeline: Pipeline) -> None:
    pipeline.logins("seed", "--count", "60", "--seed", "3")
    pipeline.logins(
        "load", LOADER__CHUNK_SIZE="20", LOADER__RECEIVERS="1", LOADER__KEEP_LOADED_PACKAGES="2"
    )

    assert pipeline.query("select count(distinct message_id) from raw.login_messages") == [(60,)]
    assert pipeline.queue.counts() == {"visible": 0, "in_flight": 0}
    loads = [
        row[0]
        for row in pipeline.query(
            "select load_id from raw._dlt_loads where schema_name = 'sqs' order by inserted_at"
        )
    ]
    assert len(loads) >= 3  # a package a chunk
    (slot,) = (pipeline.workdir / "dlt").glob("sqs_logins_*")  # the pipeline's one slot
    kept = slot / "load" / "loaded"
    assert sorted(path.name for path in kept.iterdir()) == sorted(loads[-2:])


def test_large_messages_cut_chunks_by_size(pipeline: Pipeline) -> None:
    """SQS allows 256 KB a message: a chunk is bounded by its bodies' size too, not only by
    its message count, so large messages cannot make a chunk of gigabytes."""

    def loads() -> int:
        return pipeline.query("select count(*) from raw._dlt_loads where schema_name = 'sqs'")[0][0]

    def large_bodies(first: int) -> list[str]:
        padding = "x" * 20_000  # ten to a SendMessageBatch, under its 256 KB
        return [
            json.dumps({"user_id": f"u{n}", "padding": padding}) for n in range(first, first + 30)
        ]

    pipeline.queue.send(large_bodies(0))
    pipeline.logins("load", LOADER__RECEIVERS="1")
    assert loads() == 1  # 600 KB of bodies: one chunk by the default bounds

    pipeline.queue.send(large_bodies(30))
    pipeline.logins("load", LOADER__RECEIVERS="1", LOADER__CHUNK_BYTES="50000")
    # every received batch (up to 10 messages, 200 KB) exceeds 50 KB: a chunk each
    assert loads() - 1 >= 3
    assert pipeline.query(
        "select count(distinct message_id), count(*) from raw.login_messages"
    ) == [(60, 60)]
    assert pipeline.query("select min(length(body)) from raw.login_messages")[0][0] > 20_000
    assert pipeline.queue.counts() == {"visible": 0, "in_flight": 0}


def test_db_init_brings_an_older_raw_table_up_to_date(
    pipeline: Pipeline, sample_lines: list[str]
) -> None:
    pipeline.queue.send([*sample_lines, "{not json"])
    pipeline.logins("load")
    # as a loader from before body_is_json left it
    pipeline.query("alter table raw.login_messages drop column body_is_json")
    flag = (
        "select count(*) filter (where body_is_json), count(*) filter (where not body_is_json)"
        " from raw.login_messages"
    )

    init = pipeline.logins("db", "init")
    assert "added body_is_json to raw.login_messages" in init.stdout
    assert pipeline.query(flag) == [(100, 1)]
    again = pipeline.logins("db", "init")  # idempotent
    assert "body_is_json" not in again.stdout
    pipeline.logins("run")
    assert pipeline.query("select count(*) from public.user_logins") == [(99,)]
    assert pipeline.query(
        "select reject_code, count(*) from staging.stg_sqs__login_event_rejects group by 1"
        " order by 1"
    ) == [("missing_field", 1), ("not_json", 1)]


def _land_without_deleting(pipeline: Pipeline, visibility_timeout: int) -> None:
    """Receive everything and land it in raw through the loader's dlt source, no delete."""
    code = (
        "import sys\n"
        "from datetime import UTC, datetime\n"
        "from loader.ingest.load import make_pipeline\n"
        "from loader.settings import loader_settings, postgres_credentials, sqs_settings\n"
        "from loader.ingest.batches import ReceivedBatch\n"
        "from loader.ingest.source import sqs_logins\n"
        "from loader.ingest.sqs import SqsQueue\n"
        "settings = sqs_settings()\n"
        f"settings.visibility_timeout_seconds = {visibility_timeout}\n"
        "queue = SqsQueue(settings)\n"
        "batches = []\n"
        "while messages := queue.receive():\n"
        "    batches.append(ReceivedBatch.from_messages(messages, datetime.now(UTC)))\n"
        "make_pipeline(loader_settings(), postgres_credentials()).run(\n"
        "    sqs_logins(batches), loader_file_format='csv').raise_on_failed_jobs()\n"
        "print(sum(len(b) for b in batches))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**pipeline.env, "LOADER__PIPELINES_DIR": str(pipeline.workdir / "crashed")},
        capture_output=True,
        text=True,
        check=False,
        cwd=pipeline.workdir,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "100"


EXERCISE_DDL = """
create table if not exists public.user_logins (
    user_id varchar(128),
    device_type varchar(32),
    masked_ip varchar(256),
    masked_device_id varchar(256),
    locale varchar(32),
    app_version integer,
    create_date date
)
"""


def test_loads_into_the_exercises_pre_created_table(
    pipeline: Pipeline, sample_lines: list[str]
) -> None:
    pipeline.query(EXERCISE_DDL + "; select 1")
    before = pipeline.query(
        "select column_name, data_type, character_maximum_length from information_schema.columns"
        " where table_schema = 'public' and table_name = 'user_logins' order by ordinal_position"
    )
    pipeline.queue.send(sample_lines)
    pipeline.logins("run")
    pipeline.logins("run")  # and incrementally after that

    after = pipeline.query(
        "select column_name, data_type, character_maximum_length from information_schema.columns"
        " where table_schema = 'public' and table_name = 'user_logins' order by ordinal_position"
    )
    assert after[: len(before)] == before  # the exercise's columns, unchanged, come first
    rows = pipeline.query(f"select {USER_LOGINS_COLUMNS} from public.user_logins")
    assert sorted(rows, key=str) == sorted(
        (expected_row(record) for record in valid_records(sample_lines)), key=str
    )
