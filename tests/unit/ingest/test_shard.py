"""Which worker handles which device, and each worker's own session, spool and port."""

from __future__ import annotations

import zlib
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartplace.config import IngestSettings, MqttSettings, Settings
from smartplace.ingest.receive.shard import shard_of, worker_settings


def test_a_device_goes_to_the_worker_its_ids_crc32_names_whatever_its_topic() -> None:
    expected = zlib.crc32(b"aq-0007") % 3
    assert {
        shard_of("sp", "sp/air_quality/aq-0007/reading", 3),
        shard_of("sp", "sp/air_quality/aq-0007/senml", 3),
        shard_of("sp", "sp/registry/aq-0007", 3),
        shard_of("sp", "v3/app@ttn/devices/aq-0007/up", 3),
    } == {expected}


def test_topics_naming_no_device_go_to_worker_0_and_one_worker_takes_all() -> None:
    assert shard_of("sp", "elsewhere/x", 4) == 0
    assert shard_of("sp", "sp/air_quality", 4) == 0
    assert shard_of("sp", "sp/air_quality/aq-0007/reading", 1) == 0


def test_a_fleet_spreads_over_the_workers() -> None:
    counts = Counter(shard_of("sp", f"sp/footfall/ff-{n:04d}/reading", 4) for n in range(1000))
    assert sorted(counts) == [0, 1, 2, 3]
    assert min(counts.values()) > 200  # 250 each on average


@given(st.text(max_size=80), st.integers(1, 16))
def test_any_topic_has_a_worker(topic: str, workers: int) -> None:
    assert 0 <= shard_of("sp", topic, workers) < workers


def test_each_worker_has_its_own_session_spool_and_port(tmp_path: Path) -> None:
    base = Settings(
        mqtt=MqttSettings(client_id="ingest"),
        ingest=IngestSettings(workers=3, spool_dir=tmp_path, http_port=9108),
    )
    second = worker_settings(base, 1)
    assert second.mqtt.client_id == "ingest-w1"
    assert second.ingest.spool_dir == tmp_path / "worker-1"
    assert (second.ingest.http_port, second.ingest.worker_index) == (9109, 1)
    assert base.mqtt.client_id == "ingest"  # the original is left as it was
    single = Settings(mqtt=MqttSettings(client_id="ingest"))
    assert worker_settings(single, 0) is single
    with pytest.raises(ValueError, match="worker 3 of 3"):
        worker_settings(base, 3)
