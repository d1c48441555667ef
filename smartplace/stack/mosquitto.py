"""A mosquitto broker process with a config smartplace generates.

The broker settings that matter for delivery live in BROKER_SETTINGS, the one
source for the local stack, the tests and ``deploy/mosquitto/mosquitto.conf``.
"""

from __future__ import annotations

import getpass
import json
import secrets
import shutil
import ssl
import subprocess
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from smartplace.config import MqttSettings
from smartplace.devices.dynsec import Dynsec
from smartplace.errors import ServerNotFoundError, ServerStartError
from smartplace.private_files import private_dir
from smartplace.stack.process import ServerProcess, server_environment
from smartplace.stack.tls import TlsFiles

INSTALL_HINT = "install it with 'sudo apt-get install mosquitto' or set SMARTPLACE_MOSQUITTO_BIN"

# Each line says why: these are the settings that decide whether a backlog survives.
BROKER_SETTINGS = """\
# Keep persistent sessions and their queued messages across broker restarts.
persistence true
# Write the in-memory database to disk every 10 s, not only at shutdown, so a crash loses little.
autosave_interval 10
# The default (1000 messages) silently drops a persistent session's backlog while ingest is away;
# limit the queue by bytes instead.
max_queued_messages 0
max_queued_bytes 1073741824
# Readings are small; a packet larger than this is not a reading.
max_packet_size 1048576
# A bridged network server (The Things Stack) publishes at QoS 0: delivered to ingest's QoS 1
# subscription at QoS 1, they are queued for its persistent session while it is away.
upgrade_outgoing_qos true
"""


def find_mosquitto(configured: Path | None = None) -> Path:
    """The mosquitto binary: the configured one, then PATH, then Debian's /usr/sbin."""
    if configured is not None:
        if not configured.is_file():
            raise ServerNotFoundError(f"mosquitto not found at {configured}; {INSTALL_HINT}")
        return configured
    found = shutil.which("mosquitto")
    if found:
        return Path(found)
    for candidate in (Path("/usr/sbin/mosquitto"), Path("/usr/local/sbin/mosquitto")):
        if candidate.is_file():
            return candidate
    raise ServerNotFoundError(f"mosquitto is not installed; {INSTALL_HINT}")


DYNSEC_PLUGIN_CANDIDATES = (
    "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so",  # Debian/Ubuntu, amd64
    "/usr/lib/aarch64-linux-gnu/mosquitto_dynamic_security.so",  # Debian/Ubuntu, arm64
    "/usr/lib/mosquitto_dynamic_security.so",  # eclipse-mosquitto image
    "/usr/local/lib/mosquitto_dynamic_security.so",  # built from source
)


def find_dynsec_plugin(configured: Path | None = None) -> Path:
    """mosquitto's dynamic-security plugin, which holds every account and ACL."""
    if configured is not None:
        if not configured.is_file():
            raise ServerNotFoundError(f"no dynamic-security plugin at {configured}")
        return configured
    for candidate in DYNSEC_PLUGIN_CANDIDATES:
        if Path(candidate).is_file():
            return Path(candidate)
    raise ServerNotFoundError(
        "mosquitto's dynamic-security plugin (mosquitto_dynamic_security.so) was not found; "
        "it comes with Debian's mosquitto 2.x package, or set SMARTPLACE_MOSQUITTO_DYNSEC_PLUGIN"
    )


def init_dynsec(config_file: Path, admin: tuple[str, str]) -> None:
    """Create the plugin's JSON file with its admin account (mosquitto_ctrl hashes the password).

    The password goes to mosquitto_ctrl on its standard input, never on its command line
    (which any local user can read in /proc): given no password argument, ``dynsec init``
    prompts twice and reads each answer with fgets from stdin, a pipe as well as a terminal
    (mosquitto 2.0.11 apps/mosquitto_ctrl/dynsec.c:719-729, get_password() in
    apps/mosquitto_passwd/get_password.c:gets_quiet). The file is written under umask 077.
    """
    ctrl = shutil.which("mosquitto_ctrl") or "/usr/bin/mosquitto_ctrl"
    result = subprocess.run(
        [ctrl, "dynsec", "init", str(config_file), admin[0]],
        input=f"{admin[1]}\n{admin[1]}\n",
        env=server_environment(),
        capture_output=True,
        text=True,
        check=False,
        umask=0o077,
    )
    if result.returncode != 0 or not config_file.is_file():
        raise ServerStartError(
            f"'mosquitto_ctrl dynsec init' failed: {(result.stderr or result.stdout).strip()}"
        )
    # The admin also publishes the device registry. Granted here, before the broker starts:
    # changing a role live disconnects its clients, the admin included, mid-command.
    dynsec = json.loads(config_file.read_text())
    for role in dynsec["roles"]:
        if role["rolename"] == "admin":
            role["acls"].append({"acltype": "publishClientSend", "topic": "#", "allow": True})
    config_file.write_text(json.dumps(dynsec, indent=2))
    config_file.chmod(0o600)
    bind_admin_client_id(config_file, admin[0])


