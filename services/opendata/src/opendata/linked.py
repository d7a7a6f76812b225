"""Linked-data documents: datasets in JSON-LD and CSV, the DCAT-AP Vlaanderen catalogue, stream pages.

IRIs are built from the base address the platform is published under (`Settings.public_base_url`, else the
address of the request), so a city behind its own domain publishes its own IRIs.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from contracts import jsonld
from contracts.registry import catalogue
from opendata.datasets import DATASETS, Dataset

LICENCE = "https://data.vlaanderen.be/id/licentie/modellicentie-gratis-hergebruik/v1.0"
EU = "http://publications.europa.eu/resource/authority/"
IANA = "https://www.iana.org/assignments/media-types/"

DCAT_CONTEXT: dict[str, Any] = {
    "@version": 1.1,
    "dcat": "http://www.w3.org/ns/dcat#",
    "dcterms": "http://purl.org/dc/terms/",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "vcard": "http://www.w3.org/2006/vcard/ns#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "adms": "http://www.w3.org/ns/adms#",
    "tree": "https://w3id.org/tree#",
    "ldes": "https://w3id.org/ldes#",
    "prov": "http://www.w3.org/ns/prov#",
    "cb": jsonld.PROJECT_NAMESPACE,
}


def municipality_uri(tenant: str) -> str:
    return f"https://data.vlaanderen.be/id/gemeente/{tenant}"


def tenant_base(base: str, tenant: str) -> str:
    return f"{base}/v1/public/{tenant}"


def dataset_context(dataset: Dataset) -> dict[str, Any]:
    """The JSON-LD context of a dataset's rows: the shared prefixes and one term per column."""
    context: dict[str, Any] = {"@version": 1.1, **jsonld.PREFIXES}
    for column in dataset.columns:
        context[column.name] = (
            {"@id": column.iri, "@type": column.datatype} if column.datatype else column.iri
        )
    return context


