"""SQS in the query protocol (form-encoded requests, XML answers), for endpoints that predate JSON.

botocore >= 1.31.81 ships SQS's service model in the JSON protocol only, and an old LocalStack
(the exercise's image) answers only the query protocol. botocore picks a client's protocol from
its service model, so we derive a query-protocol model from the installed JSON one and put it on
the botocore session's data path (the mechanism behind AWS_DATA_PATH), where botocore's own
loader finds it before its bundled model. Nothing of botocore is patched; only the model differs.

What the query protocol needs that the JSON model lacks (AWS's query API for SQS):
- metadata protocol `query` and each operation's result wrapped in `<Operation>Result`;
- lists and maps flattened, with the element names of the XML API (`Message`,
  `BatchResultErrorEntry`, `DeleteMessageBatchRequestEntry.N.Id`, `AttributeName.N`, ...);
- map entries as `Name`/`Value` (`Key`/`Value` for tags), under singular member names
  (`Attribute.N.Name`, `MessageAttribute.N.Value.StringValue`, `Tag.N.Key`).
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import botocore.loaders
import botocore.session

SERVICE_NAME = "sqs"
XML_NAMESPACE = "http://queue.amazonaws.com/doc/2012-11-05/"
# List element names that are not the list's shape name less "List" (that rule gives `Message`,
# `QueueUrl`, `AttributeName`, `BatchResultErrorEntry`, `SendMessageBatchRequestEntry`, ...).
_LIST_ELEMENT_NAMES = {
    "StringList": "StringListValue",
    "BinaryList": "BinaryListValue",
    "MessageSystemAttributeList": "MessageSystemAttributeName",
}
# Map entry names; every other SQS map is Name/Value.
_MAP_ENTRY_NAMES = {"TagMap": ("Key", "Value")}
# JSON-only metadata; `awsQueryCompatible` would make botocore read query error codes from a
# JSON header that XML answers do not have.
_JSON_ONLY_METADATA = ("jsonVersion", "targetPrefix", "awsQueryCompatible")


def query_service_model(json_model: dict[str, Any]) -> dict[str, Any]:
    """The same operations, inputs and outputs as `json_model`, in the query protocol."""
    model = copy.deepcopy(json_model)
    metadata = model["metadata"]
    for key in _JSON_ONLY_METADATA:
        metadata.pop(key, None)
    metadata.update(protocol="query", protocols=["query"], xmlNamespace=XML_NAMESPACE)

    for name, operation in model["operations"].items():
        if "output" in operation:
            operation["output"]["resultWrapper"] = f"{name}Result"

    shapes = model["shapes"]
    for name, shape in shapes.items():
        if shape["type"] == "list":
            shape["flattened"] = True
            shape["member"]["locationName"] = _LIST_ELEMENT_NAMES.get(
                name, name.removesuffix("List")
            )
        elif shape["type"] == "map":
            shape["flattened"] = True
            key_name, value_name = _MAP_ENTRY_NAMES.get(name, ("Name", "Value"))
            shape["key"]["locationName"] = key_name
            shape["value"]["locationName"] = value_name
        elif shape["type"] == "structure":
            for member_name, member in shape["members"].items():
                if shapes[member["shape"]]["type"] == "map":
                    # Attributes -> Attribute.N.Name, MessageAttributes -> MessageAttribute.N...
                    member.setdefault("locationName", _singular(member_name))
    return model


def bundled_json_model(data_path: str | None = None) -> dict[str, Any]:
    """SQS's service model as the installed botocore (and AWS_DATA_PATH, if set) has it."""
    model: dict[str, Any] = botocore.loaders.create_loader(data_path).load_service_model(
        SERVICE_NAME, "service-2"
    )
    return model


@contextmanager
def query_protocol_session() -> Iterator[botocore.session.Session]:
    """A botocore session whose SQS clients speak the query protocol.

    Create the clients inside the `with`: botocore reads the model when a client is created,
    and the derived model lives in a temporary folder only that long.
    """
    session = botocore.session.Session()
    user_data_path = session.get_config_variable("data_path")
    json_model = bundled_json_model(user_data_path)
    with tempfile.TemporaryDirectory(prefix="logins-botocore-data-") as folder:
        api_version = json_model["metadata"]["apiVersion"]
        model_file = Path(folder, SERVICE_NAME, api_version, "service-2.json")
        model_file.parent.mkdir(parents=True)
        model_file.write_text(json.dumps(query_service_model(json_model)))
        # Searched before the user's AWS_DATA_PATH and botocore's bundled data.
        session.set_config_variable(
            "data_path", os.pathsep.join(path for path in (folder, user_data_path) if path)
        )
        yield session


def _singular(member_name: str) -> str:
    name = member_name.removesuffix("s")
    return name[:1].upper() + name[1:]
