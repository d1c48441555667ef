"""A DCAT catalogue (JSON-LD) of the datasets, as CKAN's DCAT harvester (ckanext-dcat) reads it."""

from __future__ import annotations

from typing import Any

from smartplace.feeds.datasets import (
    ATTRIBUTION,
    DATASETS,
    LICENCE_URL,
    PUBLISHER,
)
from smartplace.feeds.render import MEDIA_TYPES
from smartplace.feeds.store import SitePlace

CONTEXT = {
    "dcat": "http://www.w3.org/ns/dcat#",
    "dct": "http://purl.org/dc/terms/",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "vcard": "http://www.w3.org/2006/vcard/ns#",
    "locn": "http://www.w3.org/ns/locn#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
}
FREQUENCY = "http://publications.europa.eu/resource/authority/frequency/"
FORMAT_NAMES = {"csv": "CSV", "json": "JSON", "geojson": "GeoJSON"}


def dcat_catalog(base: str, places: dict[str, SitePlace]) -> dict[str, Any]:
    publisher = {"@type": "foaf:Organization", "foaf:name": PUBLISHER}
    spatial = _bounding_box(places)
    return {
        "@context": CONTEXT,
        "@id": f"{base}/catalog.jsonld",
        "@type": "dcat:Catalog",
        "dct:title": "Stockport street sensors",
        "dct:description": "Air quality, footfall and litter bin data from Stockport town centre.",
        "dct:publisher": publisher,
        "dct:license": {"@id": LICENCE_URL},
        "dct:rights": ATTRIBUTION,
        "dcat:dataset": [
            {
                "@id": f"{base}/datasets/{dataset.name}",
                "@type": "dcat:Dataset",
                "dct:identifier": dataset.name,
                "dct:title": dataset.title,
                "dct:description": dataset.description,
                "dct:publisher": publisher,
                "dct:license": {"@id": LICENCE_URL},
                "dct:accrualPeriodicity": {"@id": FREQUENCY + dataset.accrual},
                "dct:temporal": {
                    "@type": "dct:PeriodOfTime",
                    "dcat:temporalResolution": {
                        "@value": dataset.interval,
                        "@type": "xsd:duration",
                    },
                },
                "dct:spatial": {"@type": "dct:Location", "dcat:bbox": spatial} if spatial else None,
                "dct:conformsTo": {"@id": f"{base}/datasets#{dataset.name}"},
                "dcat:contactPoint": {"@type": "vcard:Organization", "vcard:fn": PUBLISHER},
                "dcat:keyword": ["Stockport", "sensors", dataset.name.split("-")[0]],
                "dcat:distribution": [
                    {
                        "@id": f"{base}/datasets/{dataset.name}?format={fmt}",
                        "@type": "dcat:Distribution",
                        "dct:title": f"{dataset.title} ({FORMAT_NAMES[fmt]})",
                        "dcat:downloadURL": {"@id": f"{base}/datasets/{dataset.name}?format={fmt}"},
                        "dcat:accessURL": {"@id": f"{base}/datasets/{dataset.name}?format={fmt}"},
                        "dcat:mediaType": media.split(";")[0],
                        "dct:format": FORMAT_NAMES[fmt],
                        "dct:license": {"@id": LICENCE_URL},
                    }
                    for fmt, media in MEDIA_TYPES.items()
                ],
            }
            for dataset in DATASETS.values()
        ],
    }


def _bounding_box(places: dict[str, SitePlace]) -> str | None:
    """WKT polygon around every site (DCAT-AP's dcat:bbox)."""
    if not places:
        return None
    lats = [p.latitude for p in places.values()]
    lons = [p.longitude for p in places.values()]
    west, east, south, north = min(lons), max(lons), min(lats), max(lats)
    return (
        f"POLYGON(({west} {south}, {east} {south}, {east} {north}, {west} {north}, {west} {south}))"
    )