def bind_admin_client_id(config_file: Path, admin_username: str) -> None:
    """Bind the admin account to its one client id (its user name) in the plugin's file.

    Done in the file, before the broker starts, for the reason above; kept files made
    before accounts were bound get it at the next start. The plugin reads a client's
    "clientid" from its file (plugins/dynamic-security/clients.c, dynsec_clients__config_load).
    """
    dynsec = json.loads(config_file.read_text())
    for client in dynsec.get("clients", []):
        if client.get("username") == admin_username and client.get("clientid") != admin_username:
            client["clientid"] = admin_username
            config_file.write_text(json.dumps(dynsec, indent=2))
    config_file.chmod(0o600)


def render_tls_listener(listener: str, cert: Path | str, key: Path | str, note: str = "") -> str:
    """The lines of a TLS listener (``listener`` is its port and bind address, if any).

    Names as mosquitto.conf(5) gives them (mosquitto 2.0.20 man/mosquitto.conf.5.xml):
    ``certfile`` and ``keyfile`` together turn TLS on; ``tls_version`` is the oldest
    version allowed; ``require_certificate false`` checks no client certificate, and
    then ``cafile`` (only read to check client certificates) is not needed.
    """
    return f"""
# TLS: the listener devices use (README: "Broker TLS"). Clients check the broker's
# certificate; the broker asks none of them for one: they log in with a password.
{note}listener {listener}
certfile {cert}
keyfile {key}
tls_version tlsv1.2
require_certificate false
"""


def render_local_config(
    host: str,
    port: int,
    data_dir: Path,
    log_path: Path,
    plugin: Path,
    dynsec_file: Path,
    tls: tuple[int, TlsFiles] | None = None,
) -> str:
    """mosquitto.conf for a broker on ``host:port`` (and a TLS listener on ``host``, at
    ``tls``'s port with its files) keeping its data in ``data_dir``."""
    tls_listener = (
        "" if tls is None else render_tls_listener(f"{tls[0]} {host}", tls[1].cert, tls[1].key)
    )
    return (
        BROKER_SETTINGS
        + f"""
# Every client logs in; accounts and ACLs live in the dynamic-security plugin.
plugin {plugin}
plugin_opt_config_file {dynsec_file}
# Local listeners only: the stack and the tests never face a network.
listener {port} {host}
{tls_listener}
allow_anonymous false
persistence_location {data_dir}/
log_dest file {log_path}
log_type error
log_type warning
log_type notice
log_type information
# Started as root mosquitto drops to the 'mosquitto' user, which cannot write our data dir.
user {getpass.getuser()}
"""
    )


def _include_bridges(bridges_dir: Path | str) -> str:
    # mosquitto reads include_dir's *.conf files in name order, and asks for it last
    # (src/conf.c: only in the main file; src/conf_includedir.c: config__get_dir_files).
    return f"""
# Bridges to LoRaWAN network servers, one file each ('smartplace lorawan bridge'). Read as the
# broker starts, before it drops privileges: the files (they hold API keys) may be 0600.
include_dir {bridges_dir}
"""


DEPLOY_CONFIG = Path("deploy/mosquitto/mosquitto.conf")
DEPLOY_BRIDGES_DIR = "/mosquitto/config/bridges"
"""Where docker-compose mounts deploy/mosquitto/bridges/ in the broker's container."""
DEPLOY_CERTS_DIR = "/mosquitto/certs"
"""Where docker-compose mounts deploy/mosquitto/certs/ (server.crt, server.key)."""
DEPLOY_PLAIN_PORT = 1883
"""The plain listener: on compose's internal network only, for the services in it."""
DEPLOY_TLS_PORT = 8883
"""The TLS listener, the one compose publishes (IANA's port for MQTT over TLS)."""


def render_deploy_config() -> str:
    """mosquitto.conf for the eclipse-mosquitto 2.x container docker-compose runs.

    The same BROKER_SETTINGS as the local stack and the tests; committed as
    deploy/mosquitto/mosquitto.conf, and a test fails when it drifts from this.
    Create the plugin's file once with 'smartplace broker init-dynsec
    /mosquitto/data/dynamic-security.json' (see the README).
    """
    return (
        "# Generated by smartplace (stack/mosquitto.py: render_deploy_config); do not edit by hand.\n"
        + BROKER_SETTINGS
        + f"""
# Every client logs in; accounts and ACLs live in the dynamic-security plugin's file,
# on the data volume so that devices added at run time survive a restart.
plugin /usr/lib/mosquitto_dynamic_security.so
plugin_opt_config_file /mosquitto/data/dynamic-security.json
# Plain MQTT, for the services on compose's own network (ingest, the simulator, the CLI):
# docker-compose.yml does not publish it, so nothing outside reaches it.
listener {DEPLOY_PLAIN_PORT}
"""
        + render_tls_listener(
            str(DEPLOY_TLS_PORT),
            f"{DEPLOY_CERTS_DIR}/server.crt",
            f"{DEPLOY_CERTS_DIR}/server.key",
            # src/mosquitto.c (2.0.20): drop_privileges() comes before listeners__start()
            "# Read after the broker drops privileges to its user, uid 1883 in the image:\n"
            "# server.key must be readable by that uid.\n",
        )
        + """
allow_anonymous false
persistence_location /mosquitto/data/
log_dest stdout
log_type error
log_type warning
log_type notice
log_type information
"""
        + _include_bridges(DEPLOY_BRIDGES_DIR)
    )


