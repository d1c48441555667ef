"""schemathesis over the feeds service's own OpenAPI: no 5xx, no response outside its schema.

The service runs on the real influxd (the simulated week), reached over real HTTP.
Each operation gets its own hypothesis run of generated requests (schemathesis'
pytest fixture loader does not work with this pytest, so the test drives it).
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone

import httpx
import orjson
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smartplace.feeds.app import DEFAULT_LIMIT, given_ns
from smartplace.feeds.store import query_digest
from tests.integration.test_feeds import feeds  # noqa: F401 - the fixture the service runs in

pytestmark = __import__("pytest").mark.integration


def test_every_operation_keeps_to_the_openapi(feeds: str) -> None:  # noqa: F811
    schema = schemathesis.openapi.from_url(f"{feeds}/openapi.json")
    checked = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
        def keeps_to_schema(case: schemathesis.Case) -> None:
            # httpx makes the call: grafana-client's urllib3-future replaces the urllib3
            # that schemathesis' own requests transport needs. The checks are schemathesis'.
            sent = case.as_transport_kwargs(base_url=feeds)
            response = httpx.request(
                sent["method"],
                sent["url"],
                params=sent.get("params"),
                headers=sent.get("headers"),
                cookies=sent.get("cookies"),
                timeout=30,
            )
            case.validate_response(response)

        keeps_to_schema()
        checked.append(operation.label)
    assert sorted(checked) == [
        "GET /catalog.jsonld",
        "GET /catalog.ttl",
        "GET /datasets",
        "GET /datasets/{name}",
        "GET /datasets/{name}/archive/{month}.csv.gz",
        "GET /datasets/{name}/schema",
        "GET /sites",
        "HEAD /catalog.jsonld",
        "HEAD /catalog.ttl",
        "HEAD /datasets",
        "HEAD /datasets/{name}",
        "HEAD /datasets/{name}/archive/{month}.csv.gz",
        "HEAD /datasets/{name}/schema",
        "HEAD /sites",
    ]


MOMENTS = st.one_of(
    st.none(),
    st.datetimes(
        min_value=datetime(1, 1, 1),
        max_value=datetime(9999, 12, 31, 23, 59, 59),
        timezones=st.sampled_from(
            [UTC, timezone(timedelta(hours=14)), timezone(-timedelta(hours=12))]
        ),
    ).map(lambda moment: moment.isoformat()),
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)).map(
        lambda moment: moment.isoformat()
    ),
)
WIDE = st.integers(min_value=-(2**63), max_value=2**64 - 1)


def _forged(fields: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(fields)).decode().rstrip("=")


def test_any_year_from_1_to_9999_and_any_forged_cursor_gets_no_5xx(feeds: str) -> None:  # noqa: F811
    """Dates across Python's whole range, and cursors forged with the right query digest (so
    they reach the range checks) or a wrong one: 400s, never a 5xx, and in the schema."""
    schema = schemathesis.openapi.from_url(f"{feeds}/openapi.json")
    operation = schema["/datasets/{name}"]["GET"]
    answered: dict[int, int] = {}

    @given(
        start=MOMENTS,
        end=MOMENTS,
        right_digest=st.booleans(),
        cursor=st.one_of(
            st.none(),
            st.fixed_dictionaries(
                {"s": st.sampled_from(["merseyway", "", "zzz"]), "t": WIDE, "a": WIDE, "b": WIDE}
            ),
        ),
    )
    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    def no_5xx(
        start: str | None, end: str | None, right_digest: bool, cursor: dict[str, object] | None
    ) -> None:
        query: dict[str, str] = {"format": "csv", "site": "merseyway"}
        if start is not None:
            query["from"] = start
        if end is not None:
            query["to"] = end
        if cursor is not None:
            digest = "nope"
            if right_digest:
                parse = lambda text: None if text is None else datetime.fromisoformat(text)  # noqa: E731
                digest = query_digest(
                    "footfall-hourly",
                    "merseyway",
                    given_ns(parse(start)),
                    given_ns(parse(end)),
                    DEFAULT_LIMIT,
                )
            query["cursor"] = _forged({**cursor, "q": digest})
        case = operation.Case(path_parameters={"name": "footfall-hourly"}, query=query)
        response = httpx.get(f"{feeds}/datasets/footfall-hourly", params=query, timeout=30)
        assert response.status_code < 500, (query, response.text)
        answered[response.status_code] = answered.get(response.status_code, 0) + 1
        case.validate_response(response)

    no_5xx()
    print("\nANSWERED", sorted(answered.items()))
    assert 400 in answered
