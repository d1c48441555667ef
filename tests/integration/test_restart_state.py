"""Ingest stopped mid-day and started again without usable saved windows: no aggregate is
ever written from partial data. Every 1-minute to 1-day aggregate equals the offline
recomputation from the stream (the chaos suite's check), whether the state file was
deleted, written in an older format, or lacks a window length configured since."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from smartplace.config import Settings
from smartplace.influx import InfluxClient
from smartplace.ingest.recovery.checkpoint import CHECKPOINT_FILE, load_checkpoint, save_checkpoint
from tests.chaos.harness import (
    WINDOWS_S,
    assert_aggregates_exact,
)
from tests.conftest import RunningIngest
from tests.integration.helpers import publish_all, restart_stream
from tests.unit.ingest.test_state import as_format_0

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DEVICES, PER_DEVICE, STEP_S = 4, 240, 15


def _delete(spool: Path) -> None:
    (spool / CHECKPOINT_FILE).unlink()


def _older_format(spool: Path) -> None:
    checkpoint = load_checkpoint(spool)
    assert checkpoint is not None
    assert checkpoint.state is not None
    save_checkpoint(spool, checkpoint.committed_seq, as_format_0(checkpoint.state))


def _keep(spool: Path) -> None:
    assert (spool / CHECKPOINT_FILE).exists()


Change = Callable[[Path], None]


@pytest.mark.parametrize(
    ("first_windows", "change"),
    [
        (list(WINDOWS_S), _delete),
        (list(WINDOWS_S), _older_format),
        ([60, 900], _keep),  # 1 h and 1 day windows configured at the restart
    ],
    ids=["state-deleted", "state-format-0", "windows-added"],
)
def test_a_restart_mid_day_never_writes_an_aggregate_from_partial_data(
    settings: Settings,
    influx: InfluxClient,
    tmp_path: Path,
    first_windows: list[int],
    change: Change,
) -> None:
    readings, messages = restart_stream(settings.mqtt.topic_prefix, DEVICES, PER_DEVICE, STEP_S)
    half = len(messages) // 2
    spool = tmp_path / "spool"
    configured = settings.ingest.model_copy(update={"spool_dir": spool})
    first = settings.model_copy(
        update={"ingest": configured.model_copy(update={"windows_s": first_windows})}
    )
    second = settings.model_copy(update={"ingest": configured})

    _run(first, messages[:half])
    change(spool)
    _run(second, messages[half:])

    assert_aggregates_exact(influx, readings)


def _run(settings: Settings, messages: list[tuple[str, bytes]]) -> None:
    """Start ingest, publish, wait until all is written, stop it gracefully."""
    ingest = RunningIngest(settings)
    ingest.start()
    try:
        publish_all(settings, messages)
        ingest.wait_for_received(len(messages), timeout_s=60)
    finally:
        ingest.close()
    assert ingest.error is None