def mqtt_answers(host: str, port: int, ca_file: Path | None = None, timeout_s: float = 2.0) -> bool:
    """True when a broker on host:port answers CONNECT with a CONNACK (any reason code);
    over TLS, trusting ``ca_file``, when one is given."""
    answered: list[bool] = []

    def on_connect(*_args: object) -> None:
        answered.append(True)

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"smartplace-probe-{uuid.uuid4()}")
    client.on_connect = on_connect
    if ca_file is not None:
        context = ssl.create_default_context(cafile=str(ca_file))
        context.check_hostname = False  # whether it answers, not which names it has
        client.tls_set_context(context)
    try:
        client.connect(host, port, keepalive=10)
        deadline = time.monotonic() + timeout_s
        while not answered and time.monotonic() < deadline:
            client.loop(timeout=0.05)
        client.disconnect()
    except OSError:
        return False
    return bool(answered)


class MosquittoServer(ServerProcess):
    name = "mosquitto"

    def __init__(
        self,
        binary: Path,
        base_dir: Path,
        port: int,
        admin: tuple[str, str],
        plugin: Path,
        host: str = "127.0.0.1",
        extra_config: str = "",
        bridges_dir: Path | None = None,
        tls: tuple[int, TlsFiles] | None = None,
    ) -> None:
        super().__init__()
        self.tls = tls
        """A TLS listener beside the plain one: its port and certificate set (stack.tls)."""
        self.extra_config = extra_config
        """mosquitto.conf lines after ours: bridges (smartplace lorawan bridge)."""
        self.bridges_dir = bridges_dir
        """A directory of bridge files the broker includes (created, 0700: they hold keys)."""
        self.binary = binary
        self.base_dir = base_dir
        self.host = host
        self.port = port
        self.admin = admin
        self.plugin = plugin
        self.config_path = base_dir / "mosquitto.conf"
        self.data_dir = base_dir / "data"
        self.dynsec_file = base_dir / "dynamic-security.json"
        self.log_path = base_dir / "mosquitto.log"

    def prepare(self) -> None:
        self.base_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.base_dir.chmod(0o700)  # the plugin's file holds every account's password hash
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not self.dynsec_file.is_file():  # kept between runs: it holds every device's account
            init_dynsec(self.dynsec_file, self.admin)
        bind_admin_client_id(self.dynsec_file, self.admin[0])
        if self.bridges_dir is not None:
            private_dir(self.bridges_dir)  # mosquitto refuses to start on a missing include_dir
        # extra_config before the include: its lines belong to our last listener (the TLS one,
        # when there is one), not to a bridge
        self.config_path.write_text(
            render_local_config(
                self.host,
                self.port,
                self.data_dir,
                self.log_path,
                self.plugin,
                self.dynsec_file,
                self.tls,
            )
            + self.extra_config
            + (_include_bridges(self.bridges_dir) if self.bridges_dir is not None else "")
        )

    def argv(self) -> list[str]:
        return [str(self.binary), "-c", str(self.config_path)]

    def is_ready(self) -> bool:
        return mqtt_answers(self.host, self.port) and (
            self.tls is None or mqtt_answers(self.host, self.tls[0], self.tls[1].ca_cert)
        )

    def describe(self) -> str:
        plain = f"mqtt://{self.host}:{self.port}"
        return plain if self.tls is None else f"{plain} and mqtts://{self.host}:{self.tls[0]}"

    def tls_settings(self, mqtt: MqttSettings) -> MqttSettings:
        """``mqtt`` pointed at the TLS listener, trusting its CA."""
        if self.tls is None:
            raise ValueError("this broker has no TLS listener")
        port, files = self.tls
        return mqtt.model_copy(update={"port": port, "tls_ca_file": files.ca_cert})


def provisioned_mqtt(server: MosquittoServer, stem: str) -> MqttSettings:
    """MQTT settings with a fresh topic prefix ``{stem}-{unique}`` and ingest and simulator
    accounts for it, created in the broker's dynamic security (with ``server``'s admin).

    For the tests and benchmarks, which each want a broker of their own to themselves.
    """
    unique = uuid.uuid4().hex[:10]
    ingest = (f"ingest-{unique}", secrets.token_urlsafe(12))
    simulator = (f"simulator-{unique}", secrets.token_urlsafe(12))
    mqtt = MqttSettings(
        port=server.port,
        topic_prefix=f"{stem}-{unique}",
        client_id=f"ingest-{unique}",
        username=ingest[0],
        password=ingest[1],
        simulator_username=simulator[0],
        simulator_password=simulator[1],
        admin_username=server.admin[0],
        admin_password=server.admin[1],
    )
    with Dynsec(mqtt, server.admin) as dynsec:
        dynsec.ensure_service_accounts(mqtt)
    return mqtt
