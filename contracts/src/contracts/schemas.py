"""JSON Schemas (draft 2020-12) of every contract event and of the envelope, made from the pydantic models."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel

from contracts.base import TYPE_PREFIX, Event
from contracts.envelope import Envelope

DRAFT = "https://json-schema.org/draft/2020-12/schema"
ENVELOPE_ID = f"{TYPE_PREFIX}.cloudevents.Envelope.v1"
ENVELOPE_PATH = "cloudevents/Envelope.v1.json"
RELEASED_DIR = "released"
GENERATED_NOTE = "Generated from the pydantic models by `python -m contracts.tools generate`; do not edit."

Schema = dict[str, Any]


class OpenObjectError(TypeError):
    """An event model holds an object that accepts arbitrary members, which a closed contract must not."""


def event_schema_path(cls: type[Event]) -> str:
    """Where the schema of an event type lives, relative to `contracts/schemas/`."""
    return f"{cls.event_service}/{cls.event_name}.v{cls.event_version}.json"


def event_schema(cls: type[Event]) -> Schema:
    """The closed JSON Schema of one event type; `$id` is its CloudEvents type."""
    schema = _model_schema(cls)
    open_paths = list(_open_objects(schema, ""))
    if open_paths:
        raise OpenObjectError(
            f"{cls.event_type}: open objects at {', '.join(open_paths)}; contracts are closed"
        )
    schema["$id"] = cls.event_type
    schema["x-cityblocks"] = {
        "service": cls.event_service,
        "topic": cls.topic,
        "key": cls.key_field,
        "public": cls.public,
    }
    return schema


def envelope_schema() -> Schema:
    """The JSON Schema of the envelope (structured mode); `data` is checked by the event type's own schema."""
    schema = _model_schema(Envelope)
    schema["$id"] = ENVELOPE_ID
    schema["properties"]["data"]["description"] = (
        "The event's data, valid against the schema whose $id is `type`."
    )
    return schema


def all_schemas(events: Iterable[type[Event]] | None = None) -> dict[str, Schema]:
    """Every schema by its path under `contracts/schemas/`: one per event type version, and the envelope."""
    if events is None:
        from contracts.registry import catalogue

        events = catalogue().values()
    found = {event_schema_path(cls): event_schema(cls) for cls in events}
    found[ENVELOPE_PATH] = envelope_schema()
    return dict(sorted(found.items()))


def render(schema: Schema) -> str:
    """Stable text of a schema: sorted keys, two-space indent, trailing newline."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _model_schema(model: type[BaseModel]) -> Schema:
    schema = model.model_json_schema(mode="validation")
    _close_objects(schema)
    schema["$schema"] = DRAFT
    schema["$comment"] = GENERATED_NOTE
    return schema


def subschemas(node: Schema, path: str = "") -> Iterable[tuple[str, Schema]]:
    """The direct subschemas of a schema and their JSON pointers, by keyword (so a field may be `items`)."""
    for keyword in ("properties", "$defs", "patternProperties"):
        for name, child in node.get(keyword, {}).items():
            yield f"{path}/{keyword}/{name}", child
    for keyword in ("items", "additionalProperties", "not", "contains", "propertyNames"):
        if isinstance(node.get(keyword), dict):
            yield f"{path}/{keyword}", node[keyword]
    for keyword in ("anyOf", "oneOf", "allOf", "prefixItems"):
        for index, child in enumerate(node.get(keyword, [])):
            yield f"{path}/{keyword}/{index}", child


def _close_objects(node: Schema) -> None:
    """Close every object that lists properties; sort `required` so field order does not churn the files."""
    if "properties" in node and "additionalProperties" not in node:
        node["additionalProperties"] = False
    if isinstance(node.get("required"), list):
        node["required"] = sorted(node["required"])
    for _, child in subschemas(node):
        _close_objects(child)


def _open_objects(node: Schema, path: str) -> Iterable[str]:
    if node.get("additionalProperties") is True or (
        node.get("type") == "object" and "properties" not in node and "additionalProperties" not in node
    ):
        yield path or "/"
    for child_path, child in subschemas(node, path):
        yield from _open_objects(child, child_path)
