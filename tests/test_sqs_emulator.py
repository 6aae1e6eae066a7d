"""The local SQS emulator (`logins up`, the tests): moto's server made to behave like one queue,
with long polls that do not hold other calls back and moto's retention check made cheap."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import pytest
from moto.sqs.models import Message, SQSBackend

from loader.devstack.sqs_emulator import EMULATOR_ACCOUNT_ID, _fast_retention_check
from loader.ingest.sqs import SqsQueue
from loader.settings import SqsSettings


def _new_queue(endpoint: str, protocol: str, wait_seconds: int) -> SqsQueue:
    """A queue of its own on the emulator, through the loader's own client."""
    settings = SqsSettings()
    settings.queue_url = f"{endpoint}/{EMULATOR_ACCOUNT_ID}/poll-{uuid.uuid4().hex[:8]}"
    settings.protocol = protocol
    settings.wait_time_seconds = wait_seconds
    queue = SqsQueue(settings)
    queue.create()
    return queue


@pytest.mark.parametrize("protocol", ["json", "query"])
def test_a_long_poll_gets_what_is_sent_while_it_waits(sqs_endpoint: str, protocol: str) -> None:
    """Were the poll made inside the emulator's lock, the send would wait for it to end and the
    poll would come back empty."""
    queue = _new_queue(sqs_endpoint, protocol, wait_seconds=10)
    received: list[dict[str, Any]] = []
    poller = threading.Thread(target=lambda: received.extend(queue.receive()))
    poller.start()
    time.sleep(0.5)  # the poll is waiting on an empty queue
    assert queue.send(["sent during the poll"]) == []
    poller.join(15)

    assert [message["Body"] for message in received] == ["sent during the poll"]
    again = queue.client.receive_message(QueueUrl=queue.url, WaitTimeSeconds=1)
    assert again.get("Messages") is None


def test_an_empty_long_poll_waits_its_time_and_answers_empty(sqs_endpoint: str) -> None:
    queue = _new_queue(sqs_endpoint, "json", wait_seconds=1)
    started = time.monotonic()
    assert queue.receive() == []
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
