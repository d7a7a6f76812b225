"""The AsyncAPI 3.0 document of every topic, message, key and header, generated from the event catalogue."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from contracts.base import Event
from contracts.schemas import event_schema_path

ASYNCAPI_VERSION = "3.0.0"
DOCUMENT_VERSION = "1.0.0"
KAFKA_BINDING_VERSION = "0.5.0"
SCHEMA_FORMAT = "application/schema+json;version=draft-2020-12"
SCHEMA_DIR = "schemas"
DLQ_SUFFIX = ".dlq"
DEAD_LETTER_SUFFIX = ".dead-letter"

# CloudEvents 1.0 Kafka protocol binding, binary mode: one header per context attribute.
HEADERS: tuple[tuple[str, str, bool], ...] = (
    ("ce_id", "Event id, unique per source: the idempotency key consumers keep in their inbox.", True),
    ("ce_type", "Event type `be.cityblocks.<service>.<EventName>.v<N>`; names the payload schema.", True),
    ("ce_source", "The producing service, `/cityblocks/<service>`.", True),
    ("ce_specversion", "CloudEvents version, always `1.0`.", True),
    ("ce_time", "When the fact happened, RFC 3339 in UTC.", True),
    ("ce_subject", "The entity the event is about, when the type does not say it.", False),
    ("ce_tenant", "Extension: NIS code of the municipality (or a region id).", True),
    ("ce_partitionkey", "Extension: the partition key, equal to the record key.", True),
    ("traceparent", "W3C trace context of the operation that produced the event.", False),
    ("content-type", "Media type of the value, `application/json`.", False),
)
# Added by the consumer's event bus when it parks a record on `<topic>.dlq`.
DEAD_LETTER_HEADERS: tuple[tuple[str, str, bool], ...] = (
    (
        "ce_dlqerror",
        "Why the record failed: the exception of the last attempt (at most 4,000 characters).",
        True,
    ),
    ("ce_dlqconsumer", "The consumer (service) that gave up on the record.", True),
    ("ce_dlqattempts", "How many attempts were made, as a decimal number.", True),
)

DEAD_LETTER_NOTE = (
    "The record as the producer sent it (same key and value) with the error headers added; a value that "
    "could not be read at all is parked unchanged, so it may not match the payload schema."
)

DESCRIPTION = """\
Every event travels as a CloudEvents 1.0 record in Kafka binary mode: context attributes in `ce_*` headers,
the event's JSON data as the value, the partition key (named per message) as the record key. Ordering is
guaranteed per key only. Payload schemas are closed JSON Schemas (draft 2020-12) under `schemas/`; they evolve
by optional additions only, and a breaking change is a new `vN` type published beside the old one for a while.
Consumers are tolerant readers and idempotent through their inbox. A record that still fails after bounded
retries is parked on `<topic>.dlq` with the error in its headers.
"""


def build_document(events: Iterable[type[Event]] | None = None) -> dict[str, Any]:
    """The AsyncAPI document as plain data; payloads reference the committed schema files by relative path."""
    if events is None:
        from contracts.registry import catalogue

        events = catalogue().values()
    ordered = sorted(events, key=lambda cls: cls.event_type)
    topics = sorted({cls.topic for cls in ordered})
    messages: dict[str, Any] = {}
    for cls in ordered:
        messages[cls.event_type] = _message(cls, dead_letter=False)
        messages[cls.event_type + DEAD_LETTER_SUFFIX] = _message(cls, dead_letter=True)
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {"title": "CityBlocks events", "version": DOCUMENT_VERSION, "description": DESCRIPTION},
        "defaultContentType": "application/json",
        "servers": {
            "kafka": {
                "host": "127.0.0.1:9092",
                "protocol": "kafka",
                "description": "An Apache Kafka broker; `cityblocks kafka start` runs one on this machine.",
            }
        },
        "channels": _channels(ordered, topics),
        "operations": _operations(ordered, topics),
        "components": {"schemas": _component_schemas(), "messages": messages},
    }


def _channels(events: list[type[Event]], topics: list[str]) -> dict[str, Any]:
    channels: dict[str, Any] = {}
    for topic in topics:
        on_topic = [cls for cls in events if cls.topic == topic]
        channels[topic] = _channel(topic, f"Events on `{topic}`.", [cls.event_type for cls in on_topic])
        channels[topic + DLQ_SUFFIX] = _channel(
            topic + DLQ_SUFFIX,
            f"Dead letters of `{topic}`: records a consumer could not handle after bounded retries.",
            [cls.event_type + DEAD_LETTER_SUFFIX for cls in on_topic],
        )
    return channels


def _channel(address: str, description: str, message_ids: list[str]) -> dict[str, Any]:
    return {
        "address": address,
        "description": description,
        "messages": {mid: {"$ref": f"#/components/messages/{mid}"} for mid in message_ids},
        "bindings": {"kafka": {"topic": address, "bindingVersion": KAFKA_BINDING_VERSION}},
    }


def _operations(events: list[type[Event]], topics: list[str]) -> dict[str, Any]:
    operations: dict[str, Any] = {}
    for topic in topics:
        on_topic = [cls for cls in events if cls.topic == topic]
        for service in sorted({cls.event_service for cls in on_topic}):
            sent = [cls.event_type for cls in on_topic if cls.event_service == service]
            operations[f"{service}.send.{topic}"] = {
                "action": "send",
                "title": f"{service} publishes on {topic}",
                "summary": f"The {service} service publishes these events through its transactional outbox.",
                "channel": {"$ref": f"#/channels/{topic}"},
                "messages": [{"$ref": f"#/channels/{topic}/messages/{mid}"} for mid in sent],
            }
        dlq = topic + DLQ_SUFFIX
        operations[f"deadletter.send.{dlq}"] = {
            "action": "send",
            "title": f"Consumers park failed records of {topic}",
            "summary": "A consumer's event bus republishes a record here after its retries ran out.",
            "channel": {"$ref": f"#/channels/{dlq}"},
            "messages": [
                {"$ref": f"#/channels/{dlq}/messages/{cls.event_type}{DEAD_LETTER_SUFFIX}"}
                for cls in on_topic
            ],
        }
    return operations


def _component_schemas() -> dict[str, Any]:
    return {
        "CloudEventsHeaders": _headers_schema("CloudEvents binary-mode headers of every record."),
        "DeadLetterHeaders": {
            **_headers_schema(
                "The original record's headers plus the error headers the consumer's event bus adds. "
                "A record that could not even be read keeps whatever headers it came with, so only the "
                "error headers are certain.",
                HEADERS + DEAD_LETTER_HEADERS,
            ),
            "required": [name for name, _, _ in DEAD_LETTER_HEADERS],
            "additionalProperties": {"type": "string"},
        },
    }


def _headers_schema(description: str, headers: tuple[tuple[str, str, bool], ...] = HEADERS) -> dict[str, Any]:
    properties: dict[str, dict[str, str]] = {
        name: {"type": "string", "description": text} for name, text, _ in headers
    }
    properties["ce_specversion"]["const"] = "1.0"
    properties["ce_time"]["format"] = "date-time"
    return {
        "type": "object",
        "description": description,
        "properties": properties,
        "required": [name for name, _, required in headers if required],
        "additionalProperties": False,
    }


def _message(cls: type[Event], *, dead_letter: bool) -> dict[str, Any]:
    base = "DeadLetterHeaders" if dead_letter else "CloudEventsHeaders"
    first_paragraph = (cls.__doc__ or cls.event_name).strip().split("\n\n")[0]
    summary = " ".join(line.strip() for line in first_paragraph.splitlines())
    return {
        "name": cls.event_name,
        "title": f"{cls.event_name} v{cls.event_version}" + (" (dead letter)" if dead_letter else ""),
        "summary": summary,
        **({"description": DEAD_LETTER_NOTE} if dead_letter else {}),
        "contentType": "application/json",
        "headers": {
            "allOf": [
                {"$ref": f"#/components/schemas/{base}"},
                {"properties": {"ce_type": {"const": cls.event_type}}},
            ]
        },
        "payload": {
            "schemaFormat": SCHEMA_FORMAT,
            "schema": {"$ref": f"{SCHEMA_DIR}/{event_schema_path(cls)}"},
        },
        "bindings": {
            "kafka": {
                "key": {
                    "type": "string",
                    "description": f"The event's `{cls.key_field}` field; ordering is guaranteed per key.",
                },
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
        "x-cloudevents-type": cls.event_type,
        "x-partition-key-field": cls.key_field,
    }


_PLAIN = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$./\-]*$")
_YAML_WORDS = frozenset({"true", "false", "null", "yes", "no", "on", "off", "y", "n"})


def to_yaml(document: Any, *, header: str = "") -> str:
    """Block-style YAML of plain data (dicts, lists, str, int, bool, None) in insertion order; strings quoted
    as JSON unless plainly safe, so every YAML 1.1 or 1.2 reader reads back the same data."""
    lines = [f"# {line}" for line in header.splitlines()]
    _emit(document, 0, lines)
    return "\n".join(lines) + "\n"


def _emit(value: Any, indent: int, lines: list[str]) -> None:
    pad = " " * indent
    if isinstance(value, dict) and value:
        for key, child in value.items():
            if _is_block(child):
                lines.append(f"{pad}{_scalar(str(key))}:")
                _emit(child, indent + 2, lines)
            elif _is_literal(child):
                lines.append(f"{pad}{_scalar(str(key))}: |{'' if child.endswith(chr(10)) else '-'}")
                lines.extend(f"{pad}  {line}" if line else "" for line in child.splitlines())
            else:
                lines.append(f"{pad}{_scalar(str(key))}: {_scalar(child)}")
    elif isinstance(value, list) and value:
        for item in value:
            if _is_block(item):
                nested: list[str] = []
                _emit(item, indent + 2, nested)
                nested[0] = f"{pad}- {nested[0][indent + 2 :]}"
                lines.extend(nested)
            else:
                lines.append(f"{pad}- {_scalar(item)}")
    else:
        lines.append(f"{pad}{_scalar(value)}")


def _is_literal(value: Any) -> bool:
    """A multi-line string that a literal block scalar (`|` or `|-`) carries unchanged."""
    if not isinstance(value, str) or "\n" not in value.rstrip("\n") or value.endswith("\n\n"):
        return False
    lines = value.splitlines()
    return (
        not lines[0].startswith(" ")
        and all(line == line.rstrip() and line.isprintable() for line in lines)
        and "\r" not in value
    )


def _is_block(value: Any) -> bool:
    return isinstance(value, dict | list) and bool(value)


def _scalar(value: Any) -> str:
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    if isinstance(value, str):
        if _PLAIN.match(value) and value.lower() not in _YAML_WORDS:
            return value
        return json.dumps(value, ensure_ascii=False)
    if value is None or isinstance(value, bool | int | float):
        return json.dumps(value)
    raise TypeError(f"cannot write {type(value).__name__} as YAML")
