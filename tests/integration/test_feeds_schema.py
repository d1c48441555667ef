"""schemathesis over the feeds service's own OpenAPI: no 5xx, no response outside its schema.

The service runs on the real influxd (the simulated week), reached over real HTTP.
Each operation gets its own hypothesis run of generated requests (schemathesis'
pytest fixture loader does not work with this pytest, so the test drives it).
"""

from __future__ import annotations

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings

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
        "GET /datasets",
        "GET /datasets/{name}",
        "GET /sites",
    ]
