"""Compatibility with released schemas: optional additions and documentation pass, the rest breaks."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

Schema = dict[str, Any]

# Keywords that only document; changing them changes no accepted value.
ANNOTATIONS = frozenset(
    {"title", "description", "examples", "$comment", "deprecated", "readOnly", "writeOnly", "$schema", "$id"}
)
# Keywords compared structurally below rather than by equality.
STRUCTURAL = frozenset(
    {
        "$ref",
        "$defs",
        "allOf",
        "anyOf",
        "oneOf",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "prefixItems",
        "x-cityblocks",
    }
)
# Routing metadata whose change moves the event to other consumers or reorders it.
ROUTING = ("topic", "key")
NEW_VERSION_HINT = (
    "a breaking change needs a new type: add the class again with version=N+1 and keep the old one"
)
_MAX_REF_DEPTH = 64


@dataclass(frozen=True, order=True)
class Incompatibility:
    """One breaking difference: which schema, where in it (a JSON pointer), and why."""

    schema: str
    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.schema} at {self.path or '/'}: {self.reason}"


def breaking_changes(released: Schema, current: Schema) -> list[Incompatibility]:
    """Every breaking change from the released schema of a type to its current one (same type and version)."""
    walker = _Walker(str(current.get("$id", released.get("$id", ""))), released, current)
    walker.compare_routing()
    walker.compare(released, current, "")
    return sorted(set(walker.found))


def compare_catalogue(
    released: Mapping[str, Schema], current: Mapping[str, Schema], *, retired: Collection[str] = ()
) -> list[Incompatibility]:
    """Breaking changes over catalogues keyed by schema path; a released type may only go when retired."""
    found: list[Incompatibility] = []
    for path, old in sorted(released.items()):
        type_name = str(old.get("$id", path))
        if path not in current:
            if type_name not in retired and path not in retired:
                found.append(
                    Incompatibility(type_name, "", "released event type was removed (retire it by release)")
                )
            continue
        found.extend(breaking_changes(old, current[path]))
    return found


class _Walker:
    def __init__(self, name: str, old_root: Schema, new_root: Schema) -> None:
        self.name = name
        self.old_root = old_root
        self.new_root = new_root
        self.found: list[Incompatibility] = []
        self._visiting: set[tuple[str, str]] = set()

    def breaks(self, path: str, reason: str) -> None:
        self.found.append(Incompatibility(self.name, path, reason))

    def compare_routing(self) -> None:
        old_meta = self.old_root.get("x-cityblocks", {})
        new_meta = self.new_root.get("x-cityblocks", {})
        for field in ROUTING:
            if old_meta.get(field) != new_meta.get(field):
                self.breaks(
                    f"/x-cityblocks/{field}",
                    f"{field} changed from {old_meta.get(field)!r} to {new_meta.get(field)!r}",
                )

    def compare(self, old: Schema, new: Schema, path: str) -> None:
        pair = (str(old.get("$ref")), str(new.get("$ref")))
        if "$ref" in old and "$ref" in new:
            if pair in self._visiting:
                return  # a recursive model: this pair is already being compared further up
            self._visiting.add(pair)
        try:
            self._compare_resolved(old, new, path)
        finally:
            self._visiting.discard(pair)

    def _compare_resolved(self, old: Schema, new: Schema, path: str) -> None:
        old = _resolve(old, self.old_root)
        new = _resolve(new, self.new_root)
        if _union_keyword(old) or _union_keyword(new):
            # the variants carry the types, so a bare type beside a union is compared variant by variant
            self._compare_keywords(old, new, path, ignore=frozenset({"type"}))
            self._compare_unions(old, new, path)
        else:
            self._compare_keywords(old, new, path)
            self._compare_objects(old, new, path)
            self._compare_arrays(old, new, path)

    def _compare_keywords(
        self, old: Schema, new: Schema, path: str, ignore: frozenset[str] = frozenset()
    ) -> None:
        ignored = ANNOTATIONS | STRUCTURAL | ignore
        old, new = _normalised(old), _normalised(new)
        for keyword in sorted((old.keys() | new.keys()) - ignored):
            if keyword.startswith("x-"):
                continue
            before, after = old.get(keyword, _ABSENT), new.get(keyword, _ABSENT)
            if before != after:
                self.breaks(f"{path}/{keyword}", _keyword_change(keyword, before, after))

    def _compare_unions(self, old: Schema, new: Schema, path: str) -> None:
        old_variants = _variants(old, self.old_root)
        new_variants = _variants(new, self.new_root)
        old_null, new_null = _is_nullable(old_variants), _is_nullable(new_variants)
        if old_null and not new_null:
            self.breaks(path, "no longer nullable")
        elif new_null and not old_null:
            self.breaks(path, "became nullable")
        old_rest = [v for v in old_variants if v.get("type") != "null"]
        new_rest = [v for v in new_variants if v.get("type") != "null"]
        if len(old_rest) != len(new_rest):
            self.breaks(path, f"union changed from {len(old_rest)} to {len(new_rest)} non-null variants")
            return
        old_kw, new_kw = _union_keyword(old), _union_keyword(new)
        if len(old_rest) > 1 and old_kw != new_kw:
            self.breaks(path, f"union keyword changed from {old_kw} to {new_kw}")
        for index, (before, after) in enumerate(zip(old_rest, new_rest, strict=True)):
            variant_path = f"{path}/{new_kw or old_kw}/{index}" if len(new_rest) > 1 else path
            self.compare(before, after, variant_path)

    def _compare_objects(self, old: Schema, new: Schema, path: str) -> None:
        old_props: dict[str, Schema] = old.get("properties", {})
        new_props: dict[str, Schema] = new.get("properties", {})
        old_required, new_required = set(old.get("required", [])), set(new.get("required", []))
        for name in sorted(old_props):
            prop_path = f"{path}/properties/{name}"
            if name not in new_props:
                self.breaks(prop_path, "property removed (a rename is a removal and an addition)")
            else:
                self.compare(old_props[name], new_props[name], prop_path)
        for name in sorted(new_props.keys() - old_props.keys()):
            if name in new_required:
                self.breaks(f"{path}/properties/{name}", "required property added")
        for name in sorted((new_required - old_required) & old_props.keys()):
            self.breaks(f"{path}/properties/{name}", "optional property became required")
        for name in sorted((old_required - new_required) & new_props.keys()):
            self.breaks(f"{path}/properties/{name}", "required property became optional")
        self._compare_additional(old, new, path)

    def _compare_additional(self, old: Schema, new: Schema, path: str) -> None:
        before = old.get("additionalProperties", True)
        after = new.get("additionalProperties", True)
        if isinstance(before, dict) and isinstance(after, dict):
            self.compare(before, after, f"{path}/additionalProperties")
        elif before is False and after is not False:
            self.breaks(path, "object opened: additionalProperties is no longer false")
        elif after is False and before is not False:
            self.breaks(path, "object closed: additionalProperties became false")
        elif before != after:
            self.breaks(f"{path}/additionalProperties", "additional properties' schema changed")

    def _compare_arrays(self, old: Schema, new: Schema, path: str) -> None:
        before, after = old.get("items"), new.get("items")
        if isinstance(before, dict) and isinstance(after, dict):
            self.compare(before, after, f"{path}/items")
        elif before != after:
            self.breaks(f"{path}/items", "array items changed")
        old_prefix: list[Schema] = old.get("prefixItems", [])
        new_prefix: list[Schema] = new.get("prefixItems", [])
        if len(old_prefix) != len(new_prefix):
            self.breaks(
                f"{path}/prefixItems", f"tuple length changed from {len(old_prefix)} to {len(new_prefix)}"
            )
            return
        for index, (first, second) in enumerate(zip(old_prefix, new_prefix, strict=True)):
            self.compare(first, second, f"{path}/prefixItems/{index}")


class _Absent:
    def __repr__(self) -> str:
        return "absent"


_ABSENT = _Absent()


def _keyword_change(keyword: str, before: Any, after: Any) -> str:
    if keyword == "enum" and isinstance(before, list) and isinstance(after, list):
        removed = [v for v in before if v not in after]
        added = [v for v in after if v not in before]
        parts = []
        if removed:
            parts.append(f"enum narrowed: removed {removed!r}")
        if added:
            parts.append(f"enum widened: added {added!r} (readers of the released version reject them)")
        return "; ".join(parts) or "enum changed"
    label = {"type": "type", "format": "format", "const": "constant", "default": "default"}.get(
        keyword, keyword
    )
    return f"{label} changed from {before!r} to {after!r}"


def _normalised(node: Schema) -> Schema:
    """Spellings that accept the same values, made equal.

    A const is a one-value enum (pydantic writes `Literal["a"]` as a const); a discriminator counts by its
    property name only, as its mapping names `$defs`, which may be renamed freely.
    """
    node = dict(node)
    if "const" in node and "enum" not in node:
        node["enum"] = [node.pop("const")]
    if isinstance(node.get("discriminator"), dict):
        node["discriminator"] = node["discriminator"].get("propertyName")
    return node


def _union_keyword(node: Schema) -> str | None:
    for keyword in ("anyOf", "oneOf"):
        if keyword in node:
            return keyword
    return None


def _variants(node: Schema, root: Schema) -> list[Schema]:
    keyword = _union_keyword(node)
    if keyword is None:
        return [node]
    variants: list[Schema] = []
    for variant in node[keyword]:
        resolved = _resolve(variant, root)
        # a nested union flattens into the outer one (pydantic nests Optional[Union[...]] that way)
        variants.extend(_variants(resolved, root) if _union_keyword(resolved) else [variant])
    return variants


def _is_nullable(variants: list[Schema]) -> bool:
    return any(v.get("type") == "null" for v in variants)


def _resolve(node: Schema, root: Schema) -> Schema:
    """Follow local `$ref`s and single-member `allOf`s, keeping sibling keywords (they refine the target)."""
    for _ in range(_MAX_REF_DEPTH):
        if "$ref" in node:
            siblings = {k: v for k, v in node.items() if k != "$ref"}
            node = {**_pointer(root, str(node["$ref"])), **siblings}
        elif isinstance(node.get("allOf"), list) and len(node["allOf"]) == 1:
            siblings = {k: v for k, v in node.items() if k != "allOf"}
            node = {**node["allOf"][0], **siblings}
        else:
            return node
    raise ValueError(f"$ref chain deeper than {_MAX_REF_DEPTH}")


def _pointer(root: Schema, ref: str) -> Schema:
    if not ref.startswith("#"):
        raise ValueError(f"only local $refs are supported, not {ref!r}")
    target: Any = root
    for token in filter(None, ref[1:].split("/")):
        target = target[token.replace("~1", "/").replace("~0", "~")]
    if not isinstance(target, dict):
        raise ValueError(f"$ref {ref!r} does not point at a schema")
    return target
