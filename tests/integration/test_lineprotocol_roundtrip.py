"""Line protocol through the real influxd with hostile names and values: what comes back
is what was written, and nothing opens a new tag, field, measurement or line."""

from __future__ import annotations

import random

import pytest

from smartplace.influx import InfluxClient, quote_identifier
from smartplace.lineprotocol import format_point

pytestmark = pytest.mark.integration

HOSTILE = [
    "plain",
    "with space",
    "comma,here",
    "equals=sign",
    'double"quote',
    "single'quote",
    "back\\slash in the middle",
    "all , = \" ' \\ at once",
    "sp ace,comma=eq",
    "ünïcödé ☃ 大气 💨",
    "a=b,c=d e=f",  # would open two tags and a field if not escaped
    "x y=1 2",  # would end the tag set and start fields
    "-leading-dash",
    "#hash+plus/slash",
]


def _random_text(rng: random.Random) -> str:
    alphabet = " ,=\"'\\abcXYZ09é☃💨\t"
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 20))).strip("\\") or "x"


def test_hostile_tags_fields_and_strings_survive_a_round_trip(influx: InfluxClient) -> None:
    influx.ensure_storage()
    rng = random.Random(8428)
    values = HOSTILE + [_random_text(rng) for _ in range(40)]
    measurement = "hostile test,m=1"
    lines = []
    for i, value in enumerate(values):
        tags = {"device_id": f"dev-{i:03d}", "note": value}
        fields = {"text": value + ' and "more"', "value": i + 0.5, "count": i, "ok": i % 2 == 0}
        lines.append(format_point(measurement, tags, fields, 1_795_000_000_000_000_000 + i))
    influx.write(lines, "raw")

    rows = influx.query_rows(
        f"SELECT * FROM {quote_identifier('raw')}.{quote_identifier(measurement)}"
    )
    assert len(rows) == len(values)
    by_device = {row["device_id"]: row for row in rows}
    for i, value in enumerate(values):
        row = by_device[f"dev-{i:03d}"]
        assert row["note"] == value
        assert row["text"] == value.replace("\t", " ") + ' and "more"'  # control characters blanked
        assert (row["value"], row["count"], row["ok"]) == (i + 0.5, i, i % 2 == 0)
        assert row["time"] == 1_795_000_000_000_000_000 + i

    [measurements] = [[r["name"] for r in influx.query_rows("SHOW MEASUREMENTS")]]
    assert measurements == [measurement]
    tag_keys = {
        r["tagKey"]
        for r in influx.query_rows(f"SHOW TAG KEYS FROM {quote_identifier(measurement)}")
    }
    assert tag_keys == {"device_id", "note"}
    field_keys = {
        r["fieldKey"]: r["fieldType"]
        for r in influx.query_rows(f"SHOW FIELD KEYS FROM {quote_identifier(measurement)}")
    }
    assert field_keys == {"text": "string", "value": "float", "count": "integer", "ok": "boolean"}


@pytest.mark.parametrize("bad", ["ends with \\", "new\nline", ""])
def test_tags_that_cannot_be_escaped_never_reach_influx(bad: str) -> None:
    with pytest.raises(ValueError, match="cannot be a line-protocol tag"):
        format_point("m", {"t": "ok", "u": bad} if bad else {"": "x"}, {"v": 1.0}, 1)
