"""The SQS queue, as the loader and `seed` use it: one boto3 client, clear errors."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
)

from loader.errors import SqsUnavailable
from loader.ingest.sqs_query_protocol import query_protocol_session
from loader.settings import SqsSettings, aws_retries, mask_url

# SQS's own limits.
MAX_BATCH = 10
MAX_WAIT_SECONDS = 20
MAX_BODY_BYTES = 256 * 1024

_MISSING_QUEUE_CODES = {
    "AWS.SimpleQueueService.NonExistentQueue",
    "QueueDoesNotExist",
    "NonExistentQueue",
}

# What a query-only endpoint answers to a JSON request (old LocalStack, moto-based emulators).
_UNKNOWN_OPERATION_CODES = {"UnknownOperationException", "InvalidAction", "MissingAction"}
# The receive parameter asking for every system attribute, by protocol.
_SYSTEM_ATTRIBUTE_NAMES = {"json": "MessageSystemAttributeNames", "query": "AttributeNames"}


@dataclass(frozen=True)
class SendFailure:
    index: int
    code: str
    message: str


class SqsQueue:
    """One queue. Methods raise SqsUnavailable with a message that names the fix."""

    def __init__(self, settings: SqsSettings, max_connections: int = 10) -> None:
        self.settings = settings
        self.url = settings.queue_url
        self.client = _client(settings, max_connections)
        if settings.protocol == "json":
            self.client.meta.events.register("before-parse.sqs", self._refuse_xml_answers)

    # -- checks ---------------------------------------------------------------------------

    def approximate_counts(self) -> dict[str, int]:
        """Visible, in flight and delayed messages; also proves the queue exists."""
        response = self._call(
            "get_queue_attributes",
            QueueUrl=self.url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )
        attributes = response.get("Attributes", {})
        return {
            "visible": int(attributes.get("ApproximateNumberOfMessages", 0)),
            "in_flight": int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
            "delayed": int(attributes.get("ApproximateNumberOfMessagesDelayed", 0)),
        }

    def create(self) -> str:
        """Create the queue if missing (idempotent in SQS); returns its URL."""
        response = self._call("create_queue", QueueName=self.settings.queue_name)
        return str(response["QueueUrl"])

    # -- the load ---------------------------------------------------------------------------

    def receive(self, max_messages: int = MAX_BATCH) -> list[dict[str, Any]]:
        """Long-poll for up to 10 messages with every system and message attribute."""
        response = self._call(
            "receive_message",
            QueueUrl=self.url,
            MaxNumberOfMessages=max_messages,
            WaitTimeSeconds=self.settings.wait_time_seconds,
            VisibilityTimeout=self.settings.visibility_timeout_seconds,
            MessageAttributeNames=["All"],
            # Endpoints of the query protocol's era know AttributeNames, its older name.
            **{_SYSTEM_ATTRIBUTE_NAMES[self.settings.protocol]: ["All"]},
        )
        return list(response.get("Messages", ()))

    def delete(self, receipt_handles: Sequence[str]) -> int:
        """Delete up to 10 messages; returns how many SQS refused (they will come back)."""
        if not receipt_handles:
            return 0
        response = self._call(
            "delete_message_batch",
            QueueUrl=self.url,
            Entries=[
                {"Id": str(index), "ReceiptHandle": handle}
                for index, handle in enumerate(receipt_handles)
            ],
        )
        return len(response.get("Failed", ()))

    def release(self, receipt_handles: Sequence[str]) -> None:
        """Make messages visible again at once (used when their load failed)."""
        self.extend(receipt_handles, 0)

    def extend(self, receipt_handles: Sequence[str], seconds: int) -> None:
        """Set the visibility timeout of up to 10 held messages to `seconds` from now."""
        if not receipt_handles:
            return
        self._call(
            "change_message_visibility_batch",
            QueueUrl=self.url,
            Entries=[
                {"Id": str(index), "ReceiptHandle": handle, "VisibilityTimeout": seconds}
                for index, handle in enumerate(receipt_handles)
            ],
        )

    def send(self, bodies: Sequence[str]) -> list[SendFailure]:
        """Send up to 10 bodies in one call; returns the ones SQS refused."""
        response = self._call(
            "send_message_batch",
            QueueUrl=self.url,
            Entries=[{"Id": str(index), "MessageBody": body} for index, body in enumerate(bodies)],
        )
        return [
            SendFailure(int(failure["Id"]), failure.get("Code", ""), failure.get("Message", ""))
            for failure in response.get("Failed", ())
        ]

    # -- errors -----------------------------------------------------------------------------

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        try:
            return getattr(self.client, operation)(**kwargs)  # type: ignore[no-any-return]
        except EndpointConnectionError as error:
            endpoint = mask_url(str(error.kwargs.get("endpoint_url", "")))
            raise SqsUnavailable(
                f"cannot reach the SQS endpoint {endpoint}: start it "
                "(`logins up` starts a local one) or set SOURCES__SQS__QUEUE_URL / "
                "SOURCES__SQS__ENDPOINT_URL"
            ) from error
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if self.settings.protocol == "json" and (
                code in _UNKNOWN_OPERATION_CODES or (status == 500 and code == "500")
            ):
                # An answer that is not JSON, or no operation found: a query-only endpoint.
                answer = code if code in _UNKNOWN_OPERATION_CODES else f"HTTP {status}"
                raise SqsUnavailable(self._protocol_hint(answer)) from error
            if code in _MISSING_QUEUE_CODES:
                raise SqsUnavailable(
                    f"SQS queue '{self.settings.queue_name}' does not exist at "
                    f"{mask_url(self.url)}: "
                    "create it (`logins up` does, locally) or fix SOURCES__SQS__QUEUE_URL"
                ) from error
            message = mask_url(str(error.response.get("Error", {}).get("Message", error)))
            raise SqsUnavailable(f"SQS {operation} failed: {code}: {message}") from error
        except BotoCoreError as error:
            raise SqsUnavailable(f"SQS {operation} failed: {mask_url(str(error))}") from error

    def _refuse_xml_answers(self, response_dict: dict[str, Any], **_: Any) -> None:
        """botocore's JSON parser reads an XML answer as empty; it means a query-only endpoint."""
        content_type = response_dict["headers"].get("content-type", "")
        body = response_dict["body"]
        if "xml" in content_type or (isinstance(body, bytes) and body.lstrip()[:1] == b"<"):
            raise SqsUnavailable(self._protocol_hint(f"HTTP {response_dict['status_code']} in XML"))

    def _protocol_hint(self, answer: str) -> str:
        return (
            f"the SQS endpoint {mask_url(self.client.meta.endpoint_url)} answered a JSON-protocol "
            f"request with {answer}, as endpoints that speak only SQS's query protocol do (like "
            "the exercise's old LocalStack): set SOURCES__SQS__PROTOCOL=query or pass "
            "--sqs-protocol query"
        )


