"""A local SQS emulator for `logins up` and the tests: moto's server, one request at a time.

moto's server handles requests on parallel threads, but its SQS model is not thread-safe:
concurrent receives sometimes hand one message to two consumers, and concurrent deletes can
bring back a message another delete just removed (seen here: 102 receipts for 100 messages,
messages left in flight after a complete load). A lock around the application makes it
behave like one queue; the loader's parallel receivers simply take turns. A long poll is
not made inside the lock, where it would hold every other call back (the four receivers' last
empty polls took turns: 4 x WaitTimeSeconds at the end of every load): the emulator asks moto
without waiting, and asks again outside the lock until messages come or the wait is over.

moto also checks each message it hands out against the queue's retention period by building
all of the queue's attributes, three of which walk every message: a receive of 10 from a queue
of 500 cost 210 ms, and a 500-message demo load 18 s. The check here reads the one attribute
it needs (`_fast_retention_check`); the rest of moto is as it ships.

Run: python -m loader.devstack.sqs_emulator --host 127.0.0.1 --port 4566
"""

from __future__ import annotations

import argparse
import io
import json
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode

EMULATOR_ACCOUNT_ID = "000000000000"
EMULATOR_REGION = "us-east-1"


def emulator_client(endpoint: str, config: Any = None) -> Any:
    """A bare boto3 SQS client for an emulator (moto, LocalStack): its region and the test
    credentials emulators accept. `config` is a botocore Config."""
    import boto3

    return boto3.client(
        "sqs",
        endpoint_url=endpoint,
        region_name=EMULATOR_REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",  # noqa: S106 (every emulator accepts these)
        config=config,
    )


class SerializedApp:
    """WSGI middleware: one request inside the wrapped application at a time; long polls wait
    outside it."""

    POLL_SECONDS = 0.05

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        poll = _ReceivePoll.of(environ, body)
        if poll is None:
            return self._call(environ, body, start_response)[2]
        deadline = time.monotonic() + poll.wait_seconds
        while True:
            status, headers, answer = self._call(environ, poll.body, _ignore)
            if not status.startswith("200") or poll.has_messages(answer):
                break
            if time.monotonic() >= deadline:
                break
            time.sleep(self.POLL_SECONDS)
        start_response(status, headers)
        return answer

    def _call(
        self, environ: dict[str, Any], body: bytes, start_response: Callable[..., Any]
    ) -> tuple[str, list[tuple[str, str]], list[bytes]]:
        """The wrapped application's answer to `environ` with `body`, under the lock."""
        answer: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            answer.update(status=status, headers=headers)
            return start_response(status, headers, *exc_info)

        environ = {**environ, "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body))}
        with self._lock:
            # the body is read inside the lock too: moto builds it lazily
            chunks = list(self._app(environ, capture))
        return answer["status"], answer["headers"], chunks


def _ignore(*_: Any) -> None:
    """A start_response for polls whose answer is not the last."""


@dataclass(frozen=True)
class _ReceivePoll:
    """A ReceiveMessage with WaitTimeSeconds > 0, as a request without the wait."""

    wait_seconds: int
    body: bytes  # the request with WaitTimeSeconds=0
    json_protocol: bool

    @classmethod
    def of(cls, environ: dict[str, Any], body: bytes) -> _ReceivePoll | None:
        """None for every other request, and for one moto should refuse as it is."""
        try:
            return cls._parse(environ, body)
        except (ValueError, TypeError, AttributeError):
            return None  # malformed: moto answers with its error, at once

    @classmethod
    def _parse(cls, environ: dict[str, Any], body: bytes) -> _ReceivePoll | None:
        target = environ.get("HTTP_X_AMZ_TARGET")
        if target is not None:  # the JSON protocol names the operation in a header
            if target != "AmazonSQS.ReceiveMessage":
                return None
            request = json.loads(body or b"{}")
            wait = int(request.get("WaitTimeSeconds") or 0)
            request["WaitTimeSeconds"] = 0
            return cls(wait, json.dumps(request).encode(), True) if wait > 0 else None
        form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        if form.get("Action") != ["ReceiveMessage"]:
            return None
        wait = int((form.get("WaitTimeSeconds") or ["0"])[0] or 0)
        form["WaitTimeSeconds"] = ["0"]
        return cls(wait, urlencode(form, doseq=True).encode(), False) if wait > 0 else None

    def has_messages(self, answer: list[bytes]) -> bool:
        text = b"".join(answer)
        if self.json_protocol:
            return bool(json.loads(text or b"{}").get("Messages"))
        return b"<Message>" in text


def _fast_retention_check(backend: Any, queue_name: str, message: Any) -> bool:
    """moto's `is_message_valid_based_on_retention_period`, reading the retention period from
    the queue instead of from all its attributes (same result, without walking the queue)."""
    from moto.core.utils import unix_time

    retention_seconds = int(backend.get_queue(queue_name).message_retention_period)
    return bool(retention_seconds + message.sent_timestamp / 1000 > unix_time())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4566)
    args = parser.parse_args(argv)
    os.environ.setdefault("MOTO_ACCOUNT_ID", EMULATOR_ACCOUNT_ID)

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from moto.sqs.models import SQSBackend
    from werkzeug.serving import run_simple

    SQSBackend.is_message_valid_based_on_retention_period = _fast_retention_check

    app = SerializedApp(DomainDispatcherApplication(create_backend_app))
    run_simple(args.host, args.port, app, threaded=True)


if __name__ == "__main__":
    main()
