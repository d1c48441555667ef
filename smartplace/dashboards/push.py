"""Uploading the dashboards to a running Grafana through its HTTP API (grafana-client).

The alternative to file provisioning, for a Grafana this repository does not
configure (a hosted one): docker-compose provisions the same dashboards from
files, and Grafana refuses API saves of provisioned dashboards, so push is
never needed, nor useful, there. Both file into one folder uid.

Idempotent: a dashboard that already matches what we built is left alone, so
a second push changes nothing (and Grafana's version history stays clean).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from grafana_client.api import GrafanaApi
from grafana_client.client import (
    GrafanaClientError,
    GrafanaException,
    GrafanaUnauthorizedError,
)

from smartplace.dashboards.build import DASHBOARDS, FOLDER, FOLDER_UID
from smartplace.dashboards.provisioning import DEFAULT_POLICIES, Policies, dashboard_json
from smartplace.errors import SmartplaceError


@dataclass
class PushReport:
    created_folder: bool = False
    uploaded: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


def push(
    url: str, token: str, timeout_s: float = 10.0, policies: Policies = DEFAULT_POLICIES
) -> PushReport:
    grafana = GrafanaApi.from_url(url=url, credential=token, timeout=timeout_s)
    report = PushReport()
    try:
        report.created_folder = _ensure_folder(grafana)
        for name in DASHBOARDS:
            built = json.loads(dashboard_json(name, policies))
            if _same_as_stored(grafana, built):
                report.unchanged.append(built["uid"])
                continue
            grafana.dashboard.update_dashboard(
                {
                    "dashboard": {**built, "id": None},
                    "folderUid": FOLDER_UID,
                    "overwrite": True,
                    "message": "smartplace dashboards push",
                }
            )
            report.uploaded.append(built["uid"])
    except GrafanaUnauthorizedError:
        raise SmartplaceError(
            f"Grafana at {url} refused the token: check it is a service account token with"
            " the Editor role (or higher)"
        ) from None
    except GrafanaException as exc:
        hint = ""
        if "provisioned" in str(exc).lower():
            hint = (
                " (that Grafana provisions these dashboards from files, as docker-compose"
                " does: edit smartplace/dashboards/ and run 'smartplace dashboards build')"
            )
        raise SmartplaceError(f"Grafana at {url} answered: {exc}{hint}") from None
    except OSError as exc:  # niquests' ConnectionError and Timeout are OSErrors
        raise SmartplaceError(f"cannot reach Grafana at {url}: {exc}") from None
    return report


def _ensure_folder(grafana: GrafanaApi) -> bool:
    try:
        grafana.folder.get_folder(FOLDER_UID)  # type: ignore[no-untyped-call]
        return False
    except GrafanaClientError as exc:
        if getattr(exc, "status_code", None) != 404:
            raise
    grafana.folder.create_folder(FOLDER, uid=FOLDER_UID)  # type: ignore[no-untyped-call]
    return True


def _same_as_stored(grafana: GrafanaApi, built: dict[str, Any]) -> bool:
    try:
        stored = grafana.dashboard.get_dashboard(built["uid"])  # type: ignore[no-untyped-call]
    except GrafanaClientError as exc:
        if getattr(exc, "status_code", None) == 404:
            return False
        raise
    current = {k: v for k, v in stored["dashboard"].items() if k not in ("id", "version")}
    return current == {k: v for k, v in built.items() if k not in ("id", "version")}
