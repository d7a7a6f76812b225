"""The AsyncAPI 3.0 document: committed as generated, structurally valid, every reference resolving."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import referencing
import referencing.jsonschema
import yaml

from contracts import registry
from contracts.asyncapi import DEAD_LETTER_SUFFIX, HEADERS, build_document, to_yaml
from contracts.base import Event
from contracts.envelope import Envelope
from contracts.probe import ProbeRecorded
from contracts.tools import ASYNCAPI_FILE, contracts_root

ID_PATTERN = re.compile(r"^[\w\d.\-_]+$")
CE_HEADERS = {
    "ce_id",
    "ce_type",
    "ce_source",
    "ce_specversion",
    "ce_time",
    "ce_subject",
    "ce_tenant",
    "ce_partitionkey",
    "traceparent",
    "content-type",
}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((contracts_root() / ASYNCAPI_FILE).read_text(encoding="utf-8"))
    return loaded


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for item in node for ref in _refs(item)]
    return []


def _pointer(document: Any, pointer: str) -> Any:
    target = document
    for token in filter(None, pointer.split("/")):
        target = target[token.replace("~1", "/").replace("~0", "~")]
    return target


def test_committed_yaml_reads_back_as_the_generated_document(document: dict[str, Any]) -> None:
    assert document == build_document()


def test_document_has_the_required_asyncapi_3_parts(document: dict[str, Any]) -> None:
    assert document["asyncapi"] == "3.0.0"
    assert document["info"]["title"] and isinstance(document["info"]["version"], str)
    assert {"host", "protocol"} <= document["servers"]["kafka"].keys()
    assert document["servers"]["kafka"]["protocol"] == "kafka"
    for section in ("channels", "operations"):
        assert all(ID_PATTERN.match(key) for key in document[section]), section
    assert all(ID_PATTERN.match(key) for key in document["components"]["messages"])


def test_every_reference_resolves(document: dict[str, Any]) -> None:
    root = contracts_root()
    refs = _refs(document)

    assert refs
    for ref in refs:
        if ref.startswith("#"):
            assert isinstance(_pointer(document, ref[1:]), dict), ref
        else:
            schema = json.loads((root / ref).read_text(encoding="utf-8"))
            jsonschema.Draft202012Validator.check_schema(schema)
            for inner in _refs(schema):
                assert isinstance(_pointer(schema, inner.removeprefix("#")), dict), (ref, inner)


def test_every_topic_has_a_channel_and_a_dead_letter_channel(document: dict[str, Any]) -> None:
    for topic in registry.topics():
        assert document["channels"][topic]["address"] == topic
        assert document["channels"][f"{topic}.dlq"]["address"] == f"{topic}.dlq"


def test_every_event_type_is_a_message_with_payload_key_and_headers(document: dict[str, Any]) -> None:
    messages = document["components"]["messages"]
    for event_type, cls in registry.catalogue().items():
        for message_id in (event_type, event_type + DEAD_LETTER_SUFFIX):
            message = messages[message_id]
            assert message["payload"]["schema"]["$ref"].endswith(
                f"{cls.event_name}.v{cls.event_version}.json"
            )
            assert message["bindings"]["kafka"]["key"]["type"] == "string"
            assert message["x-partition-key-field"] == cls.key_field
        assert f"#/components/messages/{event_type}" in _refs(document["channels"][cls.topic]["messages"])


def test_headers_cover_the_cloudevents_binary_mode(document: dict[str, Any]) -> None:
    headers = document["components"]["schemas"]["CloudEventsHeaders"]

    assert set(headers["properties"]) == CE_HEADERS == {name for name, _, _ in HEADERS}
    assert headers["additionalProperties"] is False


def test_operations_send_messages_of_their_own_channel(document: dict[str, Any]) -> None:
    sent: set[str] = set()
    for operation_id, operation in document["operations"].items():
        assert operation["action"] == "send", operation_id
        channel_ref = operation["channel"]["$ref"]
        for message in operation["messages"]:
            assert message["$ref"].startswith(f"{channel_ref}/messages/"), operation_id
            sent.add(message["$ref"].rsplit("/", 1)[1])
    assert set(registry.catalogue()) <= sent


def test_producer_operation_names_the_producing_service(document: dict[str, Any]) -> None:
    operation = document["operations"]["probe.send.probe.records"]

    assert operation["channel"] == {"$ref": "#/channels/probe.records"}


def _headers_validator(document: dict[str, Any], message_id: str) -> jsonschema.Draft202012Validator:
    """A validator for one message's headers schema, its `$ref`s resolved inside the AsyncAPI document."""
    spec = referencing.jsonschema.DRAFT202012
    resource = referencing.Resource.from_contents(document, default_specification=spec)
    schemas = referencing.Registry().with_resource("urn:asyncapi", resource)
    ref = f"urn:asyncapi#/components/messages/{message_id}/headers"
    return jsonschema.Draft202012Validator({"$ref": ref}, registry=schemas)


def _binary_mode_headers(envelope: Envelope) -> dict[str, str]:
    """CloudEvents Kafka binding: `ce_<attribute>`, except content type and the W3C trace header."""
    attributes = envelope.attributes()
    headers = {f"ce_{k}": v for k, v in attributes.items() if k not in ("datacontenttype", "traceparent")}
    headers["content-type"] = attributes["datacontenttype"]
    if "traceparent" in attributes:
        headers["traceparent"] = attributes["traceparent"]
    return headers


