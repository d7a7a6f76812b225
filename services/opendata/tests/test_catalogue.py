"""The DCAT-AP Vlaanderen catalogue, read as RDF: every mandatory property present, every link served."""

from __future__ import annotations

import json

import rdflib
import rdflib.compare
from rdflib.namespace import DCAT, DCTERMS, RDF

from opendata.linked import LICENCE
from opendata.testing import HASSELT, OpenData

VCARD = rdflib.Namespace("http://www.w3.org/2006/vcard/ns#")
FOAF = rdflib.Namespace("http://xmlns.com/foaf/0.1/")
LDES = rdflib.Namespace("https://w3id.org/ldes#")


async def catalogue_graph(opendata: OpenData) -> rdflib.Graph:
    response = await opendata.get(f"/v1/public/{HASSELT}/catalog")
    assert response.status_code == 200 and response.headers["content-type"] == "application/ld+json"
    return rdflib.Graph().parse(data=json.dumps(response.json()), format="json-ld")


def one(graph: rdflib.Graph, subject: rdflib.term.Node, predicate: rdflib.URIRef) -> rdflib.term.Node:
    values = list(graph.objects(subject, predicate))
    assert values, f"{subject} has no {predicate}"
    return values[0]


async def test_the_catalogue_has_every_mandatory_dcat_ap_vlaanderen_property(opendata: OpenData) -> None:
    graph = await catalogue_graph(opendata)
    (catalog,) = graph.subjects(RDF.type, DCAT.Catalog)
    for predicate in (DCTERMS.title, DCTERMS.description, DCTERMS.publisher, DCTERMS.license):
        one(graph, catalog, predicate)
    publisher = one(graph, catalog, DCTERMS.publisher)
    assert str(publisher) == f"https://data.vlaanderen.be/id/gemeente/{HASSELT}"
    assert (publisher, RDF.type, FOAF.Agent) in graph and one(graph, publisher, FOAF.name)
    assert str(one(graph, catalog, DCTERMS.license)) == LICENCE

    datasets = set(graph.objects(catalog, DCAT.dataset))
    assert len(datasets) == 5  # four datasets and the event stream
    for dataset in datasets:
        assert (dataset, RDF.type, DCAT.Dataset) in graph
        for predicate in (
            DCTERMS.title,
            DCTERMS.description,
            DCTERMS.identifier,
            DCTERMS.publisher,
            DCAT.theme,
            DCAT.keyword,
            DCAT.contactPoint,
            DCTERMS.accrualPeriodicity,
            DCAT.distribution,
        ):
            one(graph, dataset, predicate)
        assert one(graph, one(graph, dataset, DCAT.contactPoint), VCARD.hasEmail)
        assert str(one(graph, dataset, DCAT.theme)).startswith(
            "http://publications.europa.eu/resource/authority/"
        )
        for distribution in graph.objects(dataset, DCAT.distribution):
            assert (distribution, RDF.type, DCAT.Distribution) in graph
            for predicate in (DCAT.accessURL, DCTERMS.license, DCAT.mediaType, DCTERMS.format):
                one(graph, distribution, predicate)

    (service,) = graph.subjects(RDF.type, DCAT.DataService)
    assert set(graph.objects(service, DCAT.servesDataset)) == datasets
    one(graph, service, DCAT.endpointURL)
    assert (None, RDF.type, LDES.EventStream) in graph


async def test_every_distribution_in_the_catalogue_is_served_as_announced(opendata: OpenData) -> None:
    graph = await catalogue_graph(opendata)
    distributions = list(graph.subjects(RDF.type, DCAT.Distribution))
    assert len(distributions) == 9
    for distribution in distributions:
        url = str(one(graph, distribution, DCAT.accessURL))
        media = str(one(graph, distribution, DCAT.mediaType)).rsplit("media-types/", 1)[1]
        response = await opendata.get(url)
        assert response.status_code == 200, url
        assert response.headers["content-type"].split(";")[0] == media, url


async def test_the_catalogue_in_turtle_is_the_same_graph(opendata: OpenData) -> None:
    as_jsonld = await catalogue_graph(opendata)
    for response in (
        await opendata.get(f"/v1/public/{HASSELT}/catalog", headers={"Accept": "text/turtle"}),
        await opendata.get(f"/v1/public/{HASSELT}/catalog.ttl"),
    ):
        assert response.headers["content-type"].startswith("text/turtle")
        as_turtle = rdflib.Graph().parse(data=response.text, format="turtle")
        assert rdflib.compare.isomorphic(as_jsonld, as_turtle)


async def test_each_service_context_is_served(opendata: OpenData) -> None:
    response = await opendata.get("/v1/public/contexts/mobility-credit.jsonld")
    assert response.status_code == 200
    context = response.json()["@context"]
    assert context["consumed_at"]["@type"] == "xsd:dateTime"
