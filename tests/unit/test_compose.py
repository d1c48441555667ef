"""docker-compose.yml, read as Docker would: no Docker runs here, so it is checked by reading."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from smartplace.stack.mosquitto import (
    DEPLOY_BRIDGES_DIR,
    DEPLOY_CERTS_DIR,
    DEPLOY_PLAIN_PORT,
    DEPLOY_TLS_PORT,
)

ROOT = Path(__file__).resolve().parents[2]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
ONE_SHOT = {name for name, s in SERVICES.items() if s.get("restart") == "no"}
PINNED = re.compile(r"^[\w./-]+:\d+(\.\d+)+([-.\w]*)$")


def test_every_service_the_design_names_is_there() -> None:
    assert {"mosquitto", "influxdb", "grafana", "ingest", "feeds", "simulator"} <= set(SERVICES)
    assert SERVICES["simulator"]["profiles"] == ["demo"]


def test_images_are_pinned_to_versions() -> None:
    for name, service in SERVICES.items():
        image = service.get("image")
        assert image, f"{name} names no image"
        assert PINNED.match(image), f"{name}: {image} is not pinned to a version"
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("FROM ") or ("COPY --from=" in line and ":" in line):
            image = line.split()[1] if line.startswith("FROM ") else line.split("=")[1].split()[0]
            assert PINNED.match(image), f"Dockerfile: {image} is not pinned"


def test_every_long_running_service_has_a_health_check() -> None:
    for name, service in SERVICES.items():
        if name not in ONE_SHOT:
            assert "test" in service.get("healthcheck", {}), f"{name} has no health check"
    assert {"broker-init", "broker-accounts"} == ONE_SHOT


def test_every_mounted_file_exists_in_the_repository() -> None:
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name} mounts {source}, which is not in the repo"
            else:
                assert source in COMPOSE["volumes"], f"{name}: volume {source} is not declared"


def test_dependencies_name_services_that_exist() -> None:
    for name, service in SERVICES.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in SERVICES, f"{name} depends on unknown {dependency}"


def test_every_variable_it_needs_is_in_the_env_example() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    needed = set(re.findall(r"\$\{(\w+)", text))
    example = (ROOT / ".env.example").read_text()
    offered = set(re.findall(r"^(\w+)=", example, re.MULTILINE))
    assert needed == offered


def test_grafana_gets_the_generated_provisioning_and_no_anonymous_access() -> None:
    grafana = SERVICES["grafana"]
    mounted = {volume.split(":")[1] for volume in grafana["volumes"]}
    assert {
        "/etc/grafana/provisioning/datasources",
        "/etc/grafana/provisioning/dashboards",
        "/etc/grafana/provisioning/alerting",
        "/var/lib/grafana/dashboards",
    } <= mounted
    assert grafana["environment"]["GF_AUTH_ANONYMOUS_ENABLED"] == "false"


def test_the_broker_runs_the_generated_config() -> None:
    mounts = SERVICES["mosquitto"]["volumes"]
    assert "./deploy/mosquitto/mosquitto.conf:/mosquitto/config/mosquitto.conf:ro" in mounts


def test_the_broker_includes_the_bridges_directory_it_mounts() -> None:
    mounts = SERVICES["mosquitto"]["volumes"]
    assert f"./deploy/mosquitto/bridges:{DEPLOY_BRIDGES_DIR}:ro" in mounts
    config = (ROOT / "deploy/mosquitto/mosquitto.conf").read_text().splitlines()
    assert config[-1] == f"include_dir {DEPLOY_BRIDGES_DIR}"  # last, as mosquitto asks
    # bridge files hold API keys: the directory is in the repository, its files never are
    assert (ROOT / "deploy/mosquitto/bridges/.gitignore").read_text().splitlines()[-1] == "*.conf"


def test_each_influx_client_has_its_own_account_and_only_ingest_writes() -> None:
    env = {name: SERVICES[name]["environment"] for name in ("ingest", "feeds")}
    assert env["ingest"]["SMARTPLACE_INFLUX__USERNAME"] == "ingest"
    assert env["ingest"]["SMARTPLACE_INFLUX__PASSWORD"].startswith("${INFLUXDB_INGEST_PASSWORD")
    assert env["feeds"]["SMARTPLACE_INFLUX__USERNAME"] == "feeds"
    assert env["feeds"]["SMARTPLACE_INFLUX__PASSWORD"].startswith("${INFLUXDB_FEEDS_PASSWORD")
    grafana = SERVICES["grafana"]["environment"]
    assert grafana["INFLUXDB_GRAFANA_PASSWORD"].startswith("${INFLUXDB_GRAFANA_PASSWORD")
    assert "TOKEN" not in (ROOT / "docker-compose.yml").read_text()  # no shared operator token
    init = (ROOT / "deploy/influxdb/init.sh").read_text()
    assert "ingest:ALL:INFLUXDB_INGEST_PASSWORD" in init
    assert "grafana:READ:INFLUXDB_GRAFANA_PASSWORD" in init
    assert "feeds:READ:INFLUXDB_FEEDS_PASSWORD" in init
    influxdb = SERVICES["influxdb"]
    assert influxdb["environment"]["INFLUXDB_HTTP_AUTH_ENABLED"] == "true"
    for password in ("INGEST", "GRAFANA", "FEEDS"):
        assert f"INFLUXDB_{password}_PASSWORD" in influxdb["environment"]  # init.sh reads them
    assert (
        "./deploy/influxdb/init.sh:/docker-entrypoint-initdb.d/smartplace.sh:ro"
        in (influxdb["volumes"])
    )


def _listeners(config: str) -> dict[str, dict[str, str]]:
    """mosquitto.conf's listeners and the options given under each (mosquitto.conf(5): a
    listener's options follow its 'listener' line; these are the ones that name its TLS)."""
    per_listener = {"certfile", "keyfile", "cafile", "capath", "tls_version", "require_certificate"}
    listeners: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in config.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.partition(" ")
        if name == "listener":
            current = listeners.setdefault(value, {})
        elif name in per_listener:
            assert current is not None, f"{name} before any listener"
            current[name] = value
    return listeners


