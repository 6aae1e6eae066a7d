"""SQS in both wire protocols: the derived query model, every call the loader makes, and the
one-line hint when a JSON request meets an endpoint that speaks only the query protocol."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import botocore.parsers
import botocore.serialize
import pytest
from botocore.model import ServiceModel, Shape

from loader.ingest.sqs import SqsQueue
from loader.ingest.sqs_query_protocol import bundled_json_model, query_service_model
from loader.settings import SqsSettings
from tests.conftest import Pipeline, QuietHandler, RecordingProxy, http_server
from tests.test_pipeline import EXERCISE_DDL

JSON_MODEL = ServiceModel(bundled_json_model(), "sqs")
QUERY_MODEL = ServiceModel(query_service_model(bundled_json_model()), "sqs")
# Every SQS operation the project calls (loader/ingest/sqs.py; get_queue_url in docs/operations.md).
PROJECT_OPERATIONS = [
    "ReceiveMessage",
    "DeleteMessageBatch",
    "ChangeMessageVisibilityBatch",
    "SendMessageBatch",
    "GetQueueUrl",
    "GetQueueAttributes",
    "CreateQueue",
]


def _signature(shape: Shape | None, depth: int = 0) -> Any:
    """Member names and types, all the way down: what a caller passes and gets back."""
    if shape is None or depth > 8:
        return None
    if shape.type_name == "structure":
        return {name: _signature(member, depth + 1) for name, member in shape.members.items()} | {
            "__required__": sorted(shape.required_members)
        }
    if shape.type_name == "list":
        return ["list", _signature(shape.member, depth + 1)]
    if shape.type_name == "map":
        return ["map", _signature(shape.key, depth + 1), _signature(shape.value, depth + 1)]
    return shape.type_name


def test_query_model_has_the_json_models_operations_inputs_and_outputs() -> None:
    assert QUERY_MODEL.protocol == "query"
    assert QUERY_MODEL.resolved_protocol == "query"
    assert set(PROJECT_OPERATIONS) <= set(JSON_MODEL.operation_names)
    assert QUERY_MODEL.operation_names == JSON_MODEL.operation_names
    for name in JSON_MODEL.operation_names:
        query, json = QUERY_MODEL.operation_model(name), JSON_MODEL.operation_model(name)
        assert _signature(query.input_shape) == _signature(json.input_shape), name
        assert _signature(query.output_shape) == _signature(json.output_shape), name
        if json.output_shape is not None:
            assert query.output_shape.serialization["resultWrapper"] == f"{name}Result"


def _query_params(operation: str, **params: Any) -> dict[str, Any]:
    serializer = botocore.serialize.create_serializer("query")
    request = serializer.serialize_to_request(params, QUERY_MODEL.operation_model(operation))
    return dict(request["body"])


def test_query_requests_carry_the_query_apis_parameter_names() -> None:
    url = "http://localhost:4566/000000000000/login-queue"
    # Names as AWS's query API reference for SQS spells them.
    assert _query_params(
        "ReceiveMessage",
        QueueUrl=url,
        MaxNumberOfMessages=10,
        WaitTimeSeconds=2,
        VisibilityTimeout=300,
        AttributeNames=["All"],
        MessageAttributeNames=["All"],
    ) == {
        "Action": "ReceiveMessage",
        "Version": "2012-11-05",
        "QueueUrl": url,
        "MaxNumberOfMessages": 10,
        "WaitTimeSeconds": 2,
        "VisibilityTimeout": 300,
        "AttributeName.1": "All",
        "MessageAttributeName.1": "All",
    }
    assert _query_params(
        "DeleteMessageBatch", QueueUrl=url, Entries=[{"Id": "0", "ReceiptHandle": "r0"}]
    ) == {
        "Action": "DeleteMessageBatch",
        "Version": "2012-11-05",
        "QueueUrl": url,
        "DeleteMessageBatchRequestEntry.1.Id": "0",
        "DeleteMessageBatchRequestEntry.1.ReceiptHandle": "r0",
    }
    change = _query_params(
        "ChangeMessageVisibilityBatch",
        QueueUrl=url,
        Entries=[{"Id": "0", "ReceiptHandle": "r0", "VisibilityTimeout": 0}],
    )
    assert change["ChangeMessageVisibilityBatchRequestEntry.1.VisibilityTimeout"] == 0
    send = _query_params(
        "SendMessageBatch",
        QueueUrl=url,
        Entries=[
            {
                "Id": "0",
                "MessageBody": "{}",
                "MessageAttributes": {"source": {"DataType": "String", "StringValue": "app"}},
            }
        ],
    )
    assert send["SendMessageBatchRequestEntry.1.MessageBody"] == "{}"
    assert send["SendMessageBatchRequestEntry.1.MessageAttribute.1.Name"] == "source"
    assert send["SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.StringValue"] == "app"
    create = _query_params(
        "CreateQueue", QueueName="q", Attributes={"VisibilityTimeout": "30"}, tags={"team": "d"}
    )
    assert create["Attribute.1.Name"] == "VisibilityTimeout"
    assert create["Attribute.1.Value"] == "30"
    assert create["Tag.1.Key"] == "team"
    attributes = _query_params(
        "GetQueueAttributes", QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
    )
    assert attributes["AttributeName.1"] == "ApproximateNumberOfMessages"
    assert _query_params("GetQueueUrl", QueueName="q")["QueueName"] == "q"


# A ReceiveMessage answer shaped as in AWS's query API reference.
RECEIVE_XML = b"""<?xml version="1.0"?>
<ReceiveMessageResponse xmlns="http://queue.amazonaws.com/doc/2012-11-05/">
  <ReceiveMessageResult>
    <Message>
      <MessageId>5fea7756-0ea4-451a-a703-a558b933e274</MessageId>
      <ReceiptHandle>MbZj6wDWli+JvwwJaBV+3dcjk2YW2vA3+STFFljTM8tJJg6HRG6PYSasuWXPJB+Cw</ReceiptHandle>
      <MD5OfBody>fafb00f5732ab283681e124bf8747ed1</MD5OfBody>
      <Body>{"user_id": "u"}</Body>
      <Attribute><Name>SenderId</Name><Value>195004372649</Value></Attribute>
      <Attribute><Name>SentTimestamp</Name><Value>1238099229000</Value></Attribute>
      <Attribute><Name>ApproximateReceiveCount</Name><Value>5</Value></Attribute>
      <MessageAttribute>
        <Name>source</Name>
        <Value><DataType>String</DataType><StringValue>app</StringValue></Value>
      </MessageAttribute>
    </Message>
    <Message>
      <MessageId>second</MessageId>
      <ReceiptHandle>r2</ReceiptHandle>
      <Body>x</Body>
    </Message>
  </ReceiveMessageResult>
  <ResponseMetadata><RequestId>b6633655-283d-45b4-aee4-4e84e0ae6afa</RequestId></ResponseMetadata>
