"""The names no device may take, and the client id each service account is bound to."""

from __future__ import annotations

import pytest

from smartplace.accounts import (
    ReservedNameError,
    ingest_identities,
    refuse_reserved,
    reserved_reason,
)
from smartplace.config import IngestSettings, MqttSettings, Settings
from smartplace.ingest.receive.shard import worker_settings

CONFIGURED = MqttSettings(
    username="town-ingest",
    client_id="town-ingest-session",
    simulator_username="town-sim",
    admin_username="town-admin",
)


@pytest.mark.parametrize(
    "device_id",
    [
        "smartplace-simulator",
        "smartplace-admin",
        "smartplace-ingest",
        "smartplace-ingest-w3",
        "smartplace-anything",
        "town-ingest",
        "town-ingest-session",
        "town-ingest-w15",
        "town-ingest-session-w0",
        "town-sim",
        "town-admin",
    ],
)
def test_service_names_are_reserved(device_id: str) -> None:
    assert reserved_reason(device_id, CONFIGURED) is not None


@pytest.mark.parametrize(
    "device_id", ["aq-0001", "town-ingest-w16", "smartplace", "bin-smartplace-1"]
)
def test_device_names_are_not(device_id: str) -> None:
    assert reserved_reason(device_id, CONFIGURED) is None


def test_the_refusal_names_the_first_and_counts_the_rest() -> None:
    with pytest.raises(ReservedNameError) as refused:
        refuse_reserved(["aq-0001", "smartplace-admin", "town-sim"], CONFIGURED)
    assert str(refused.value) == (
        "device id 'smartplace-admin' is reserved: ids starting with 'smartplace-' name the "
        "service's own accounts (and 1 more): nothing was changed"
    )


def test_ingest_has_an_account_per_worker_bound_to_that_worker_s_client_id() -> None:
    identities = ingest_identities(CONFIGURED)
    assert [(i.username, i.client_id) for i in identities[:3]] == [
        ("town-ingest", "town-ingest-session"),
        ("town-ingest-w0", "town-ingest-session-w0"),
        ("town-ingest-w1", "town-ingest-session-w1"),
    ]
    assert len(identities) == 17
    worker = worker_settings(Settings(mqtt=CONFIGURED, ingest=IngestSettings(workers=3)), 2)
    assert (worker.mqtt.username, worker.mqtt.client_id) == (
        identities[3].username,
        identities[3].client_id,
    )
