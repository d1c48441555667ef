"""Rows as CSV, JSON or GeoJSON, each written as a stream of chunks."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from typing import Any, Literal

import orjson

from smartplace.feeds.datasets import ATTRIBUTION, LICENCE_URL, Dataset
from smartplace.feeds.store import SitePlace

Format = Literal["csv", "json", "geojson"]
MEDIA_TYPES: dict[str, str] = {
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "geojson": "application/geo+json",
}
CHUNK_ROWS = 500


def csv_stream(dataset: Dataset, rows: Iterable[dict[str, Any]]) -> Iterator[bytes]:
    """UTF-8, a header row first, empty cells where nothing was measured (never zero-filled)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=dataset.column_names, lineterminator="\r\n")
    writer.writeheader()
    for count, row in enumerate(rows, 1):
        # true/false as in JSON and Table Schema, not Python's True/False
        writer.writerow({k: str(v).lower() if isinstance(v, bool) else v for k, v in row.items()})
        if count % CHUNK_ROWS == 0:
            yield _drain(buffer)
    yield _drain(buffer)


def json_stream(
    dataset: Dataset, rows: Iterable[dict[str, Any]], next_url: str | None
) -> Iterator[bytes]:
    head = {
        "dataset": dataset.name,
        "licence": LICENCE_URL,
        "attribution": ATTRIBUTION,
        "interval": dataset.interval,
        "next": next_url,
    }
    yield orjson.dumps(head)[:-1] + b',"rows":['
    yield from _joined(orjson.dumps(row) for row in rows)
    yield b"]}"


def geojson_stream(
    dataset: Dataset,
    rows: Iterable[dict[str, Any]],
    places: dict[str, SitePlace],
    next_url: str | None,
) -> Iterator[bytes]:
    """A FeatureCollection: each row a Point feature at its site (sites with no known place
    have a null geometry, as GeoJSON allows)."""
    head = {
        "type": "FeatureCollection",
        "dataset": dataset.name,
        "licence": LICENCE_URL,
        "attribution": ATTRIBUTION,
        "next": next_url,
    }
    yield orjson.dumps(head)[:-1] + b',"features":['
    yield from _joined(orjson.dumps(_feature(row, places.get(row["site"]))) for row in rows)
    yield b"]}"


def _feature(properties: dict[str, Any], place: SitePlace | None) -> dict[str, Any]:
    geometry = (
        {"type": "Point", "coordinates": [place.longitude, place.latitude]} if place else None
    )
    return {"type": "Feature", "geometry": geometry, "properties": properties}


def _joined(items: Iterable[bytes]) -> Iterator[bytes]:
    batch: list[bytes] = []
    first = True
    for item in items:
        batch.append(item if first else b"," + item)
        first = False
        if len(batch) >= CHUNK_ROWS:
            yield b"".join(batch)
            batch = []
    if batch:
        yield b"".join(batch)


def _drain(buffer: io.StringIO) -> bytes:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text.encode()
