"""Events generated from the contracts' JSON Schemas, and broken ones, fed to every consumer of the platform.

Broken events (a required field missing, a field of the wrong type, an unknown event type) land in the
dead letters of every service that subscribes, with the validation error, and change nothing. Events true
to the schema are applied or dead-lettered with a reason, never lost; so are events with a field a newer
producer added, since consumers are tolerant readers. A sentinel sent last is applied by every consumer:
the consumers went on.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from cityblocks.embedded import MountedService, build_platform
from contracts.base import Event
from contracts.envelope import Envelope
from contracts.probe import ProbeRecorded
from eventbus.tables import dead_letters, inbox

pytestmark = pytest.mark.fuzz

TENANT = "71022"
Schema = Mapping[str, Any]


def strategy(schema: Schema, defs: Schema) -> st.SearchStrategy[Any]:
    """Values valid for a JSON Schema node, as far as pydantic's schemas go (refs, unions, formats)."""
    if "$ref" in schema:
        return strategy(defs[schema["$ref"].rsplit("/", 1)[1]], defs)
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return st.one_of([strategy(option, defs) for option in schema[key]])
    if "allOf" in schema and len(schema["allOf"]) == 1:
        return strategy(schema["allOf"][0], defs)
    kind = schema.get("type")
    if kind == "object":
        return objects(schema, defs)
    if kind == "array":
        low, high = schema.get("minItems", 0), min(schema.get("maxItems", 3), 3)
        return st.lists(strategy(schema.get("items", {}), defs), min_size=low, max_size=max(low, high))
    if kind == "string":
        return strings(schema)
    if kind == "integer":
        low = schema.get("minimum", schema.get("exclusiveMinimum", -(2**31) - 1) + 1)
        high = schema.get("maximum", schema.get("exclusiveMaximum", 2**31 + 1) - 1)
        return st.integers(low, high)
    if kind == "number":
        return st.floats(schema.get("minimum"), schema.get("maximum"), allow_nan=False, allow_infinity=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    return st.none()


def objects(schema: Schema, defs: Schema) -> st.SearchStrategy[dict[str, Any]]:
    properties = schema.get("properties", {})
    required = set(schema.get("required", ()))
    fixed = {name: strategy(node, defs) for name, node in properties.items() if name in required}
    optional = {name: strategy(node, defs) for name, node in properties.items() if name not in required}
    return st.fixed_dictionaries(fixed, optional=optional)


def strings(schema: Schema) -> st.SearchStrategy[str]:
    form = schema.get("format")
    if form == "uuid":
        return st.uuids().map(str)
    if form == "date-time":
        return st.datetimes(timezones=st.just(UTC)).map(datetime.isoformat)
    if form == "date":
        return st.dates().map(lambda day: day.isoformat())
    if form in ("time", "partial-time"):
        return st.times().map(lambda moment: moment.isoformat())
    if "pattern" in schema:
        return st.from_regex(str(schema["pattern"]), fullmatch=True)
    low, high = schema.get("minLength", 0), min(schema.get("maxLength", 20), 40)
    return st.text(alphabet=st.characters(codec="utf-8"), min_size=low, max_size=max(low, high))


def broken(data: dict[str, Any], schema: Schema) -> list[tuple[str, dict[str, Any]]]:
    """Variants of a valid payload that the schema refuses."""
    variants: list[tuple[str, dict[str, Any]]] = []
    required = list(schema.get("required", ()))
    if required:
        missing = dict(data)
        missing.pop(required[0])
        variants.append((f"missing {required[0]}", missing))
        variants.append((f"wrong type for {required[0]}", {**data, required[0]: {"nested": ["nonsense"]}}))
    return variants


def envelope(event_class: type[Event], data: dict[str, Any]) -> Envelope:
    key = data.get(event_class.key_field)
    return Envelope(
        id=str(uuid.uuid4()),
        source="/fuzz",
        type=event_class.event_type,
        time=datetime.now(UTC),
        tenant=TENANT,
        partitionkey=str(key) if key not in (None, "") else "fuzz",
        topic=event_class.topic,
        data=data,
    )


def subscribers(services: list[MountedService]) -> dict[type[Event], list[MountedService]]:
    found: dict[type[Event], list[MountedService]] = {}
    for service in services:
        for event_class in service.app.state.spec.subscriptions:
            found.setdefault(event_class, []).append(service)
    return found


async def settled(service: MountedService, event_ids: set[str]) -> tuple[set[str], dict[str, str]]:
    """Of `event_ids`: those the service applied (inbox) and those it dead-lettered (with the error)."""
    context = service.app.state.context
    async with context.sessionmaker() as session:
        consumer = context.consumer.name
        applied = await session.execute(
            select(inbox.c.event_id).where(inbox.c.consumer == consumer, inbox.c.event_id.in_(event_ids))
        )
        dead = await session.execute(
            select(dead_letters.c.event_id, dead_letters.c.error).where(
                dead_letters.c.consumer == consumer, dead_letters.c.event_id.in_(event_ids)
            )
        )
        return {row[0] for row in applied}, {row[0]: row[1] for row in dead}


async def feed(data_dir: Path, draw: Any) -> None:
    platform = build_platform(data_dir)
    async with platform.router.lifespan_context(platform):
        by_type = subscribers(platform.state.services)
        assert by_type, "no service subscribes to anything"
        valid: dict[str, type[Event]] = {}
        refused: dict[str, str] = {}
        batch: list[Envelope] = []
        for event_class in by_type:
            schema = event_class.model_json_schema()
            data = draw(strategy(schema, schema.get("$defs", {})))
            sent = envelope(event_class, data)
            newer = envelope(event_class, {**data, "added_by_a_newer_producer": "ignored"})
            valid[sent.id] = valid[newer.id] = event_class
            batch += [sent, newer]
            for reason, variant in broken(data, schema):
                bad = envelope(event_class, variant)
                refused[bad.id] = f"{event_class.__name__}: {reason}"
                batch.append(bad)
        stranger = next(iter(by_type))
        unknown = envelope(stranger, {}).model_copy(update={"type": "be.cityblocks.fuzz.NeverDeclared.v1"})
        batch.append(unknown)
        sentinel = Envelope.wrap(ProbeRecorded(stream="sentinel", seq=1), source="/fuzz", tenant=TENANT)
        await platform.state.bus.publish([*batch, sentinel])
        await asyncio.wait_for(everyone_applied(by_type.get(ProbeRecorded, []), sentinel.id), 120)
        problems: list[str] = []
        for event_class, services in by_type.items():
            ids = {i for i, c in valid.items() if c is event_class}
            ids |= {i for i, why in refused.items() if why.startswith(f"{event_class.__name__}:")}
            for service in services:
                applied, dead = await settled(service, ids)
                for event_id in ids:
                    if event_id in refused:
                        if event_id in applied or "ValidationError" not in dead.get(event_id, ""):
                            problems.append(f"{service.name} took {refused[event_id]}: {dead.get(event_id)}")
                    elif event_id not in applied and event_id not in dead:
                        problems.append(f"{service.name} lost a valid {event_class.__name__}")
        for service in {s.name: s for s in by_type[stranger]}.values():
            _, dead = await settled(service, {unknown.id})
            if "UnknownEventType" not in dead.get(unknown.id, ""):
                problems.append(f"{service.name} did not dead-letter an unknown event type: {dead}")
        assert not problems, "\n".join(problems)
        print(f"event fuzz: {len(valid)} valid and {len(refused)} broken events, {len(by_type)} event types")


async def everyone_applied(services: list[MountedService], event_id: str) -> None:
    while True:
        results = [await settled(service, {event_id}) for service in services]
        if all(event_id in applied for applied, _ in results):
            return
        await asyncio.sleep(0.2)


@settings(max_examples=2, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_every_consumer_dead_letters_broken_events_and_goes_on(
    data: st.DataObject, tmp_path_factory: pytest.TempPathFactory
) -> None:
    asyncio.run(feed(tmp_path_factory.mktemp("events"), data.draw))
