"""An InfluxQL target for grafana-foundation-sdk, which ships no InfluxDB query type.

The JSON is what Grafana's own InfluxDB data source saves for a raw InfluxQL
query: ``query``, ``rawQuery: true`` and ``resultFormat``.
"""

from __future__ import annotations

from typing import Any, Literal, Self

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import dashboard

DATASOURCE_TYPE = "influxdb"
DATASOURCE_UID = "smartplace-influxdb"
"""The provisioned data source's uid: every panel and alert rule points at it."""
DATASOURCE = dashboard.DataSourceRef(type_val=DATASOURCE_TYPE, uid=DATASOURCE_UID)

ResultFormat = Literal["time_series", "table"]


class InfluxQLQuery(cogvariants.Dataquery):
    def __init__(
        self,
        query: str = "",
        ref_id: str = "",
        result_format: ResultFormat = "time_series",
        alias: str | None = None,
        datasource: dashboard.DataSourceRef | None = None,
        hide: bool | None = None,
    ) -> None:
        self.query = query
        self.ref_id = ref_id
        self.result_format = result_format
        self.alias = alias
        self.datasource = datasource
        self.hide = hide

    def to_json(self) -> dict[str, object]:
        payload: dict[str, object] = {
            "refId": self.ref_id,
            "query": self.query,
            "rawQuery": True,
            "resultFormat": self.result_format,
        }
        if self.alias is not None:
            payload["alias"] = self.alias
        if self.datasource is not None:
            payload["datasource"] = self.datasource
        if self.hide is not None:
            payload["hide"] = self.hide
        return payload

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        source = data.get("datasource")
        return cls(
            query=data.get("query", ""),
            ref_id=data.get("refId", ""),
            result_format=data.get("resultFormat", "time_series"),
            alias=data.get("alias"),
            datasource=dashboard.DataSourceRef.from_json(source) if source else None,
            hide=data.get("hide"),
        )


class InfluxQL(cogbuilder.Builder[InfluxQLQuery]):
    """``InfluxQL("SELECT ...").table()``: a raw InfluxQL target on the smartplace data source."""

    def __init__(self, query: str, ref_id: str = "A") -> None:
        self._internal = InfluxQLQuery(query, ref_id, datasource=DATASOURCE)

    def build(self) -> InfluxQLQuery:
        return self._internal

    def table(self) -> Self:
        self._internal.result_format = "table"
        return self

    def ref_id(self, ref_id: str) -> Self:
        self._internal.ref_id = ref_id
        return self

    def alias(self, alias: str) -> Self:
        self._internal.alias = alias
        return self


def register() -> None:
    """Let the SDK read InfluxQL targets back from dashboard JSON."""
    cogruntime.register_dataquery_variant(
        cogruntime.DataqueryConfig(
            identifier=DATASOURCE_TYPE, from_json_hook=InfluxQLQuery.from_json
        )
    )
