"""The compatibility checker's verdicts: each breaking kind is caught, each allowed kind passes."""

from __future__ import annotations

import copy
from datetime import date, datetime
from typing import Any, Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field

from contracts.base import Event
from contracts.compat import breaking_changes, compare_catalogue
from contracts.schemas import event_schema


class Item(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    sku: str
    quantity: int


class ItemWithNote(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    sku: str
    quantity: int
    note: str | None = None


class ItemWithoutQuantity(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    sku: str


class ItemWithTextQuantity(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    sku: str
    quantity: str


class Base(Event, service="test", topic="test.orders", key="order_id"):
    order_id: str
    placed_on: date
    status: Literal["open", "closed"]
    amount_cents: int = Field(ge=0)
    items: list[Item]
    delivery: Item | None = None
    remark: str = Field(default="", max_length=200)


class Same(Event, service="test", topic="test.orders", key="order_id"):
    order_id: str
    placed_on: date
    status: Literal["open", "closed"]
    amount_cents: int = Field(ge=0)
    items: list[Item]
    delivery: Item | None = None
    remark: str = Field(default="", max_length=200)


class Documented(Event, service="test", topic="test.orders", key="order_id"):
    """A new docstring is documentation only."""

    order_id: str = Field(description="The order's UUID.", title="Order")
    placed_on: date = Field(examples=["2026-05-01"])
    status: Literal["open", "closed"]
    amount_cents: int = Field(ge=0, description="In euro cents.")
    items: list[Item]
    delivery: Item | None = None
    remark: str = Field(default="", max_length=200)


class OptionalAdded(Event, service="test", topic="test.orders", key="order_id"):
    order_id: str
    placed_on: date
    status: Literal["open", "closed"]
    amount_cents: int = Field(ge=0)
    items: list[Item]
    delivery: Item | None = None
    remark: str = Field(default="", max_length=200)
    channel: str | None = None


class NestedOptionalAdded(Event, service="test", topic="test.orders", key="order_id"):
    order_id: str
    placed_on: date
    status: Literal["open", "closed"]
    amount_cents: int = Field(ge=0)
    items: list[ItemWithNote]
    delivery: ItemWithNote | None = None
    remark: str = Field(default="", max_length=200)


class Removed(Event, service="test", topic="test.orders", key="order_id"):
    order_id: str
    placed_on: date
    status: Literal["open", "closed"]
    items: list[Item]
    delivery: Item | None = None
    remark: str = Field(default="", max_length=200)


class Renamed(Event, service="test", topic="test.orders", key="order_id"):
    order_id: str
    placed_on: date
    status: Literal["open", "closed"]
    total_cents: int = Field(ge=0)
    items: list[Item]
    delivery: Item | None = None
    remark: str = Field(default="", max_length=200)


class TypeChanged(Event, service="test", topic="test.orders", key="order_id"):
    order_id: str
    placed_on: date
    status: Literal["open", "closed"]
    amount_cents: str
    items: list[Item]
    delivery: Item | None = None
    remark: str = Field(default="", max_length=200)


class FormatChanged(Event, service="test", topic="test.orders", key="order_id"):
    order_id: str
    placed_on: datetime
    status: Literal["open", "closed"]
    amount_cents: int = Field(ge=0)
    items: list[Item]
    delivery: Item | None = None
    remark: str = Field(default="", max_length=200)


class EnumNarrowed(Event, service="test", topic="test.orders", key="order_id"):
    order_id: str
    placed_on: date
    status: Literal["open"]
    amount_cents: int = Field(ge=0)
    items: list[Item]
    delivery: Item | None = None
    remark: str = Field(default="", max_length=200)


class EnumWidened(Event, service="test", topic="test.orders", key="order_id"):
    order_id: str
    placed_on: date
    status: Literal["open", "closed", "lost"]
    amount_cents: int = Field(ge=0)
    items: list[Item]
    delivery: Item | None = None
    remark: str = Field(default="", max_length=200)


class BecameRequired(Event, service="test", topic="test.orders", key="order_id"):
    order_id: str
    placed_on: date
    status: Literal["open", "closed"]
    amount_cents: int = Field(ge=0)
    items: list[Item]
    delivery: Item | None = None
    remark: str = Field(max_length=200)


class RequiredAdded(Event, service="test", topic="test.orders", key="order_id"):
    order_id: str
    placed_on: date
    status: Literal["open", "closed"]
    amount_cents: int = Field(ge=0)
    items: list[Item]
    delivery: Item | None = None
    remark: str = Field(default="", max_length=200)
    currency: str


class NestedRemoved(Event, service="test", topic="test.orders", key="order_id"):
    order_id: str
    placed_on: date
    status: Literal["open", "closed"]
    amount_cents: int = Field(ge=0)
    items: list[ItemWithoutQuantity]
    delivery: ItemWithoutQuantity | None = None
    remark: str = Field(default="", max_length=200)


class ArrayItemTypeChanged(Event, service="test", topic="test.orders", key="order_id"):
    order_id: str
    placed_on: date
    status: Literal["open", "closed"]
    amount_cents: int = Field(ge=0)
    items: list[ItemWithTextQuantity]
    delivery: Item | None = None
    remark: str = Field(default="", max_length=200)


class NullableAdded(Event, service="test", topic="test.orders", key="order_id"):
    order_id: str
    placed_on: date
    status: Literal["open", "closed"]
    amount_cents: int | None = Field(ge=0)
    items: list[Item]
    delivery: Item | None = None
    remark: str = Field(default="", max_length=200)


class NullableRemoved(Event, service="test", topic="test.orders", key="order_id"):
    order_id: str
    placed_on: date
    status: Literal["open", "closed"]
    amount_cents: int = Field(ge=0)
    items: list[Item]
    delivery: Item = Item(sku="none", quantity=0)
    remark: str = Field(default="", max_length=200)


class ConstraintTightened(Event, service="test", topic="test.orders", key="order_id"):
    order_id: str
    placed_on: date
    status: Literal["open", "closed"]
    amount_cents: int = Field(ge=0)
    items: list[Item]
    delivery: Item | None = None
    remark: str = Field(default="", max_length=100)


class MovedTopic(Event, service="test", topic="test.purchases", key="order_id"):
    order_id: str
    placed_on: date
    status: Literal["open", "closed"]
    amount_cents: int = Field(ge=0)
    items: list[Item]
    delivery: Item | None = None
    remark: str = Field(default="", max_length=200)


class Rekeyed(Event, service="test", topic="test.orders", key="remark"):
    order_id: str
    placed_on: date
    status: Literal["open", "closed"]
    amount_cents: int = Field(ge=0)
    items: list[Item]
    delivery: Item | None = None
    remark: str = Field(default="", max_length=200)


def _with(schema: dict[str, Any], **changes: Any) -> dict[str, Any]:
    changed = copy.deepcopy(schema)
    changed.update(changes)
    return changed


ALLOWED = [
    pytest.param(Same, id="unchanged"),
    pytest.param(Documented, id="titles-descriptions-examples"),
    pytest.param(OptionalAdded, id="optional-property-added"),
    pytest.param(NestedOptionalAdded, id="optional-property-added-in-nested-model-and-array-items"),
]

BREAKING = [
    pytest.param(Removed, "/properties/amount_cents", "property removed", id="property-removed"),
    pytest.param(Renamed, "/properties/amount_cents", "property removed", id="property-renamed"),
    pytest.param(TypeChanged, "/properties/amount_cents/type", "type changed", id="type-changed"),
    pytest.param(FormatChanged, "/properties/placed_on/format", "format changed", id="format-changed"),
    pytest.param(EnumNarrowed, "/properties/status/enum", "enum narrowed", id="enum-narrowed"),
    pytest.param(EnumWidened, "/properties/status/enum", "enum widened", id="enum-widened"),
    pytest.param(
        BecameRequired, "/properties/remark", "optional property became required", id="became-required"
    ),
    pytest.param(RequiredAdded, "/properties/currency", "required property added", id="required-added"),
    pytest.param(
        NestedRemoved, "/properties/items/items/properties/quantity", "property removed", id="nested-removed"
    ),
    pytest.param(
        ArrayItemTypeChanged,
        "/properties/items/items/properties/quantity/type",
        "type changed",
        id="array-item-type-changed",
    ),
    pytest.param(NullableAdded, "/properties/amount_cents", "became nullable", id="nullable-added"),
    pytest.param(NullableRemoved, "/properties/delivery", "no longer nullable", id="nullable-removed"),
    pytest.param(ConstraintTightened, "/properties/remark/maxLength", "maxLength", id="constraint-changed"),
    pytest.param(MovedTopic, "/x-cityblocks/topic", "topic changed", id="topic-changed"),
    pytest.param(Rekeyed, "/x-cityblocks/key", "key changed", id="key-changed"),
]


@pytest.mark.parametrize("current", ALLOWED)
def test_compatible_change_passes(current: type[Event]) -> None:
    assert breaking_changes(event_schema(Base), event_schema(current)) == []


@pytest.mark.parametrize(("current", "path", "reason"), BREAKING)
def test_breaking_change_is_caught_where_it_happens(current: type[Event], path: str, reason: str) -> None:
    found = breaking_changes(event_schema(Base), event_schema(current))

    assert any(change.path == path and reason in change.reason for change in found), found


def test_opening_a_closed_object_breaks() -> None:
    released = event_schema(Base)

    found = breaking_changes(released, _with(released, additionalProperties=True))

    assert [(c.path, c.reason) for c in found] == [
        ("", "object opened: additionalProperties is no longer false")
    ]


def test_closing_an_open_object_breaks() -> None:
    released = _with(event_schema(Base), additionalProperties=True)

    found = breaking_changes(released, event_schema(Base))

    assert [c.reason for c in found] == ["object closed: additionalProperties became false"]


def test_closing_a_nested_object_breaks() -> None:
    released = event_schema(Base)
    current = copy.deepcopy(released)
    current["$defs"]["Item"]["additionalProperties"] = True

    found = breaking_changes(released, current)

    assert {c.path for c in found} == {"/properties/items/items", "/properties/delivery"}


def test_union_variant_change_breaks() -> None:
    released = {"type": "object", "properties": {"v": {"anyOf": [{"type": "integer"}, {"type": "string"}]}}}
    current = {"type": "object", "properties": {"v": {"anyOf": [{"type": "integer"}, {"type": "number"}]}}}

    found = breaking_changes(released, current)

    assert [(c.path, c.reason) for c in found] == [
        ("/properties/v/anyOf/1/type", "type changed from 'string' to 'number'")
    ]


def test_renamed_definition_with_the_same_shape_passes() -> None:
    released = event_schema(Base)
    current = copy.deepcopy(released)
    current["$defs"]["LineItem"] = current["$defs"].pop("Item")
    text = repr(current).replace("#/$defs/Item'", "#/$defs/LineItem'")
    current = eval(text)  # noqa: S307 - a literal of our own making

    assert breaking_changes(released, current) == []


def test_recursive_schema_is_compared_without_looping() -> None:
    node: dict[str, Any] = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}},
        },
        "additionalProperties": False,
    }
    released: dict[str, Any] = {"$defs": {"Node": node}, "$ref": "#/$defs/Node"}
    current = copy.deepcopy(released)
    current["$defs"]["Node"]["properties"]["name"]["type"] = "integer"

    found = breaking_changes(released, current)

    assert [c.path for c in found] == ["/properties/name/type"]


def test_removing_a_released_type_breaks_the_catalogue() -> None:
    released = {"test/Base.v1.json": event_schema(Base)}

    found = compare_catalogue(released, {})

    assert [c.reason for c in found] == ["released event type was removed (retire it by release)"]


def test_retired_type_may_leave_the_catalogue() -> None:
    released = {"test/Base.v1.json": event_schema(Base)}

    assert compare_catalogue(released, {}, retired=[Base.event_type]) == []


def test_breaking_change_as_a_new_version_passes_beside_the_old_one() -> None:
    class Order(Event, service="test", topic="test.orders", key="order_id", version=2):
        order_id: str
        total_cents: int

    released = {"test/Base.v1.json": event_schema(Base)}
    current = {"test/Base.v1.json": event_schema(Base), "test/Order.v2.json": event_schema(Order)}

    assert compare_catalogue(released, current) == []


def test_breaking_change_in_place_of_the_released_version_fails() -> None:
    released = {"test/Base.v1.json": event_schema(Base)}
    current = {"test/Base.v1.json": event_schema(Removed)}

    found = compare_catalogue(released, current)

    assert [c.path for c in found] == ["/properties/amount_cents"]
