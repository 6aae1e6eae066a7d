"""The local SQS emulator (`logins up`, the tests): moto's server made to behave like one queue,
with long polls that do not hold other calls back and moto's retention check made cheap."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import boto3
import pytest
from moto.sqs.models import Message, SQSBackend

from loader.sqs_emulator import EMULATOR_ACCOUNT_ID, _fast_retention_check
from loader.sqs_query_protocol import query_protocol_session


def _client(endpoint: str, protocol: str) -> Any:
    options: dict[str, Any] = {
        "endpoint_url": endpoint,
        "region_name": "us-east-1",
        "aws_access_key_id": "test",
        "aws_secret_access_key": "test",
    }
    if protocol == "query":
        with query_protocol_session() as botocore_session:
            return boto3.session.Session(botocore_session=botocore_session).client("sqs", **options)
    return boto3.client("sqs", **options)


@pytest.mark.parametrize("protocol", ["json", "query"])
def test_a_long_poll_gets_what_is_sent_while_it_waits(sqs_endpoint: str, protocol: str) -> None:
    """Were the poll made inside the emulator's lock, the send would wait for it to end and the
    poll would come back empty."""
    client = _client(sqs_endpoint, protocol)
    url = client.create_queue(QueueName=f"poll-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    received: list[dict[str, Any]] = []

    def poll() -> None:
        answer = client.receive_message(QueueUrl=url, WaitTimeSeconds=10, MaxNumberOfMessages=10)
        received.extend(answer.get("Messages", []))

    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(0.5)  # the poll is waiting on an empty queue
    client.send_message(QueueUrl=url, MessageBody="sent during the poll")
    poller.join(15)

    assert [message["Body"] for message in received] == ["sent during the poll"]
    assert client.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages") is None


def test_an_empty_long_poll_waits_its_time_and_answers_empty(sqs_endpoint: str) -> None:
    client = _client(sqs_endpoint, "json")
    url = client.create_queue(QueueName=f"empty-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    started = time.monotonic()
    answer = client.receive_message(QueueUrl=url, WaitTimeSeconds=1)
    assert answer.get("Messages") is None
    assert time.monotonic() - started >= 0.9  # it waited, as SQS does, instead of returning


@pytest.mark.parametrize("age_seconds", [0, 59, 61, 3600])
def test_retention_check_agrees_with_motos_own(age_seconds: int) -> None:
    backend = SQSBackend("us-east-1", EMULATOR_ACCOUNT_ID)
    backend.create_queue("retained", MessageRetentionPeriod="60")
    message = Message(str(uuid.uuid4()), "body")
    message.sent_timestamp = int((time.time() - age_seconds) * 1000)

    expected = SQSBackend.is_message_valid_based_on_retention_period(backend, "retained", message)
    assert _fast_retention_check(backend, "retained", message) is expected
    assert expected is (age_seconds < 60)
