"""Any body SQS can carry lands, and never blocks or fails a load or a build: a valid login
goes to user_logins, anything else to the rejects with its reason."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Pipeline

VALID = {
    "user_id": "424cdd21-063a-43a7-b91b-7ca1a833afae",
    "app_version": "2.3.0",
    "device_type": "android",
    "ip": "199.172.111.135",
    "locale": "RU",
    "device_id": "593-47-5928",
}
MAX_BODY = 256 * 1024


def login(**changes: object) -> str:
    body = {**VALID, **changes}
    return json.dumps({k: v for k, v in body.items() if v is not ...})


def exactly_max_size(body: str) -> str:
    """Pad the (last) `padding` value so the body is exactly SQS's 256 KiB limit."""
    padded = body[:-2] + "x" * (MAX_BODY - len(body.encode())) + body[-2:]
    assert len(padded.encode()) == MAX_BODY
    return padded


# (body, expected reject code or None for a valid login)
CORPUS: list[tuple[str, str | None]] = [
    ("not json at all", "not_json"),
    (" ", "not_json"),
    ("\n\t\r ", "not_json"),
    ('{"user_id": "u",', "not_json"),
    ("[1, 2, 3]", "not_object"),
    ('"a string"', "not_object"),
    ("42", "not_object"),
    ("null", "not_object"),
    ("true", "not_object"),
    ("[" * 5000 + "]" * 5000, "not_object"),  # deep, still parsed
    ("[" * 120_000 + "]" * 120_000, "not_json"),  # deeper than Postgres' stack allows
    ('{"a": ' * 200 + "1" + "}" * 200, "missing_field"),  # deep but parseable
    (login(user_id="u" * (MAX_BODY - 200)), "too_long"),  # SQS's largest body
    (exactly_max_size(login(padding="")), None),  # SQS's largest body; extra fields are fine
    (login(extra=1, more={"nested": [1, 2]}), None),
    (login(locale=None), None),
    (login(locale=...), None),  # locale may be absent
    (login(ip="2001:0DB8:0000:0000:0000:0000:0000:0001"), None),
    (login(ip="::ffff:10.0.0.1"), None),
    (login(ip="1.2.3"), "invalid_ip"),
    (login(ip="1.2.3.4.5"), "invalid_ip"),
    (login(ip="300.1.1.1"), "invalid_ip"),
    (login(ip="fe80::1%eth0"), "invalid_ip"),
    (login(ip="::g"), "invalid_ip"),
    (login(ip=" 1.2.3.4"), "invalid_ip"),
    (login(app_version="1.2.3-rc1"), "invalid_app_version"),
    (login(user_id="ユーザー-ü-😀"), None),
    (login(user_id="'; drop table public.user_logins; --"), None),
    (login(device_id="1' or '1'='1"), None),
    (login(user_id="tab\there"), "invalid_characters"),
    (login(user_id=""), "empty_field"),
    (login(device_id=""), "empty_field"),
    (login(ip=""), "empty_field"),
    (login(device_type="x" * 33), "too_long"),
    (login(locale="x" * 33), "too_long"),
    (login(device_type="windows-phone"), None),  # unknown type: kept, flagged by a warning
    (
        '{"user_id": "a", "user_id": "b", "app_version": "1.0", "device_type": "ios",'
        ' "ip": "1.2.3.4", "device_id": "1"}',
        "duplicate_key",
    ),
    (
        '{"user_id": "\\u0000", "app_version": "1.0", "device_type": "ios",'
        ' "ip": "1.2.3.4", "device_id": "1"}',
        "not_json",
    ),
    ('{"user_id": "raw\nnewline"}', "not_json"),  # JSON forbids raw control characters
    (
        '{"user_id": "a,b\\"c\\\\d", "app_version": "1.0", "device_type": "ios",'
        ' "ip": "1.2.3.4", "device_id": "1"}',
        None,
    ),  # CSV/COPY's special characters
]
for field in ("user_id", "app_version", "device_type", "ip", "device_id"):
    CORPUS.append((login(**{field: ...}), "missing_field"))
    for wrong in (7, 1.5, True, None, [], {}):
        CORPUS.append((login(**{field: wrong}), "wrong_type"))
