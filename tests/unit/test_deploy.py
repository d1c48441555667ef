"""What docker-compose mounts is generated from the code the tests exercise."""

from __future__ import annotations

from pathlib import Path

from smartplace.stack.mosquitto import BROKER_SETTINGS, DEPLOY_CONFIG, render_deploy_config

ROOT = Path(__file__).parents[2]


def test_the_committed_broker_config_is_the_generated_one() -> None:
    committed = (ROOT / DEPLOY_CONFIG).read_text()
    assert committed == render_deploy_config(), "regenerate deploy/mosquitto/mosquitto.conf"
    assert BROKER_SETTINGS in committed
    assert "allow_anonymous false" in committed
