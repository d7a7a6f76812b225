"""Every event in the catalogue is routable, unique, travels in an envelope and matches its JSON Schema."""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Literal

import hypothesis
import jsonschema
import pytest
from hypothesis import Phase
from hypothesis import strategies as st
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from contracts import registry
from contracts.base import Event
from contracts.envelope import Envelope
from contracts.schemas import OpenObjectError, all_schemas, envelope_schema, event_schema, event_schema_path

EVENTS = sorted(registry.catalogue().values(), key=lambda cls: cls.event_type)


class Fee(enum.StrEnum):
    DAILY = "daily"
    SEASON = "season"


class Stall(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    number: int = Field(ge=1)
    width_cm: int = Field(gt=0, le=2_000)
    trader_kbo: str | None = Field(default=None, pattern=r"^0[0-9]{9}$")


class StallsAllocatedExample(Event, service="example", topic="example.market-days", key="market_day_id"):
    """An event shaped like the real ones to come, so the schema and sample machinery meet every construct."""

    market_day_id: uuid.UUID
    municipality_nis: str = Field(pattern=r"^[0-9]{5}$")
    held_on: date
    allocated_at: AwareDatetime
    fee: Fee
    fee_total: Decimal
    stalls: list[Stall] = Field(min_length=1)
    reserve: Stall | None = None
    per_category: dict[str, int] = Field(default_factory=dict)
    kind: Literal["weekly", "yearly"] = "weekly"
    window: tuple[int, int] = (8, 13)


SHAPED = [*EVENTS, StallsAllocatedExample]
FORMATS = {
    "date-time": "2026-05-01T08:30:00Z",
    "date": "2026-05-01",
    "time": "08:30:00Z",
    "uuid": "0b0f6c8e-6f4e-4f8e-9a3c-1d2e3f4a5b6c",
    "email": "someone@example.org",
    "uri": "https://example.org/thing",
    "duration": "PT1H",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
    "hostname": "example.org",
}


def _validator(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def _sample(schema: dict[str, Any], root: dict[str, Any]) -> Any:
    """A small valid value for a schema: its first example if it has one, else one made from its keywords."""
    if "$ref" in schema:
        target: Any = root
        for token in schema["$ref"].lstrip("#/").split("/"):
            target = target[token]
        return _sample(target, root)
    if schema.get("examples"):
        return schema["examples"][0]
    for keyword in ("const", "default"):
        if keyword in schema:
            return schema[keyword]
    if "enum" in schema:
        return schema["enum"][0]
    for keyword in ("anyOf", "oneOf"):
        if keyword in schema:
            variants = [v for v in schema[keyword] if v.get("type") != "null"] or schema[keyword]
            return _sample(variants[0], root)
    return _sample_of_type(schema, root)


def _sample_of_type(schema: dict[str, Any], root: dict[str, Any]) -> Any:
    kind = schema.get("type")
    if kind == "object":
        return {name: _sample(schema["properties"][name], root) for name in schema.get("required", [])}
    if kind == "array":
        return [_sample(schema.get("items", {}), root) for _ in range(schema.get("minItems", 0))]
    if kind == "string":
        if "format" in schema:
            assert schema["format"] in FORMATS, f"no sample of {schema['format']}: give the field an example"
            return FORMATS[schema["format"]]
        if "pattern" in schema:
            return _matching(schema["pattern"], schema.get("minLength", 0), schema.get("maxLength", 10_000))
        return "x" * max(schema.get("minLength", 1), 1)
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", -1) + 1)
        return max(low, 0) if "maximum" not in schema else min(max(low, 0), schema["maximum"])
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    raise AssertionError(f"cannot make a sample for {schema}; give the field an example")


def _matching(pattern: str, shortest: int, longest: int) -> str:
    """The simplest string that matches a pattern within the length bounds (hypothesis shrinks to it)."""
    settings = hypothesis.settings(database=None, max_examples=500, phases=[Phase.generate, Phase.shrink])
    strings = st.from_regex(pattern, fullmatch=True)
    return hypothesis.find(strings, lambda text: shortest <= len(text) <= longest, settings=settings)


def sample_event(cls: type[Event]) -> Event:
    schema = event_schema(cls)
    return cls.model_validate(_sample(schema, schema))


def test_the_catalogue_holds_the_probe_event() -> None:
    assert "be.cityblocks.probe.ProbeRecorded.v1" in registry.catalogue()


def test_catalogue_skips_the_tooling_modules() -> None:
    assert {"schemas", "asyncapi", "compat", "tools"}.isdisjoint(registry.event_modules())


@pytest.mark.parametrize("cls", EVENTS, ids=lambda cls: cls.event_type)
def test_event_type_names_its_service_name_and_version(cls: type[Event]) -> None:
    assert cls.event_type == f"be.cityblocks.{cls.event_service}.{cls.__name__}.v{cls.event_version}"
    assert registry.event_class(cls.event_type) is cls


@pytest.mark.parametrize("cls", EVENTS, ids=lambda cls: cls.event_type)
def test_event_has_a_topic_and_a_required_key_field(cls: type[Event]) -> None:
    assert cls.topic and not cls.topic.endswith(".dlq")
    assert cls.topic in registry.topics()
    assert cls.key_field in event_schema(cls).get("required", []), "the partition key must always be present"


def test_event_types_and_schema_paths_are_unique() -> None:
    assert len({cls.event_type for cls in EVENTS}) == len(EVENTS)
    assert len({event_schema_path(cls) for cls in EVENTS}) == len(EVENTS)


@pytest.mark.parametrize("cls", EVENTS, ids=lambda cls: cls.event_type)
def test_event_round_trips_through_the_envelope(cls: type[Event]) -> None:
    event = sample_event(cls)
    envelope = Envelope.wrap(
        event,
        source=f"/cityblocks/{cls.event_service}",
        tenant="44021",
        traceparent=f"00-{'a' * 32}-{'b' * 16}-01",
    )

    over_the_wire = Envelope.from_attributes(
        envelope.attributes(),
        topic=envelope.topic,
        data=Envelope.model_validate_json(envelope.model_dump_json()).data,
    )

    assert over_the_wire == envelope
    assert envelope.topic == cls.topic
    assert envelope.partitionkey == event.partition_key()
    assert registry.decode(over_the_wire) == event


@pytest.mark.parametrize("cls", SHAPED, ids=lambda cls: cls.event_type)
def test_valid_event_data_matches_its_schema(cls: type[Event]) -> None:
    validator = _validator(event_schema(cls))

    validator.validate(sample_event(cls).model_dump(mode="json"))


@pytest.mark.parametrize("cls", SHAPED, ids=lambda cls: cls.event_type)
def test_schema_rejects_unknown_fields(cls: type[Event]) -> None:
    validator = _validator(event_schema(cls))
    data = {**sample_event(cls).model_dump(mode="json"), "unexpected_field": 1}

    errors = list(validator.iter_errors(data))

    assert [e.validator for e in errors] == ["additionalProperties"]


@pytest.mark.parametrize("cls", SHAPED, ids=lambda cls: cls.event_type)
def test_schema_rejects_missing_key_field(cls: type[Event]) -> None:
    data = sample_event(cls).model_dump(mode="json")
    del data[cls.key_field]

    assert not _validator(event_schema(cls)).is_valid(data)


def test_probe_schema_rejects_a_wrong_type_and_a_broken_constraint() -> None:
    validator = _validator(event_schema(registry.event_class("be.cityblocks.probe.ProbeRecorded.v1")))

    assert validator.is_valid({"stream": "s", "seq": 0, "recorded_at": None})
    assert not validator.is_valid({"stream": "s", "seq": "0"})
    assert not validator.is_valid({"stream": "", "seq": 0})
    assert not validator.is_valid({"stream": "s", "seq": -1})


def test_envelope_json_matches_the_envelope_schema() -> None:
    probe = registry.event_class("be.cityblocks.probe.ProbeRecorded.v1")
    envelope = Envelope.wrap(
        sample_event(probe), source="/cityblocks/probe", tenant="44021", time=datetime(2026, 5, 1, tzinfo=UTC)
    )
    validator = _validator(envelope_schema())

    validator.validate(envelope.model_dump(mode="json"))
    assert not validator.is_valid({**envelope.model_dump(mode="json"), "colour": "red"})


def test_nested_models_are_closed_in_the_schema() -> None:
    from pydantic import BaseModel

    class Stall(BaseModel):
        number: int

    class StallsCounted(Event, service="test", topic="test.stalls", key="market_id"):
        market_id: uuid.UUID
        stalls: list[Stall]

    schema = event_schema(StallsCounted)

    assert schema["$defs"]["Stall"]["additionalProperties"] is False
    assert not _validator(schema).is_valid(
        {"market_id": str(uuid.uuid4()), "stalls": [{"number": 1, "x": 2}]}
    )


def test_an_event_with_an_open_object_is_refused() -> None:
    class Anything(Event, service="test", topic="test.anything", key="thing_id"):
        thing_id: str
        extra: dict[str, Any]

    with pytest.raises(OpenObjectError, match="/properties/extra"):
        event_schema(Anything)


def test_schemas_carry_their_type_as_id_and_draft_2020_12() -> None:
    for path, schema in all_schemas().items():
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema", path
        assert schema["$id"].startswith("be.cityblocks."), path