def test_an_envelopes_headers_satisfy_the_message_headers_schema(document: dict[str, Any]) -> None:
    validator = _headers_validator(document, ProbeRecorded.event_type)
    envelope = Envelope.wrap(
        ProbeRecorded(stream="s", seq=1),
        source="/cityblocks/probe",
        tenant="44021",
        subject="s",
        traceparent=f"00-{'a' * 32}-{'b' * 16}-01",
    )
    headers = _binary_mode_headers(envelope)

    validator.validate(headers)
    assert not validator.is_valid({**headers, "ce_type": "be.cityblocks.probe.Other.v1"})
    assert not validator.is_valid({k: v for k, v in headers.items() if k != "ce_tenant"})


@pytest.mark.parametrize(
    "text",
    ["plain", "two\nlines\n", "a: b", "#hash", "yes", "1.0", "", " lead\nx", "tab\tin\nit", "é\n\nü\n"],
)
def test_yaml_writer_reads_back_the_same_strings(text: str) -> None:
    data = {"k": text, "list": [text, {"nested": text}], "n": 3, "b": False, "none": None, "empty": {}}

    assert yaml.safe_load(to_yaml(data)) == data


def test_yaml_file_starts_with_the_generated_note() -> None:
    first = (contracts_root() / ASYNCAPI_FILE).read_text(encoding="utf-8").splitlines()[0]

    assert first.startswith("# Generated") and Path(ASYNCAPI_FILE).suffix == ".yaml"


def test_dead_letter_headers_require_the_error_and_allow_unreadable_records(document: dict[str, Any]) -> None:
    validator = _headers_validator(document, ProbeRecorded.event_type + DEAD_LETTER_SUFFIX)
    envelope = Envelope.wrap(ProbeRecorded(stream="s", seq=1), source="/cityblocks/probe", tenant="44021")
    error = {"ce_dlqerror": "ValueError: no", "ce_dlqconsumer": "logistics", "ce_dlqattempts": "5"}

    validator.validate({**_binary_mode_headers(envelope), **error})
    validator.validate({"garbled": "?", **error})
    assert not validator.is_valid(_binary_mode_headers(envelope))


# The fixed fields of the AsyncAPI 3.0.0 objects we write (besides `x-` extensions), from the specification.
FIELDS = {
    "root": "asyncapi id info servers defaultContentType channels operations components",
    "info": "title version description termsOfService contact license tags externalDocs",
    "server": "host protocol protocolVersion pathname description title summary variables security tags "
    "externalDocs bindings",
    "channel": "address messages title summary description servers parameters tags externalDocs bindings",
    "operation": "action channel title summary description security tags externalDocs bindings traits "
    "messages reply",
    "message": "headers payload correlationId contentType name title summary description tags externalDocs "
    "bindings examples traits",
    "multi_format_schema": "schemaFormat schema",
    "kafka_channel_binding": "topic partitions replicas topicConfiguration bindingVersion",
    "kafka_message_binding": "key schemaIdLocation schemaIdPayloadEncoding schemaLookupStrategy "
    "bindingVersion",
}


def _unknown(obj: dict[str, Any], kind: str) -> set[str]:
    return {key for key in obj if not key.startswith("x-")} - set(FIELDS[kind].split())


def test_objects_use_only_asyncapi_3_fields(document: dict[str, Any]) -> None:
    assert _unknown(document, "root") == set()
    assert _unknown(document["info"], "info") == set()
    assert all(_unknown(server, "server") == set() for server in document["servers"].values())
    for channel in document["channels"].values():
        assert _unknown(channel, "channel") == set()
        assert _unknown(channel["bindings"]["kafka"], "kafka_channel_binding") == set()
    assert all(_unknown(operation, "operation") == set() for operation in document["operations"].values())
    for message in document["components"]["messages"].values():
        assert _unknown(message, "message") == set()
        assert _unknown(message["payload"], "multi_format_schema") == set()
        assert _unknown(message["bindings"]["kafka"], "kafka_message_binding") == set()


class Loaded(Event, service="logistics", topic="logistics.trips", key="trip_id"):
    trip_id: str


class Unloaded(Event, service="logistics", topic="logistics.trips", key="trip_id"):
    trip_id: str


class UnloadedV2(Event, service="logistics", topic="logistics.trips", key="trip_id", version=2):
    trip_id: str
    stop: int


def test_document_of_many_events_groups_them_by_topic_and_producer() -> None:
    document = build_document([ProbeRecorded, Loaded, Unloaded, UnloadedV2])

    assert list(document["channels"]) == [
        "logistics.trips",
        "logistics.trips.dlq",
        "probe.records",
        "probe.records.dlq",
    ]
    assert len(document["channels"]["logistics.trips"]["messages"]) == 3
    assert len(document["operations"]["logistics.send.logistics.trips"]["messages"]) == 3
    for ref in _refs(document):
        if ref.startswith("#"):
            assert isinstance(_pointer(document, ref[1:]), dict), ref
    assert yaml.safe_load(to_yaml(document)) == document