def test_only_the_broker_s_tls_listener_is_published_and_it_has_the_mounted_certificates() -> None:
    mosquitto = SERVICES["mosquitto"]
    assert mosquitto["ports"] == [f"{DEPLOY_TLS_PORT}:{DEPLOY_TLS_PORT}"]
    for name, service in SERVICES.items():  # no service publishes plain MQTT
        for port in service.get("ports", []):
            assert str(DEPLOY_PLAIN_PORT) not in port.split(":"), f"{name} publishes {port}"
    assert f"./deploy/mosquitto/certs:{DEPLOY_CERTS_DIR}:ro" in mosquitto["volumes"]
    config = (ROOT / "deploy/mosquitto/mosquitto.conf").read_text()
    assert _listeners(config) == {
        str(DEPLOY_PLAIN_PORT): {},  # plain, on compose's network only
        str(DEPLOY_TLS_PORT): {
            "certfile": f"{DEPLOY_CERTS_DIR}/server.crt",
            "keyfile": f"{DEPLOY_CERTS_DIR}/server.key",
            "tls_version": "tlsv1.2",  # the oldest allowed
            "require_certificate": "false",
        },
    }
    # a private key is never committed: the directory is in the repository, nothing in it
    ignored = (ROOT / "deploy/mosquitto/certs/.gitignore").read_text().splitlines()
    assert ignored[-2:] == ["*", "!.gitignore"]


def test_the_services_inside_compose_use_the_plain_listener_on_its_network() -> None:
    for name, service in SERVICES.items():
        environment = service.get("environment", {})
        if "SMARTPLACE_MQTT__HOST" in environment:
            assert environment["SMARTPLACE_MQTT__HOST"] == "mosquitto", name
            assert environment["SMARTPLACE_MQTT__PORT"] == str(DEPLOY_PLAIN_PORT), name
            assert "SMARTPLACE_MQTT__TLS_CA_FILE" not in environment, name


def test_the_image_is_built_from_what_its_dockerfile_copies_and_nothing_else() -> None:
    """compose builds the image from '.': without a .dockerignore, Docker sends the whole
    checkout to the builder, .env's passwords and deploy/mosquitto/certs' private keys with
    it."""
    copied = sorted(
        source.rstrip("/")
        for line in (ROOT / "Dockerfile").read_text().splitlines()
        if line.startswith("COPY ") and "--from=" not in line
        for source in line.split()[1:-1]
    )
    assert copied == ["README.md", "pyproject.toml", "smartplace", "uv.lock"]
    lines = [
        line
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert lines == ["*", *(f"!{source}" for source in copied), "**/__pycache__"]
