from __future__ import annotations

import os
from pathlib import Path

import pytest

from smartplace.config import (
    InfluxSettings,
    IngestSettings,
    MqttSettings,
    Settings,
    settings_environment,
    settings_reference,
)


def test_environment_overrides_nested_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMARTPLACE_MQTT__PORT", "11883")
    monkeypatch.setenv("SMARTPLACE_INGEST__WINDOWS_S", "[60, 900]")
    settings = Settings()
    assert settings.mqtt.port == 11883
    assert settings.ingest.windows_s == [60, 900]


def test_a_toml_file_is_read_and_the_environment_beats_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "smartplace.toml"
    config.write_text('[influx]\nurl = "http://db:8086"\ndatabase = "town"\n')
    monkeypatch.setenv("SMARTPLACE_CONFIG", str(config))
    monkeypatch.setenv("SMARTPLACE_INFLUX__DATABASE", "city")
    settings = Settings()
    assert settings.influx.url == "http://db:8086"
    assert settings.influx.database == "city"


def test_every_setting_is_documented() -> None:
    rows = settings_reference()
    assert ("SMARTPLACE_MQTT__PORT", "1883", "Broker port.") in rows
    assert (
        "SMARTPLACE_INGEST__WINDOWS_S",
        "[60, 900, 3600, 86400]",
        rows[[r[0] for r in rows].index("SMARTPLACE_INGEST__WINDOWS_S")][2],
    ) in rows
    assert all(description for _env, _default, description in rows)


def test_the_environment_made_from_settings_gives_a_child_the_same_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in [n for n in os.environ if n.startswith("SMARTPLACE_")]:
        monkeypatch.delenv(name)
    settings = Settings(
        mqtt=MqttSettings(port=11883, password="s3cret", extra_subscriptions=[]),
        influx=InfluxSettings(database="town", create_database=False),
        ingest=IngestSettings(
            windows_s=[60, 900], ttn_profiles={"app": "em310"}, spool_dir=tmp_path, workers=2
        ),
        stack_dir=tmp_path / "stack",
    )
    env = settings_environment(settings)
    assert env["SMARTPLACE_MQTT__PASSWORD"] == "s3cret"
    assert env["SMARTPLACE_INFLUX__CREATE_DATABASE"] == "false"
    assert env["SMARTPLACE_MQTT__EXTRA_SUBSCRIPTIONS"] == "[]"
    assert "SMARTPLACE_MQTT__HOST" not in env  # defaults are left to the child
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert Settings() == settings
