"""Every field name of every service's API (its OpenAPI schemas) expands to an IRI in its context."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pyld import jsonld as pyld

from cityblocks.embedded import embedded_settings, load_specs
from contracts import jsonld
from servicekit.app import create_service_app
from servicekit.service import ServiceSpec

SPECS = load_specs()


def property_names(schema: Any, found: set[str]) -> set[str]:
    if isinstance(schema, dict):
        for name, node in (schema.get("properties") or {}).items():
            found.add(name)
            property_names(node, found)
        for key in ("items", "additionalProperties"):
            property_names(schema.get(key), found)
        for key in ("anyOf", "oneOf", "allOf"):
            for node in schema.get(key) or []:
                property_names(node, found)
    return found


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.name)
def test_every_api_field_maps_to_an_iri(spec: ServiceSpec, tmp_path: Path) -> None:
    app = create_service_app(spec, embedded_settings(spec, tmp_path))
    names: set[str] = set()
    for schema in app.openapi().get("components", {}).get("schemas", {}).values():
        property_names(schema, names)
    assert names, spec.name
    context = jsonld.context_for(spec.name)
    document = {**context, **{name: "x" for name in sorted(names)}}
    unmapped = sorted(name for name in names if name not in context["@context"])
    assert unmapped == [], f"{spec.name}: add these API fields to contracts.jsonld API_TERMS or API_LOCAL"
    # JSON-LD drops a key without a term: every field survives expansion, as an absolute IRI
    (node,) = pyld.expand(document)
    iris = {key for key in node if not key.startswith("@")}
    assert iris == {resolve(name, context["@context"]) for name in names}
    assert all(iri.startswith(("http://", "https://")) for iri in iris)


def resolve(term: str, context: dict[str, Any]) -> str:
    definition = context[term]
    prefix, suffix = (definition["@id"] if isinstance(definition, dict) else definition).split(":", 1)
    return str(context[prefix]) + suffix
