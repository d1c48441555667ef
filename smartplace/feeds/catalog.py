"""A DCAT-AP 3 catalogue of the datasets, as JSON-LD and Turtle, as CKAN's DCAT harvester
(ckanext-dcat) and the DCAT-AP 3.0.1 SHACL shapes read it.

Every value a harvester matches is an IRI of a vocabulary it knows: formats from the EU
file-type authority table, media types from IANA's registry, frequencies and themes from
the EU authority tables, and the licence as the OGL URI CKAN maps to ``uk-ogl``. Nodes
carry the class DCAT-AP's range shapes ask for (a licence is a ``dct:LicenseDocument``
with a title, a bbox a ``gsp:wktLiteral``), since SHACL checks them without inference.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
import rdflib

from smartplace.feeds.archive import month_range_ns, months_between
from smartplace.feeds.datasets import (
    ATTRIBUTION,
    DATASETS,
    LICENCE_NAME,
    LICENCE_URL,
    PUBLISHER,
    Dataset,
)
from smartplace.feeds.render import MEDIA_TYPES
from smartplace.feeds.store import NS, SitePlace, iso

CONTEXT = {
    "dcat": "http://www.w3.org/ns/dcat#",
    "dct": "http://purl.org/dc/terms/",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "vcard": "http://www.w3.org/2006/vcard/ns#",
    "locn": "http://www.w3.org/ns/locn#",
    "gsp": "http://www.opengis.net/ont/geosparql#",
    "skos": "http://www.w3.org/2004/02/skos/core#",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
}
EU = "http://publications.europa.eu/resource/authority/"
FREQUENCY = EU + "frequency/"
FILE_TYPE = EU + "file-type/"
THEME = EU + "data-theme/"
IANA = "https://www.iana.org/assignments/media-types/"
FILE_TYPES = {"csv": "CSV", "json": "JSON", "geojson": "GEOJSON"}
"""Our formats as codes of the EU file-type table."""
FORMAT_NAMES = {"csv": "CSV", "json": "JSON", "geojson": "GeoJSON"}
THEMES = {
    "air-quality": ("ENVI", "HEAL"),
    "footfall": ("ECON", "REGI"),
    "bins": ("ENVI", "REGI"),
}
"""EU data themes by dataset family."""
THEME_LABELS = {
    "ENVI": "Environment",
    "HEAL": "Health",
    "ECON": "Economy and finance",
    "REGI": "Regions and cities",
}


@dataclass(frozen=True, slots=True)
class Extent:
    """The first period's start and the newest period's end of a dataset, in seconds."""

    start_s: int
    end_s: int


def dcat_catalog(
    base: str,
    places: dict[str, SitePlace],
    extents: dict[str, Extent],
    contact_email: str,
) -> dict[str, Any]:
    publisher = {
        "@id": f"{base}/#publisher",
        "@type": ["foaf:Agent", "foaf:Organization"],
        "foaf:name": PUBLISHER,
    }
    licence = {"@id": LICENCE_URL, "@type": "dct:LicenseDocument", "dct:title": LICENCE_NAME}
    service = f"{base}/#api"
    return {
        "@context": CONTEXT,
        "@id": f"{base}/catalog.jsonld",
        "@type": "dcat:Catalog",
        "dct:title": "Stockport street sensors",
        "dct:description": "Air quality, footfall and litter bin data from Stockport town centre.",
        "dct:publisher": publisher,
        "dct:license": licence,
        "dct:rights": {"@type": "dct:RightsStatement", "rdfs:label": ATTRIBUTION},
        "foaf:homepage": {"@id": f"{base}/docs", "@type": "foaf:Document"},
        "dcat:service": {
            "@id": service,
            "@type": "dcat:DataService",
            "dct:title": "smartplace open data API",
            "dct:description": "Rows by site and time range as CSV, JSON or GeoJSON, paged.",
            "dcat:endpointURL": {"@id": base, "@type": "rdfs:Resource"},
            "dcat:endpointDescription": {"@id": f"{base}/openapi.json", "@type": "rdfs:Resource"},
            "dcat:servesDataset": [{"@id": _dataset_id(base, d)} for d in DATASETS.values()],
            "dct:publisher": publisher,
            "dct:license": licence,
        },
        "dcat:dataset": [
            _dataset(base, d, places, extents.get(d.name), publisher, licence, contact_email)
            for d in DATASETS.values()
        ],
    }


def _dataset_id(base: str, dataset: Dataset) -> str:
    return f"{base}/datasets/{dataset.name}"


def _dataset(
    base: str,
    dataset: Dataset,
    places: dict[str, SitePlace],
    extent: Extent | None,
    publisher: dict[str, Any],
    licence: dict[str, Any],
    contact_email: str,
) -> dict[str, Any]:
    url = _dataset_id(base, dataset)
    family = next(prefix for prefix in THEMES if dataset.name.startswith(prefix))
    node: dict[str, Any] = {
        "@id": url,
        "@type": "dcat:Dataset",
        "dct:identifier": dataset.name,
        "dct:title": dataset.title,
        "dct:description": dataset.description,
        "dct:publisher": publisher,
        "dct:license": licence,
        "dct:accrualPeriodicity": {
            "@id": FREQUENCY + dataset.accrual,
            "@type": "dct:Frequency",
        },
        "dcat:temporalResolution": {"@value": dataset.interval, "@type": "xsd:duration"},
        "dct:conformsTo": {
            "@id": f"{base}/datasets/{dataset.name}/schema",
            "@type": "dct:Standard",
            "dct:title": f"{dataset.title}: Table Schema (columns, types, UCUM units)",
        },
        "dcat:contactPoint": {
            "@type": ["vcard:Kind", "vcard:Organization"],
            "vcard:fn": PUBLISHER,
            "vcard:hasEmail": {"@id": f"mailto:{contact_email}"},
        },
        "dcat:theme": [
            {
                "@id": THEME + code,
                "@type": "skos:Concept",
                "skos:prefLabel": {"@value": THEME_LABELS[code], "@language": "en"},
            }
            for code in THEMES[family]
        ],
        "dcat:keyword": ["Stockport", "sensors", family.replace("-", " ")],
        "dcat:landingPage": {"@id": f"{base}/docs", "@type": "foaf:Document"},
        "dcat:distribution": [
            _distribution(base, dataset, fmt, media, licence) for fmt, media in MEDIA_TYPES.items()
        ],
    }
    box = _bounding_box(places)
    if box:
        node["dct:spatial"] = {
            "@type": "dct:Location",
            "dcat:bbox": {"@value": box, "@type": "gsp:wktLiteral"},
        }
    if extent is not None:
        node["dcat:distribution"] += [
            _archive(base, dataset, month, licence)
            for month in months_between(extent.start_s, extent.end_s)
        ]
        node["dct:temporal"] = {
            "@type": "dct:PeriodOfTime",
            "dcat:startDate": {"@value": iso(extent.start_s), "@type": "xsd:dateTime"},
            "dcat:endDate": {"@value": iso(extent.end_s), "@type": "xsd:dateTime"},
        }
        node["dct:issued"] = {"@value": iso(extent.start_s), "@type": "xsd:dateTime"}
        node["dct:modified"] = {"@value": iso(extent.end_s), "@type": "xsd:dateTime"}
    return node


def _distribution(
    base: str, dataset: Dataset, fmt: str, media: str, licence: dict[str, Any]
) -> dict[str, Any]:
    url = f"{base}/datasets/{dataset.name}?format={fmt}"
    return {
        "@id": url,
        "@type": "dcat:Distribution",
        "dct:title": f"{dataset.title} ({FORMAT_NAMES[fmt]})",
        "dcat:accessURL": {"@id": url},
        "dcat:downloadURL": {"@id": url},
        "dcat:mediaType": {"@id": IANA + media.split(";")[0], "@type": "dct:MediaType"},
        "dct:format": {"@id": FILE_TYPE + FILE_TYPES[fmt], "@type": "dct:MediaTypeOrExtent"},
        "dct:license": licence,
        "dcat:accessService": {"@id": f"{base}/#api"},
        "dct:conformsTo": {"@id": f"{base}/datasets/{dataset.name}/schema"},
    }


def _archive(base: str, dataset: Dataset, month: str, licence: dict[str, Any]) -> dict[str, Any]:
    """A month's bulk file: CSV, gzip-compressed (dcat:compressFormat), every site."""
    url = f"{base}/datasets/{dataset.name}/archive/{month}.csv.gz"
    start_ns, end_ns = month_range_ns(month)
    return {
        "@id": url,
        "@type": "dcat:Distribution",
        "dct:title": f"{dataset.title}, {month} (gzip CSV, every site)",
        "dcat:accessURL": {"@id": url},
        "dcat:downloadURL": {"@id": url},
        "dcat:mediaType": {"@id": IANA + "text/csv", "@type": "dct:MediaType"},
        "dcat:compressFormat": {"@id": IANA + "application/gzip", "@type": "dct:MediaType"},
        "dct:format": {"@id": FILE_TYPE + "CSV", "@type": "dct:MediaTypeOrExtent"},
        "dct:license": licence,
        "dct:temporal": {
            "@type": "dct:PeriodOfTime",
            "dcat:startDate": {"@value": iso(start_ns // NS), "@type": "xsd:dateTime"},
            "dcat:endDate": {"@value": iso(end_ns // NS), "@type": "xsd:dateTime"},
        },
        "dct:conformsTo": {"@id": f"{base}/datasets/{dataset.name}/schema"},
    }


def turtle(catalog: dict[str, Any]) -> bytes:
    """The same catalogue as Turtle (its context is inline: nothing is fetched)."""
    graph = rdflib.Graph()
    graph.parse(data=orjson.dumps(catalog), format="json-ld")
    for prefix, namespace in CONTEXT.items():
        graph.bind(prefix, rdflib.Namespace(namespace))
    return graph.serialize(format="turtle").encode()


def _bounding_box(places: dict[str, SitePlace]) -> str | None:
    """WKT polygon around every site (DCAT-AP's dcat:bbox), longitude first."""
    if not places:
        return None
    lats = [p.latitude for p in places.values()]
    lons = [p.longitude for p in places.values()]
    west, east, south, north = min(lons), max(lons), min(lats), max(lats)
    return (
        f"POLYGON(({west} {south}, {east} {south}, {east} {north}, {west} {north}, {west} {south}))"
    )