def _client(settings: SqsSettings, max_connections: int) -> Any:
    """boto3's SQS client, in the protocol the settings ask for."""
    options: dict[str, Any] = {
        "region_name": settings.region_name,
        "endpoint_url": settings.resolved_endpoint_url,
        "config": Config(
            # botocore's retry modes: backoff with jitter on throttling and transient errors.
            # AWS_RETRY_MODE / AWS_MAX_ATTEMPTS override (checked: a bad one is one line).
            retries=aws_retries(),  # type: ignore[arg-type]
            max_pool_connections=max_connections,
            # Every request is built here from typed settings, and SQS checks it again (a bad
            # value is its clear error, as before); botocore's own check walked each entry of
            # each batch on every call ("disable for performance reasons", its Config docs).
            parameter_validation=False,
            connect_timeout=5,
            # a long poll holds the connection for up to WaitTimeSeconds
            read_timeout=MAX_WAIT_SECONDS + 10,
        ),
        **_credentials(settings),
    }
    if settings.protocol == "query":
        with query_protocol_session() as botocore_session:
            return boto3.session.Session(botocore_session=botocore_session).client("sqs", **options)
    return boto3.session.Session().client("sqs", **options)


def _credentials(settings: SqsSettings) -> dict[str, str]:
    """Explicit settings, else boto3's default chain, else the emulators' test/test."""
    if settings.aws_access_key_id and settings.aws_secret_access_key:
        explicit = {
            "aws_access_key_id": str(settings.aws_access_key_id),
            "aws_secret_access_key": str(settings.aws_secret_access_key),
        }
        if settings.aws_session_token:
            explicit["aws_session_token"] = str(settings.aws_session_token)
        return explicit
    if boto3.session.Session().get_credentials() is not None:
        return {}
    return {"aws_access_key_id": "test", "aws_secret_access_key": "test"}


def chunked(items: Sequence[str], size: int = MAX_BATCH) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def credentials_for(settings: SqsSettings) -> dict[str, str]:
    """The AWS credentials the SQS client uses, for another AWS client (CloudWatch)."""
    return _credentials(settings)
