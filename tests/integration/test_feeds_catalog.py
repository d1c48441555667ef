"""The DCAT catalogue over the simulated week, read as a harvester reads it: with rdflib,
property by property for every dataset, and against the official DCAT-AP 3.0.1 SHACL shapes
(tests/fixtures/dcat-ap-3.0.1, CC-BY 4.0, see its README)."""

from __future__ import annotations

import gzip
from collections import Counter
from pathlib import Path

import httpx
import pyshacl
import pytest
from rdflib import RDF, Graph, Literal, Namespace, URIRef
from rdflib.compare import isomorphic

from smartplace.feeds.datasets import DATASETS, LICENCE_NAME, PUBLISHER
from tests.integration.test_feeds import feeds  # noqa: F401 - the fixture the service runs in

pytestmark = pytest.mark.integration

DCAT = Namespace("http://www.w3.org/ns/dcat#")
DCT = Namespace("http://purl.org/dc/terms/")
FOAF = Namespace("http://xmlns.com/foaf/0.1/")
VCARD = Namespace("http://www.w3.org/2006/vcard/ns#")
GSP = Namespace("http://www.opengis.net/ont/geosparql#")
SKOS = Namespace("http://www.w3.org/2004/02/skos/core#")
XSD = Namespace("http://www.w3.org/2001/XMLSchema#")
SH = Namespace("http://www.w3.org/ns/shacl#")
OGL = URIRef("http://www.nationalarchives.gov.uk/doc/open-government-licence/version/3/")
FILE_TYPE = "http://publications.europa.eu/resource/authority/file-type/"
IANA = "https://www.iana.org/assignments/media-types/"
SHAPES = Path(__file__).parents[1] / "fixtures" / "dcat-ap-3.0.1"


@pytest.fixture(scope="module")
def catalogue(feeds: str) -> Graph:  # noqa: F811
    response = httpx.get(f"{feeds}/catalog.jsonld")
    assert response.headers["content-type"] == "application/ld+json"
    return Graph().parse(data=response.content, format="json-ld")


def test_turtle_says_the_same_as_json_ld(feeds: str, catalogue: Graph) -> None:  # noqa: F811
    response = httpx.get(f"{feeds}/catalog.ttl")
    assert response.headers["content-type"] == "text/turtle; charset=utf-8"
    assert isomorphic(Graph().parse(data=response.text, format="turtle"), catalogue)