</ReceiveMessageResponse>"""

DELETE_XML = b"""<DeleteMessageBatchResponse>
  <DeleteMessageBatchResult>
    <DeleteMessageBatchResultEntry><Id>0</Id></DeleteMessageBatchResultEntry>
    <BatchResultErrorEntry>
      <Id>1</Id><Code>ReceiptHandleIsInvalid</Code><Message>bad</Message>
      <SenderFault>true</SenderFault>
    </BatchResultErrorEntry>
  </DeleteMessageBatchResult>
  <ResponseMetadata><RequestId>r</RequestId></ResponseMetadata>
</DeleteMessageBatchResponse>"""


def _parse(operation: str, body: bytes) -> dict[str, Any]:
    parser = botocore.parsers.create_parser("query")
    response = {"status_code": 200, "headers": {}, "body": body}
    return dict(parser.parse(response, QUERY_MODEL.operation_model(operation).output_shape))


def test_query_answers_parse_like_json_ones() -> None:
    messages = _parse("ReceiveMessage", RECEIVE_XML)["Messages"]
    assert [message["MessageId"] for message in messages] == [
        "5fea7756-0ea4-451a-a703-a558b933e274",
        "second",
    ]
    assert messages[0]["Body"] == '{"user_id": "u"}'
    assert messages[0]["Attributes"] == {
        "SenderId": "195004372649",
        "SentTimestamp": "1238099229000",
        "ApproximateReceiveCount": "5",
    }
    assert messages[0]["MessageAttributes"] == {
        "source": {"DataType": "String", "StringValue": "app"}
    }
    deleted = _parse("DeleteMessageBatch", DELETE_XML)
    assert deleted["Successful"] == [{"Id": "0"}]
    assert deleted["Failed"] == [
        {"Id": "1", "Code": "ReceiptHandleIsInvalid", "Message": "bad", "SenderFault": True}
    ]


@pytest.mark.parametrize("protocol", ["json", "query"])
def test_every_queue_call_works_in_both_protocols(sqs_proxy: RecordingProxy, protocol: str) -> None:
    name = f"protocol-{protocol}-{uuid.uuid4().hex[:8]}"
    settings = SqsSettings()
    settings.queue_url = f"{sqs_proxy.endpoint}/000000000000/{name}"
    settings.protocol = protocol
    settings.wait_time_seconds = 1
    queue = SqsQueue(settings)
    try:
        assert queue.create().endswith(f"/{name}")
        assert queue.client.get_queue_url(QueueName=name)["QueueUrl"].endswith(f"/{name}")
        assert queue.send(["one", "two", "three"]) == []
        assert queue.approximate_counts() == {"visible": 3, "in_flight": 0, "delayed": 0}

        received = _receive_all(queue, 3)
        assert sorted(message["Body"] for message in received) == ["one", "three", "two"]
        for message in received:
            assert int(message["Attributes"]["SentTimestamp"]) > 0
            assert message["Attributes"]["ApproximateReceiveCount"] == "1"
        assert queue.approximate_counts()["in_flight"] == 3
        queue.extend([message["ReceiptHandle"] for message in received], 60)
        assert queue.approximate_counts()["in_flight"] == 3

        queue.release([message["ReceiptHandle"] for message in received])
        again = _receive_all(queue, 3)
        assert {message["Attributes"]["ApproximateReceiveCount"] for message in again} == {"2"}

        assert queue.delete([message["ReceiptHandle"] for message in again]) == 0
        assert queue.approximate_counts() == {"visible": 0, "in_flight": 0, "delayed": 0}
    finally:
        queue.client.delete_queue(QueueUrl=settings.queue_url)

    wire = {"json": "application/x-amz-json-1.0", "query": "application/x-www-form-urlencoded"}
    assert {kind.split(";")[0] for kind, _ in sqs_proxy.requests} == {wire[protocol]}
    assert set(PROJECT_OPERATIONS) <= sqs_proxy.operations(wire[protocol])


def _receive_all(queue: SqsQueue, count: int) -> list[dict[str, Any]]:
    received: list[dict[str, Any]] = []
    for _ in range(10):
        received += queue.receive()
        if len(received) >= count:
            break
    return received


# What endpoints that speak only the query protocol answer a JSON request with.
QUERY_ONLY_ANSWERS = {
    # LocalStack before JSON support: no Action in the request
    "internal-error-xml": (
        500,
        "text/xml",
        b"<?xml version='1.0' encoding='utf-8'?>\n<ErrorResponse xmlns=\"http://queue.amazonaws"
        b'.com/doc/2012-11-05/"><Error><Code>InternalError</Code><Message>exception while '
        b"calling sqs with unknown operation: Operation detection failed. Missing Action in "
        b"request for query-protocol service ServiceModel(sqs).</Message></Error>"
        b"<RequestId>1</RequestId></ErrorResponse>",
    ),
    "unknown-operation-json": (
        400,
        "application/json",
        b'{"__type": "UnknownOperationException", "message": "Unknown operation"}',
    ),
    "unknown-operation-xml": (404, "text/xml", b"<UnknownOperationException/>"),
    "plain-500": (500, "text/plain", b"Internal Server Error"),
    # an answer botocore's JSON parser would read as "no messages"
    "xml-success": (
        200,
        "text/xml",
        b"<GetQueueAttributesResponse><GetQueueAttributesResult/></GetQueueAttributesResponse>",
    ),
}


@pytest.fixture(params=sorted(QUERY_ONLY_ANSWERS))
def query_only_endpoint(request: pytest.FixtureRequest) -> Iterator[str]:
    status, content_type, body = QUERY_ONLY_ANSWERS[request.param]

    class Answer(QuietHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.answer(status, [("Content-Type", content_type)], body)

    with http_server(Answer) as endpoint:
        yield f"{endpoint}/000000000000/login-queue"


def test_json_request_to_a_query_only_endpoint_names_the_setting(
    pipeline: Pipeline, query_only_endpoint: str
) -> None:
    result = pipeline.logins("load", check=False, SOURCES__SQS__QUEUE_URL=query_only_endpoint)
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert "speak only SQS's query protocol" in errors[0]
    assert "SOURCES__SQS__PROTOCOL=query" in errors[0]
    assert "--sqs-protocol query" in errors[0]


def test_an_unknown_protocol_is_refused(pipeline: Pipeline) -> None:
    result = pipeline.logins("load", check=False, SOURCES__SQS__PROTOCOL="xml")
    assert result.returncode == 2
    assert "SOURCES__SQS__PROTOCOL is 'xml': set it to json or query" in result.stderr
    assert "Traceback" not in result.stderr
    refused = pipeline.logins("load", "--sqs-protocol", "xml", check=False)
    assert refused.returncode == 2
    assert "invalid choice: 'xml'" in refused.stderr


def test_readme_steps_for_the_exercises_images(
    pipeline: Pipeline, sample_lines: list[str], sqs_proxy: RecordingProxy
) -> None:
    """docs/operations.md, "Running against the exercise's images": services already up, the queue
    pre-loaded, user_logins pre-created; `up`, `run`, `up` in the query protocol."""
    pipeline.query(EXERCISE_DDL + "; select 1")
    columns = (
        "select column_name, data_type from information_schema.columns"
        " where table_schema = 'public' and table_name = 'user_logins' order by ordinal_position"
    )
    exercise_columns = pipeline.query(columns)
    pipeline.queue.send(sample_lines)
    queue_name = pipeline.queue.url.rsplit("/", 1)[1]
    via_proxy = {"SOURCES__SQS__QUEUE_URL": sqs_proxy.via(pipeline.queue.url)}

    up = pipeline.logins("up", "--sqs-protocol", "query", **via_proxy)
    assert f"{queue_name}: running, 100 messages waiting" in up.stdout
    assert "started" not in up.stdout
    run = pipeline.logins("run", "--sqs-protocol", "query", **via_proxy)
    assert "rows in user_logins  99" in run.stdout, run.stdout
    again = pipeline.logins("up", "--sqs-protocol", "query", **via_proxy)
    assert f"{queue_name}: running, 0 messages waiting" in again.stdout

    assert pipeline.queue.counts() == {"visible": 0, "in_flight": 0}
    assert pipeline.query("select count(*) from public.user_logins") == [(99,)]
    assert [column for column, _ in pipeline.query(columns)] == [
        *(column for column, _ in exercise_columns),
        "mask_key_version",
        "message_id",
        "app_version_string",
        "sent_at",
        "loaded_at",
    ]
    assert pipeline.query(columns)[: len(exercise_columns)] == exercise_columns
    assert pipeline.query(
        "select indexname from pg_indexes"
        " where schemaname = 'public' and tablename = 'user_logins' order by 1"
    ) == [("user_logins__loaded_at_idx",), ("user_logins__message_id_key",)]
    assert {kind.split(";")[0] for kind, _ in sqs_proxy.requests} == {
        "application/x-www-form-urlencoded"
    }
    assert "nothing" in pipeline.logins("down").stdout