def dataset_jsonld(
    base: str, tenant: str, dataset: Dataset, rows: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    url = f"{tenant_base(base, tenant)}/datasets/{dataset.id}"
    nodes = []
    for i, row in enumerate(rows):
        node: dict[str, Any] = {"@id": f"{url}#row-{i}", "@type": dataset.row_type}
        node.update({key: value for key, value in row.items() if value is not None})
        nodes.append(node)
    return {
        "@context": dataset_context(dataset),
        "@id": url,
        "dcterms:isPartOf": {"@id": f"{tenant_base(base, tenant)}/catalog"},
        "dcterms:license": {"@id": LICENCE},
        "@graph": nodes,
    }


def dataset_csv(dataset: Dataset, rows: Sequence[dict[str, Any]]) -> str:
    """RFC 4180 CSV with a header of the column names; an empty cell is a suppressed or unknown value."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    names = [column.name for column in dataset.columns]
    writer.writerow(names)
    for row in rows:
        writer.writerow(["" if row.get(name) is None else _cell(row.get(name)) for name in names])
    return out.getvalue()


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _text(value: str, language: str = "nl") -> dict[str, str]:
    return {"@value": value, "@language": language}


def catalogue_jsonld(
    base: str, tenant: str, name: str, contact_email: str, modified: dict[str, datetime | None]
) -> dict[str, Any]:
    """The tenant's catalogue in DCAT-AP Vlaanderen: Catalogus, Dataset, Distributie and Dataservice."""
    root = tenant_base(base, tenant)
    publisher = {"@id": municipality_uri(tenant), "@type": "foaf:Agent", "foaf:name": f"Gemeente {name}"}
    contact = {
        "@id": f"{root}/catalog#contact",
        "@type": "vcard:Organization",
        "vcard:fn": f"Open data {name}",
        "vcard:hasEmail": {"@id": f"mailto:{contact_email}"},
    }
    service_id = f"{root}/catalog#api"
    datasets = [
        _dataset_entry(root, dataset, publisher, contact, service_id, modified.get(dataset.id))
        for dataset in DATASETS
    ]
    datasets.append(_stream_entry(root, publisher, contact, service_id))
    service = {
        "@id": service_id,
        "@type": "dcat:DataService",
        "dcterms:title": _text(f"Open-data-API van {name}"),
        "dcterms:description": _text(
            "JSON-LD and CSV downloads of every dataset, and the public event stream."
        ),
        "dcat:endpointURL": {"@id": root},
        "dcat:endpointDescription": {"@id": f"{base}/openapi.json"},
        "dcterms:publisher": publisher,
        "dcat:contactPoint": contact,
        "dcterms:license": {"@id": LICENCE},
        "dcat:servesDataset": [{"@id": entry["@id"]} for entry in datasets],
    }
    return {
        "@context": DCAT_CONTEXT,
        "@id": f"{root}/catalog",
        "@type": "dcat:Catalog",
        "dcterms:title": _text(f"Open data van {name}"),
        "dcterms:description": _text(
            f"Datasets of {name} from the CityBlocks platform: markets, city distribution, mobility budget "
            "and incentive campaigns, in OSLO terms. Statistics about citizens never show groups of fewer "
            "than 10."
        ),
        "dcterms:publisher": publisher,
        "dcterms:license": {"@id": LICENCE},
        "dcterms:language": {"@id": f"{EU}language/NLD"},
        "dcterms:spatial": {"@id": municipality_uri(tenant)},
        "foaf:homepage": {"@id": root},
        "dcat:dataset": datasets,
        "dcat:service": [service],
    }


def _distribution(
    root: str, dataset_id: str, extension: str, media: str, file_type: str, service: str
) -> dict[str, Any]:
    url = f"{root}/datasets/{dataset_id}.{extension}"
    return {
        "@id": f"{root}/datasets/{dataset_id}#{extension}",
        "@type": "dcat:Distribution",
        "dcterms:title": _text(f"{dataset_id} ({extension.upper()})"),
        "dcat:accessURL": {"@id": url},
        "dcat:downloadURL": {"@id": url},
        "dcat:mediaType": {"@id": f"{IANA}{media}"},
        "dcterms:format": {"@id": f"{EU}file-type/{file_type}"},
        "dcterms:license": {"@id": LICENCE},
        "dcat:accessService": {"@id": service},
    }


def _dataset_entry(
    root: str,
    dataset: Dataset,
    publisher: dict[str, Any],
    contact: dict[str, Any],
    service: str,
    modified: datetime | None,
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "@id": f"{root}/datasets/{dataset.id}",
        "@type": "dcat:Dataset",
        "dcterms:identifier": f"{root}/datasets/{dataset.id}",
        "dcterms:title": _text(dataset.title),
        "dcterms:description": _text(dataset.description, "en"),
        "dcat:keyword": [_text(keyword) for keyword in dataset.keywords],
        "dcat:theme": {"@id": f"{EU}data-theme/{dataset.theme}"},
        "dcterms:accrualPeriodicity": {"@id": f"{EU}frequency/{dataset.frequency}"},
        "dcterms:publisher": publisher,
        "dcat:contactPoint": contact,
        "dcterms:spatial": {"@id": municipality_uri(root.rsplit("/", 1)[1])},
        "dcterms:accessRights": {"@id": f"{EU}access-right/PUBLIC"},
        "dcat:distribution": [
            _distribution(root, dataset.id, "jsonld", "application/ld+json", "JSON_LD", service),
            _distribution(root, dataset.id, "csv", "text/csv", "CSV", service),
        ],
    }
    if modified is not None:
        entry["dcterms:modified"] = {"@value": modified.isoformat(), "@type": "xsd:dateTime"}
    return entry


def _stream_entry(
    root: str, publisher: dict[str, Any], contact: dict[str, Any], service: str
) -> dict[str, Any]:
    url = f"{root}/stream"
    return {
        "@id": url,
        "@type": ["dcat:Dataset", "ldes:EventStream"],
        "dcterms:identifier": url,
        "dcterms:title": _text("Publieke gebeurtenissen"),
        "dcterms:description": _text(
            "The public events of the municipality (market days scheduled and cancelled, campaigns launched "
            "and ended) as a Linked Data Event Stream: immutable pages of members in order.",
            "en",
        ),
        "dcat:keyword": [_text("LDES"), _text("gebeurtenissen")],
        "dcat:theme": {"@id": f"{EU}data-theme/GOVE"},
        "dcterms:accrualPeriodicity": {"@id": f"{EU}frequency/CONT"},
        "dcterms:publisher": publisher,
        "dcat:contactPoint": contact,
        "dcterms:accessRights": {"@id": f"{EU}access-right/PUBLIC"},
        "dcat:distribution": [
            {
                "@id": f"{url}#jsonld",
                "@type": "dcat:Distribution",
                "dcterms:title": _text("stream (JSON-LD, LDES)"),
                "dcat:accessURL": {"@id": url},
                "dcat:mediaType": {"@id": f"{IANA}application/ld+json"},
                "dcterms:format": {"@id": f"{EU}file-type/JSON_LD"},
                "dcterms:license": {"@id": LICENCE},
                "dcat:accessService": {"@id": service},
            }
        ],
    }


def stream_page(
    base: str,
    tenant: str,
    page: int,
    page_size: int,
    members: Sequence[dict[str, Any]],
    has_next: bool,
) -> dict[str, Any]:
    """One page (tree:Node) of the tenant's event stream; a full page links to the next one."""
    root = tenant_base(base, tenant)
    stream = f"{root}/stream"
    node: dict[str, Any] = {
        "@id": f"{stream}/pages/{page}",
        "@type": "tree:Node",
        "tree:viewDescription": {"@id": f"{stream}#view"},
    }
    if has_next:
        node["tree:relation"] = [
            {
                "@type": "tree:GreaterThanOrEqualToRelation",
                "tree:path": {"@id": "cb:streamPosition"},
                "tree:value": {"@value": (page + 1) * page_size, "@type": "xsd:integer"},
                "tree:node": {"@id": f"{stream}/pages/{page + 1}"},
            }
        ]
    return {
        "@context": DCAT_CONTEXT,
        "@id": stream,
        "@type": "ldes:EventStream",
        "ldes:timestampPath": {"@id": "prov:generatedAtTime"},
        "ldes:versionOfPath": {"@id": "dcterms:isVersionOf"},
        "tree:view": node,
        "tree:member": [stream_member(root, member) for member in members],
    }


def stream_member(root: str, member: dict[str, Any]) -> dict[str, Any]:
    """A public event as a member: its own service's context, its entity, its time and its stream position."""
    event = {cls.event_type: cls for cls in catalogue().values()}.get(member["event_type"])
    service = member["service"]
    context = jsonld.context_for(service)["@context"] if event is not None else {}
    subject = member["subject"]
    return {
        "@context": context,
        "@id": f"{root}/stream/members/{member['event_id']}",
        "@type": event.event_name if event is not None else "cb:Event",
        f"{DCAT_CONTEXT['dcterms']}isVersionOf": {
            "@id": f"urn:uuid:{subject}" if _uuid(subject) else subject
        },
        f"{DCAT_CONTEXT['prov']}generatedAtTime": {
            "@value": member["time"].isoformat(),
            "@type": "http://www.w3.org/2001/XMLSchema#dateTime",
        },
        f"{jsonld.PROJECT_NAMESPACE}streamPosition": member["position"],
        f"{jsonld.PROJECT_NAMESPACE}eventType": member["event_type"],
        **member["data"],
    }


def _uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True