def one(graph: Graph, subject: object, predicate: URIRef) -> object:
    found = list(graph.objects(subject, predicate))  # type: ignore[arg-type]
    assert len(found) == 1, (subject, predicate, found)
    return found[0]


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_every_dataset_has_each_property_a_harvester_reads(
    feeds: str,  # noqa: F811
    catalogue: Graph,
    name: str,
) -> None:
    g = catalogue
    dataset = DATASETS[name]
    node = URIRef(f"{feeds}/datasets/{name}")
    assert (node, RDF.type, DCAT.Dataset) in g
    assert one(g, node, DCT.identifier) == Literal(name)
    assert one(g, node, DCT.title) == Literal(dataset.title)
    # The licence: the URI CKAN maps, a LicenseDocument with a title.
    licence = one(g, node, DCT.license)
    assert licence == OGL
    assert (OGL, RDF.type, DCT.LicenseDocument) in g
    assert one(g, OGL, DCT.title) == Literal(LICENCE_NAME)
    # A typed bounding box around the sites.
    spatial = one(g, node, DCT.spatial)
    box = one(g, spatial, DCAT.bbox)
    assert isinstance(box, Literal)
    assert box.datatype == GSP.wktLiteral
    assert str(box).startswith("POLYGON((-2.")
    # The period with a start and an end, both xsd:dateTime, the end not after now.
    period = one(g, node, DCT.temporal)
    assert (period, RDF.type, DCT.PeriodOfTime) in g
    start, end = one(g, period, DCAT.startDate), one(g, period, DCAT.endDate)
    assert isinstance(start, Literal)
    assert isinstance(end, Literal)
    assert (start.datatype, end.datatype) == (XSD.dateTime, XSD.dateTime)
    assert start.toPython() < end.toPython()
    assert one(g, node, DCT.issued) == start
    assert one(g, node, DCT.modified) == end
    # Temporal resolution on the dataset, not in the period.
    assert one(g, node, DCAT.temporalResolution) == Literal(dataset.interval, datatype=XSD.duration)
    assert list(g.objects(period, DCAT.temporalResolution)) == []
    # A contact point with an email.
    contact = one(g, node, DCAT.contactPoint)
    assert one(g, contact, VCARD.fn) == Literal(PUBLISHER)
    assert str(one(g, contact, VCARD.hasEmail)).startswith("mailto:")
    # Themes from the EU vocabulary, each a labelled concept.
    themes = list(g.objects(node, DCAT.theme))
    assert len(themes) == 2
    for theme in themes:
        assert str(theme).startswith("http://publications.europa.eu/resource/authority/data-theme/")
        assert (theme, RDF.type, SKOS.Concept) in g
        assert one(g, theme, SKOS.prefLabel)
    assert one(g, node, DCAT.landingPage) == URIRef(f"{feeds}/docs")
    assert str(one(g, node, DCT.accrualPeriodicity)).startswith(
        "http://publications.europa.eu/resource/authority/frequency/"
    )
    assert (one(g, node, DCT.conformsTo), RDF.type, DCT.Standard) in g
    assert (one(g, node, DCT.publisher), FOAF.name, Literal(PUBLISHER)) in g
    # Distributions: formats and media types as IRIs, the licence, the API that serves them.
    distributions = list(g.objects(node, DCAT.distribution))
    media = {str(one(g, d, DCAT.mediaType)) for d in distributions}  # archives: text/csv
    formats = {str(one(g, d, DCT["format"])) for d in distributions}
    assert media == {IANA + "text/csv", IANA + "application/json", IANA + "application/geo+json"}
    assert formats == {FILE_TYPE + "CSV", FILE_TYPE + "JSON", FILE_TYPE + "GEOJSON"}
    api = URIRef(f"{feeds}/#api")
    archives = [d for d in distributions if (d, DCAT.compressFormat, None) in g]
    assert len(archives) >= 1  # a month's gzip CSV for each month with data
    for distribution in distributions:
        assert one(g, distribution, DCT.license) == OGL
        download = str(one(g, distribution, DCAT.downloadURL))
        if distribution in archives:
            assert download.startswith(f"{feeds}/datasets/{name}/archive/")
            assert download.endswith(".csv.gz")
            assert one(g, distribution, DCAT.compressFormat) == URIRef(IANA + "application/gzip")
        else:
            assert download.startswith(f"{feeds}/datasets/{name}?")
            assert one(g, distribution, DCAT.accessService) == api
    assert (api, RDF.type, DCAT.DataService) in g
    assert (api, DCAT.servesDataset, node) in g
    assert one(g, api, DCAT.endpointURL) == URIRef(feeds)


def dcat_ap_shapes() -> Graph:
    shapes = Graph()
    for name in ("dcat-ap-SHACL.ttl.gz", "ranges.ttl.gz"):
        shapes.parse(data=gzip.decompress((SHAPES / name).read_bytes()).decode(), format="turtle")
    # The 3.0.1 release lists five property shapes it never defines; pyshacl refuses
    # dangling ones, so they are dropped (the 3.0.1 files, not our catalogue, are at fault).
    dangling = [
        (shape, prop)
        for shape, prop in shapes.subject_objects(SH.property)
        if shapes.value(prop, SH.path) is None
    ]
    assert len(dangling) == 5
    for shape, prop in dangling:
        shapes.remove((shape, SH.property, prop))
    return shapes


def test_the_catalogue_conforms_to_the_dcat_ap_3_shapes(catalogue: Graph) -> None:
    conforms, report, text = pyshacl.validate(
        catalogue, shacl_graph=dcat_ap_shapes(), inference="none", allow_warnings=False
    )
    kinds = Counter(
        (str(report.value(r, SH.resultPath)), str(report.value(r, SH.sourceConstraintComponent)))
        for r in report.subjects(RDF.type, SH.ValidationResult)
    )
    assert kinds == Counter(), text
    assert conforms
