"""The JSON-LD contexts: every field of every event payload expands to an absolute IRI (checked with pyld)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyld import jsonld

from contracts import jsonld as contexts
from contracts.base import Event
from contracts.registry import catalogue
from contracts.schemas import all_schemas

Schema = Mapping[str, Any]
EVENTS = [event for event in catalogue().values() if event.event_service in contexts.SERVICES]
CONTEXTS = {service: contexts.context_for(service) for service in contexts.SERVICES}


def full(schema: Schema, defs: Schema) -> st.SearchStrategy[Any]:
    """Valid values with every optional property present and every list non-empty, so every field is seen."""
    if "$ref" in schema:
        return full(defs[schema["$ref"].rsplit("/", 1)[1]], defs)
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [option for option in schema[key] if option.get("type") != "null"]
            return st.one_of([full(option, defs) for option in options])
    kind = schema.get("type")
    if kind == "object":
        properties = schema.get("properties", {})
        return st.fixed_dictionaries({name: full(node, defs) for name, node in properties.items()})
    if kind == "array":
        low = max(1, schema.get("minItems", 0))
        return st.lists(full(schema.get("items", {}), defs), min_size=low, max_size=max(low, 2))
    if kind == "string":
        form = schema.get("format")
        if form == "uuid":
            return st.uuids().map(str)
        if form == "date-time":
            return st.just("2026-11-27T09:30:00+01:00")
        if form == "date":
            return st.just("2026-11-27")
        if "pattern" in schema:
            return st.from_regex(schema["pattern"], fullmatch=True)
        low = max(1, schema.get("minLength", 0))
        high = max(low, min(20, schema.get("maxLength", 20)))
        return st.text("abcdefghij klm", min_size=low, max_size=high)
    if kind == "integer":
        low = max(schema.get("minimum", 0), schema.get("exclusiveMinimum", -1) + 1)
        return st.integers(low, schema.get("maximum", 10_000))
    if kind == "number":
        return st.floats(schema.get("minimum", 0), schema.get("maximum", 90), allow_nan=False)
    if kind == "boolean":
        return st.booleans()
    raise AssertionError(f"no sample for schema node {schema}")


def event_schema(event: type[Event]) -> Schema:
    return all_schemas([event])[f"{event.event_service}/{event.event_name}.v{event.event_version}.json"]


def absolute(term: str, context: Mapping[str, Any]) -> str:
    """The IRI a term stands for, resolved from its compact form (prefix:suffix) in the context."""
    definition = context["@context"].get(term)
    compact = definition["@id"] if isinstance(definition, dict) else definition
    if not isinstance(compact, str) or ":" not in compact:
        return ""
    prefix, suffix = compact.split(":", 1)
    namespace = context["@context"].get(prefix)
    return namespace + suffix if isinstance(namespace, str) else compact


def unmapped(
    node: Mapping[str, Any], expanded: Mapping[str, Any], context: Mapping[str, Any], path: str
) -> list[str]:
    """Fields of `node` that did not survive expansion as absolute IRIs (JSON-LD drops unmapped keys)."""
    missing: list[str] = []
    for key, value in node.items():
        if value is None or value == []:
            continue
        where = f"{path}.{key}"
        iri = absolute(key, context)
        if not iri.startswith(("http://", "https://")) or iri not in expanded:
            missing.append(where)
            continue
        values = value if isinstance(value, list) else [value]
        for item, expanded_item in zip(values, expanded[iri], strict=True):
            if isinstance(item, dict):
                missing.extend(unmapped(item, expanded_item, context, where))
    return missing


@pytest.mark.parametrize("event", EVENTS, ids=lambda event: event.event_type)
@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_event_field_expands_to_an_iri(event: type[Event], data: st.DataObject) -> None:
    schema = event_schema(event)
    payload = data.draw(full(schema, schema.get("$defs", {})))
    event.model_validate(payload)  # a real payload of this event type
    context = CONTEXTS[event.event_service]
    expanded = jsonld.expand({**context, "@type": event.event_name, **payload})
    assert len(expanded) == 1
    node = expanded[0]
    assert node["@type"] == [contexts.PROJECT_NAMESPACE + event.event_name]
    assert unmapped(payload, node, context, event.event_name) == []


def test_typed_values_carry_their_xsd_type() -> None:
    context = contexts.context_for("mobility-credit")
    expanded = jsonld.expand({**context, "consumed_at": "2026-11-27T09:30:00+01:00", "total_cents": 250})
    iri = absolute("consumed_at", context)
    assert expanded[0][iri] == [
        {"@type": "http://www.w3.org/2001/XMLSchema#dateTime", "@value": "2026-11-27T09:30:00+01:00"}
    ]


def test_a_field_without_a_decided_term_fails() -> None:
    class Unmapped(Event, service="market", topic="market.test", key="surprise_id"):
        surprise_id: str

    with pytest.raises(contexts.UnmappedField, match="surprise_id"):
        contexts.context_for("market", [Unmapped])


def test_published_profiles_are_used_where_recognised() -> None:
    trip = absolute("consumed_at", contexts.context_for("mobility-credit"))
    assert trip.startswith("https://data.vlaanderen.be/ns/")
    stall = absolute("length_cm", contexts.context_for("market"))
    assert stall.startswith(contexts.PROJECT_NAMESPACE)
