"""No single message can stop a load: a message the loader cannot turn into a row as it is
(a Binary attribute, a body Postgres cannot store) lands beside its neighbours."""

from __future__ import annotations

import base64
import json

from tests.conftest import Pipeline
from tests.test_hostile_input import login

UNSTORABLE = "unstorable_body: body held characters Postgres cannot store (kept base64)"


def send_batch(pipeline: Pipeline, entries: list[dict[str, object]]) -> None:
    response = pipeline.queue.client.send_message_batch(
        QueueUrl=pipeline.queue.url,
        Entries=[{"Id": str(n), **entry} for n, entry in enumerate(entries)],
    )
    assert not response.get("Failed"), response["Failed"]


def test_a_binary_attribute_lands_with_its_batch(pipeline: Pipeline) -> None:
    entries: list[dict[str, object]] = [
        {"MessageBody": login(user_id=f"user-{n}")} for n in range(9)
    ]
    entries.insert(
        4,
        {
            "MessageBody": login(user_id="binary"),
            "MessageAttributes": {"a": {"DataType": "Binary", "BinaryValue": b"\x00\x01"}},
        },
    )
    send_batch(pipeline, entries)
    pipeline.logins("run")

    assert pipeline.query("select count(*) from raw.login_messages") == [(10,)]
    assert pipeline.query("select count(*) from public.user_logins") == [(10,)]
    (attributes,) = pipeline.query(
        "select message_attributes from raw.login_messages where message_attributes is not null"
    )[0]
    assert json.loads(attributes) == {"a": {"DataType": "Binary", "BinaryValue": "AAE="}}
    assert pipeline.queue.counts() == {"visible": 0, "in_flight": 0}


def test_a_body_postgres_cannot_store_lands_as_a_reject(pipeline: Pipeline) -> None:
    poison = "before\x00after"
    bodies = [login(user_id=f"user-{n}") for n in range(9)]
    bodies.insert(3, poison)
    send_batch(pipeline, [{"MessageBody": body} for body in bodies])
    pipeline.logins("run")

    assert pipeline.query("select count(*) from public.user_logins") == [(9,)]
    rejects = pipeline.query("select reject_reason, body from staging.stg_sqs__login_event_rejects")
    assert len(rejects) == 1
    reason, body = rejects[0]
    assert reason == UNSTORABLE
    assert base64.b64decode(body).decode() == poison  # nothing lost: the body, decodable
    assert pipeline.query(
        "select count(*) from raw.login_messages where body_encoding = 'base64'"
    ) == [(1,)]
    assert pipeline.queue.counts() == {"visible": 0, "in_flight": 0}


def test_any_attribute_or_body_becomes_a_storable_row() -> None:
    """What SQS endpoints may hand over beyond what the emulator sends: lone surrogates (a
    JSON-protocol escape), keys that are no strings, numbers JSON libraries refuse."""
    from loader.ingest.batches import attributes_json, storable_body

    assert storable_body("plain ✓") == ("plain ✓", None)
    encoded, encoding = storable_body("half \ud800 pair")
    assert encoding == "base64"
    assert base64.b64decode(encoded).decode("utf-8", "surrogatepass") == "half \ud800 pair"
    odd = {"s": "\ud800", 1: 2**80, "b": bytearray(b"\x01"), "o": object()}
    assert json.loads(attributes_json(odd))["b"] == "AQ=="
    assert "1" in json.loads(attributes_json(odd))
