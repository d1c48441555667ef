"""The data dictionary: a Frictionless Table Schema per dataset, and the JSON Schemas of
every response body the OpenAPI document describes.

Units are UCUM codes (``ug/m3``, ``Cel``, ``%``, ``{people}``, ``1``), kept in each field's
``unit`` (Table Schema allows extra properties on a field).
"""

from __future__ import annotations

from typing import Any

from smartplace.feeds.datasets import ATTRIBUTION, LICENCE_NAME, LICENCE_URL, Dataset

KEY_FIELDS: tuple[dict[str, Any], ...] = (
    {
        "name": "site",
        "type": "string",
        "description": "The site's name (see /sites)",
        "constraints": {"required": True, "pattern": "^[a-z0-9][a-z0-9-]{0,62}$"},
    },
    {
        "name": "period_start",
        "type": "datetime",
        "format": "%Y-%m-%dT%H:%M:%SZ",
        "description": "Start of the period, ISO 8601 UTC",
        "constraints": {"required": True},
    },
    {
        "name": "period_end",
        "type": "datetime",
        "format": "%Y-%m-%dT%H:%M:%SZ",
        "description": "End of the period (exclusive), ISO 8601 UTC",
        "constraints": {"required": True},
    },
)


def table_schema(dataset: Dataset) -> dict[str, Any]:
    """The dataset's columns as a Table Schema: names in order, types, UCUM units, meaning."""
    fields = [dict(field) for field in KEY_FIELDS]
    for column in dataset.columns:
        field: dict[str, Any] = {
            "name": column.name,
            "type": column.type,
            "description": column.description,
        }
        if column.unit:
            field["unit"] = column.unit
        if column.type == "boolean":
            field |= {"trueValues": ["true"], "falseValues": ["false"]}
        fields.append(field)
    return {
        "$schema": "https://specs.frictionlessdata.io/schemas/table-schema.json",
        "title": dataset.title,
        "description": dataset.description,
        "fields": fields,
        "missingValues": [""],
        "primaryKey": ["site", "period_start"],
        "licenses": [{"name": "OGL-UK-3.0", "path": LICENCE_URL, "title": LICENCE_NAME}],
        "attribution": ATTRIBUTION,
    }


CELL: dict[str, Any] = {"type": ["string", "number", "integer", "boolean", "null"]}
ROW: dict[str, Any] = {
    "type": "object",
    "required": ["site", "period_start", "period_end"],
    "properties": {
        "site": {"type": "string"},
        "period_start": {"type": "string", "format": "date-time"},
        "period_end": {"type": "string", "format": "date-time"},
        "coverage": {
            "type": ["number", "null"],
            "minimum": 0,
            "maximum": 1,
            "description": "How whole the period is (null: not known); see the dataset's schema",
        },
        "complete": {
            "type": "boolean",
            "description": "Ended, and (where coverage is given) coverage at least 0.95",
        },
    },
    "additionalProperties": CELL,
}
"""One row: the key columns, then the dataset's own (see its Table Schema)."""
PAGE: dict[str, Any] = {
    "type": "object",
    "required": ["dataset", "licence", "attribution", "interval", "next", "rows"],
    "properties": {
        "dataset": {"type": "string"},
        "licence": {"type": "string"},
        "attribution": {"type": "string"},
        "interval": {"type": "string", "description": "ISO 8601 duration"},
        "next": {"type": ["string", "null"], "description": "The next page, or null"},
        "rows": {"type": "array", "items": ROW},
    },
}
POINT_OR_NULL: dict[str, Any] = {
    "oneOf": [
        {"type": "null"},
        {
            "type": "object",
            "required": ["type", "coordinates"],
            "properties": {
                "type": {"const": "Point"},
                "coordinates": {
                    "type": "array",
                    "items": {"type": "number"},
                    "minItems": 2,
                    "maxItems": 2,
                },
            },
        },
    ]
}


def _features(properties: dict[str, Any]) -> dict[str, Any]:
    """A GeoJSON feature array whose features' properties match ``properties``."""
    return {
        "type": "array",
        "items": {
            "type": "object",
            "required": ["type", "geometry", "properties"],
            "properties": {
                "type": {"const": "Feature"},
                "geometry": POINT_OR_NULL,
                "properties": properties,
            },
        },
    }


GEO_PAGE: dict[str, Any] = {
    "type": "object",
    "required": ["type", "dataset", "licence", "attribution", "next", "features"],
    "properties": {
        "type": {"const": "FeatureCollection"},
        "dataset": {"type": "string"},
        "licence": {"type": "string"},
        "attribution": {"type": "string"},
        "next": {"type": ["string", "null"]},
        "features": _features(ROW),
    },
}
SITES: dict[str, Any] = {
    "type": "object",
    "required": ["type", "attribution", "features"],
    "properties": {
        "type": {"const": "FeatureCollection"},
        "attribution": {"type": "string"},
        "features": _features(
            {
                "type": "object",
                "required": ["site", "kinds", "latest"],
                "properties": {
                    "site": {"type": "string"},
                    "kinds": {"type": "array", "items": {"type": "string"}},
                    "latest": {
                        "type": "object",
                        "description": "Dataset name -> its newest row at the site",
                        "additionalProperties": ROW,
                    },
                },
            }
        ),
    },
}
COLUMN: dict[str, Any] = {
    "type": "object",
    "required": ["name", "type", "unit", "description"],
    "properties": {
        "name": {"type": "string"},
        "type": {"type": "string"},
        "unit": {"type": "string", "description": "UCUM code, or empty"},
        "description": {"type": "string"},
    },
}
DATASETS_LIST: dict[str, Any] = {
    "type": "object",
    "required": ["licence", "attribution", "datasets"],
    "properties": {
        "licence": {"type": "string"},
        "attribution": {"type": "string"},
        "datasets": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "title", "description", "interval", "columns", "links"],
                "properties": {
                    "name": {"type": "string"},
                    "title": {"type": "string"},
                    "description": {"type": "string"},
                    "interval": {"type": "string"},
                    "schema": {"type": "string", "description": "Its Table Schema's URL"},
                    "columns": {"type": "array", "items": COLUMN},
                    "links": {"type": "object", "additionalProperties": {"type": "string"}},
                },
            },
        },
    },
}
TABLE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["fields", "primaryKey"],
    "properties": {
        "fields": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "type", "description"],
                "properties": {
                    "name": {"type": "string"},
                    "type": {"type": "string"},
                    "unit": {"type": "string"},
                    "description": {"type": "string"},
                },
            },
        },
        "primaryKey": {"type": "array", "items": {"type": "string"}},
    },
}
CATALOG: dict[str, Any] = {
    "type": "object",
    "required": ["@context", "@id", "@type", "dcat:dataset"],
    "properties": {
        "@context": {"type": "object"},
        "@id": {"type": "string"},
        "@type": {"const": "dcat:Catalog"},
        "dcat:dataset": {"type": "array", "items": {"type": "object"}},
        "dcat:service": {"type": "object"},
    },
    "description": "DCAT-AP 3 JSON-LD (see the Turtle at /catalog.ttl for the same graph)",
}