CORPUS.append((login(locale=7), "wrong_type"))


@pytest.mark.slow
def test_hostile_corpus_lands_with_reasons(pipeline: Pipeline) -> None:
    bodies = [body for body, _ in CORPUS]
    pipeline.queue.send(bodies)
    pipeline.logins("run")

    outcome = dict(
        pipeline.query(
            "select raw.body, coalesce(r.reject_code, 'valid')"
            " from raw.login_messages as raw"
            " left join staging.stg_sqs__login_event_rejects as r using (message_id)"
            " left join public.user_logins as u using (message_id)"
            " where (r.message_id is null) != (u.message_id is null)"
        )
    )
    assert sorted(outcome) == sorted(bodies)  # each body, byte for byte, in exactly one place
    assert {body: outcome[body] for body in bodies} == {
        body: code or "valid" for body, code in CORPUS
    }
    assert pipeline.queue.counts() == {"visible": 0, "in_flight": 0}


def test_a_message_delivered_many_times_lands_once(pipeline: Pipeline) -> None:
    pipeline.queue.send([login()])
    for _ in range(5):  # received and abandoned by crashed consumers
        pipeline.queue.client.receive_message(
            QueueUrl=pipeline.queue.url, MaxNumberOfMessages=1, VisibilityTimeout=0
        )
    pipeline.logins("run")
    assert pipeline.query("select receive_count from staging.stg_sqs__login_events") == [(6,)]
    assert pipeline.query("select count(*) from public.user_logins") == [(1,)]


# Every character SQS accepts in a body.
SQS_TEXT = st.characters(
    codec="utf-8",
    categories=None,
    exclude_characters="\x00\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0c\x0e\x0f\x10\x11\x12\x13"
    "\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f\ufffe\uffff",
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(SQS_TEXT),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(SQS_TEXT, max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
FIELD_VALUES = st.one_of(
    st.text(SQS_TEXT, max_size=40),
    st.sampled_from(["1.2.3.4", "::1", "2.3.0", "0.96", "ios", "android", "US", ""]),
    JSON_VALUES,
)
LOGIN_LIKE = st.fixed_dictionaries(
    {},
    optional={field: FIELD_VALUES for field in (*VALID, "extra")},
).map(json.dumps)
BODIES = st.one_of(
    st.text(SQS_TEXT, min_size=1, max_size=200),
    JSON_VALUES.map(json.dumps),
    LOGIN_LIKE,
    st.just(login()),
)


@pytest.mark.slow
@settings(
    max_examples=4,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=st.lists(BODIES, min_size=1, max_size=40))
def test_arbitrary_bodies_are_conserved(pipeline: Pipeline, batch: list[str]) -> None:
    """received = landed = user_logins + rejects, whatever the bodies (fixtures are shared by
    the examples, so the counts are cumulative)."""
    before = (
        pipeline.query("select count(*) from raw.login_messages") if _has_raw(pipeline) else [(0,)]
    )
    pipeline.queue.send(batch)
    pipeline.logins("run")
    landed = pipeline.query("select count(*), count(distinct message_id) from raw.login_messages")
    assert landed == [(before[0][0] + len(batch), before[0][0] + len(batch))]
    outcomes = pipeline.query(
        "select (select count(*) from public.user_logins)"
        " + (select count(*) from staging.stg_sqs__login_event_rejects)"
    )
    assert outcomes == [(landed[0][0],)]
    raw_bodies = [body for (body,) in pipeline.query("select body from raw.login_messages")]
    for body in batch:
        assert body in raw_bodies
    assert pipeline.queue.counts() == {"visible": 0, "in_flight": 0}


def _has_raw(pipeline: Pipeline) -> bool:
    return pipeline.query("select to_regclass('raw.login_messages') is not null") == [(True,)]
