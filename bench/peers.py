"""The peers a council would pick, side by side: one burst, three pipelines.

The same burst (50,000 readings at QoS 1 by default, one per message, from 8 C
``mosquitto_pub`` processes) goes through the same mosquitto into the same influxd,
each pipeline with its own topic prefix and database:

- smartplace: ``smartplace ingest`` as its own process;
- paho + influxdb: ``bench/peer_paho_influxdb.py``, a subscriber written the way the
  libraries' tutorials write one (a ``write_points`` call per message);
- Node-RED 4 with node-red-contrib-influxdb 0.7 (an ``mqtt in`` node, a function node
  that shapes the point, an ``influxdb out`` node), installed from npm into a cache
  folder on first use; skipped with a line saying why when Node.js or npm is absent.

For each: readings the broker acknowledged (every publisher exited 0), readings landed
(counted in InfluxDB), time from the first publish to the last reading landed (waiting
until every reading landed or the count stayed flat for ``--flat-s``), the pipeline's
CPU per landed reading and its peak resident memory.

    .venv/bin/python -m bench.peers [--readings 50000] [--json bench/results/peers.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from smartplace.config import InfluxSettings, MqttSettings
from smartplace.influx import InfluxClient
from smartplace.stack import free_port
from smartplace.stack.process import PeakMemory, descendants

from .e2e import Ingest, Publishers, Stack, cpu_seconds, landed, payloads

NODE_RED_VERSION = "4.1.15"
NODE_RED_INFLUXDB_VERSION = "0.7.0"
NODE_RED_DIR = Path(
    os.environ.get(
        "SMARTPLACE_NODE_RED_DIR", Path.home() / ".cache" / "smartplace-bench" / "node-red"
    )
)


@dataclass
class PeerResult:
    peer: str
    acknowledged: int = 0
    landed: int = 0
    seconds_to_land: float | None = None
    cpu_us_per_reading: float | None = None
    peak_rss_mib: float | None = None
    notes: list[str] = field(default_factory=list)


class Peer:
    """A pipeline under test: started before the burst, its process tree watched, then stopped."""

    def __init__(
        self, process: subprocess.Popen[bytes], log: Path, memory: PeakMemory | None = None
    ) -> None:
        self.name = ""
        self.process = process
        self.log = log
        self.memory = memory or PeakMemory(process.pid, interval_s=0.2)
        self.notes: list[str] = []

    def cpu_s(self) -> float:
        return cpu_seconds([self.process.pid, *descendants(self.process.pid)])

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(30)

    def log_tail(self, lines: int = 3) -> str:
        text = self.log.read_text(errors="replace").strip().splitlines()
        return " | ".join(text[-lines:])


def wait_for_log(log: Path, text: str, timeout_s: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if text in log.read_text(errors="replace"):
            return True
        time.sleep(0.2)
    return False


def start_smartplace(mqtt: MqttSettings, influx: InfluxSettings, workdir: Path) -> Peer:
    ingest = Ingest(mqtt, influx, workdir)
    return Peer(ingest.process, workdir / "ingest.log", ingest.memory)


def start_paho(mqtt: MqttSettings, influx: InfluxSettings, workdir: Path) -> Peer:
    with InfluxClient(influx) as client:
        client.ensure_storage()  # the same database and retention policies smartplace makes
    log = workdir / "paho.log"
    script = Path(__file__).with_name("peer_paho_influxdb.py")
    process = subprocess.Popen(
        [
            sys.executable,
            str(script),
            "127.0.0.1",
            str(mqtt.port),
            mqtt.username or "",
            mqtt.password.get_secret_value() if mqtt.password else "",
            mqtt.client_id,
            f"{mqtt.topic_prefix}/air_quality/+/reading",
            influx.url,
            influx.database,
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    wait_for_log(log, "connected")
    time.sleep(1)  # subscribed
    return Peer(process, log)


def node_red_installed() -> tuple[Path | None, str]:
    """Node-RED's entry script, installed on first use; or None and why not."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        return None, "Node.js or npm is not installed (apt-get install nodejs npm)"
    red = NODE_RED_DIR / "node_modules" / "node-red" / "red.js"
    plugin = NODE_RED_DIR / "node_modules" / "node-red-contrib-influxdb"
    if not (red.is_file() and plugin.is_dir()):
        NODE_RED_DIR.mkdir(parents=True, exist_ok=True)
        (NODE_RED_DIR / "package.json").write_text(
            '{"name": "smartplace-bench-node-red", "private": true}'
        )
        done = subprocess.run(
            [
                npm,
                "install",
                "--no-audit",
                "--no-fund",
                f"node-red@{NODE_RED_VERSION}",
                f"node-red-contrib-influxdb@{NODE_RED_INFLUXDB_VERSION}",
            ],
            cwd=NODE_RED_DIR,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            return None, f"npm install failed: {done.stderr.strip().splitlines()[-1:]}"
    return red, ""


def node_red_flow(
    mqtt: MqttSettings, influx: InfluxSettings
) -> tuple[list[dict[str, object]], dict[str, object]]:
    """The flow a Node-RED user would draw, and its credentials (kept apart, as Node-RED does)."""
    influx_port = influx.url.rsplit(":", 1)[1].rstrip("/")
    # The point as node-red-contrib-influxdb takes it: [fields (time among them), tags].
    shape = (
        "const r = msg.payload;\n"
        "const fields = {};\n"
        "for (const k of Object.keys(r)) { if (k !== 'ts' && k !== 'device_id') fields[k] = r[k]; }\n"
        "fields.time = new Date(r.ts);\n"
        "msg.payload = [[fields, {device_id: msg.topic.split('/')[2]}]];\n"
        "return msg;"
    )
    flow: list[dict[str, object]] = [
        {"id": "tab", "type": "tab", "label": "smartplace peer"},
        {
            "id": "broker",
            "type": "mqtt-broker",
            "name": "mosquitto",
            "broker": "127.0.0.1",
            "port": str(mqtt.port),
            "clientid": mqtt.client_id,
            "autoConnect": True,
            "usetls": False,
            "protocolVersion": "4",
            "keepalive": "60",
            "cleansession": False,
        },
        {
            "id": "db",
            "type": "influxdb",
            "hostname": "127.0.0.1",
            "port": influx_port,
            "protocol": "http",
            "database": influx.database,
            "name": "influxd",
            "usetls": False,
            "influxdbVersion": "1.x",
        },
        {
            "id": "in",
            "type": "mqtt in",
            "z": "tab",
            "name": "readings",
            "topic": f"{mqtt.topic_prefix}/air_quality/+/reading",
            "qos": "1",
            "datatype": "json",
            "broker": "broker",
            "nl": False,
            "rap": True,
            "rh": 0,
            "inputs": 0,
            "wires": [["shape"]],
        },
        {
            "id": "shape",
            "type": "function",
            "z": "tab",
            "name": "to point",
            "func": shape,
            "outputs": 1,
            "wires": [["out"]],
        },
        {
            "id": "out",
            "type": "influxdb out",
            "z": "tab",
            "influxdb": "db",
            "name": "raw",
            "measurement": "air_quality",
            "precision": "",
            "retentionPolicy": "raw",
            "wires": [],
        },
    ]
    credentials: dict[str, object] = {
        "broker": {
            "user": mqtt.username or "",
            "password": mqtt.password.get_secret_value() if mqtt.password else "",
        },
        "db": {"username": "", "password": ""},
    }
    return flow, credentials


def start_node_red(red: Path, mqtt: MqttSettings, influx: InfluxSettings, workdir: Path) -> Peer:
    with InfluxClient(influx) as client:
        client.ensure_storage()
    user_dir = workdir / "node-red"
    user_dir.mkdir()
    flow, credentials = node_red_flow(mqtt, influx)
    (user_dir / "flows.json").write_text(json.dumps(flow))
    (user_dir / "flows_cred.json").write_text(json.dumps(credentials))
    (user_dir / "settings.js").write_text(
        "module.exports = {\n"
        f"  uiPort: {free_port()}, uiHost: '127.0.0.1',\n"
        "  flowFile: 'flows.json', credentialSecret: false,\n"
        "  logging: {console: {level: 'info', metrics: false, audit: false}},\n"
        "  editorTheme: {tours: false}, telemetry: {enabled: false},\n"
        "};\n"
    )
    log = workdir / "node-red.log"
    process = subprocess.Popen(
        [
            shutil.which("node") or "node",
            str(red),
            "--userDir",
            str(user_dir),
            "--settings",
            str(user_dir / "settings.js"),
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    peer = Peer(process, log)
    if not wait_for_log(log, "Connected to broker", 90):
        peer.notes.append(f"Node-RED never connected: {peer.log_tail()}")
    time.sleep(1)  # subscribed
    return peer


def burst(
    peer: Peer,
    mqtt: MqttSettings,
    influx: InfluxSettings,
    readings: int,
    flat_s: float,
) -> PeerResult:
    result = PeerResult(peer.name)
    result.notes += peer.notes
    cpu_before = peer.cpu_s()
    publishers = Publishers(mqtt)
    lines = payloads(time.time_ns() - 3_600 * 10**9, readings, 1, 10)
    expected = sum(len(device_lines) for device_lines in lines)
    started = time.monotonic()
    threads = publishers.send_all(lines)
    count, last_change, last_count = 0, started, -1
    with InfluxClient(influx) as client:
        while True:
            try:
                count = landed(client)
            except Exception as exc:  # a peer may have made the database unhappy
                result.notes.append(f"count failed once: {type(exc).__name__}")
            now = time.monotonic()
            if count != last_count:
                last_count, last_change = count, now
            if count >= expected or now - last_change > flat_s or now - started > 600:
                break
            time.sleep(0.2)
    for thread in threads:
        thread.join()
    publishers.close()
    result.acknowledged = expected if all(p.returncode == 0 for p in publishers.processes) else 0
    if not result.acknowledged:
        result.notes.append("a publisher failed, so the broker's acknowledgements are not known")
    result.landed = count
    result.seconds_to_land = last_change - started
    cpu = peer.cpu_s() - cpu_before
    result.cpu_us_per_reading = cpu * 1e6 / count if count else None
    if peer.process.poll() is not None:
        result.notes.append(f"the process exited ({peer.process.returncode}): {peer.log_tail()}")
    peer.stop()
    result.peak_rss_mib = peer.memory.peak_kib / 1024
    if count < expected:
        result.notes.append(f"{expected - count} lost ({(expected - count) / expected:.0%})")
        if "EMFILE" in peer.log.read_text(errors="replace"):
            result.notes.append("EMFILE (too many open files) in its log")
    return result


def run_peers(stack: Stack, readings: int, flat_s: float) -> list[PeerResult]:
    """The same burst through each peer, one after another, on this stack."""
    results: list[PeerResult] = []
    starters = {
        "smartplace": start_smartplace,
        "paho + influxdb (tutorial)": start_paho,
    }
    red, why = node_red_installed()
    if red is not None:
        starters[
            f"Node-RED {NODE_RED_VERSION} + node-red-contrib-influxdb {NODE_RED_INFLUXDB_VERSION}"
        ] = lambda m, i, w: start_node_red(red, m, i, w)
    else:
        print(f"Node-RED skipped: {why}")
    for number, (name, start) in enumerate(starters.items()):
        mqtt, influx = stack.accounts(f"peer{number}")
        workdir = Path(tempfile.mkdtemp(dir=stack.base))
        peer = start(mqtt, influx, workdir)
        peer.name = name
        results.append(burst(peer, mqtt, influx, readings, flat_s))
    return results


def print_peers(results: list[PeerResult], path: Path) -> None:
    print(
        f"\n{'peer':<58} {'acked':>7} {'landed':>7} {'s to land':>9} {'CPU µs/reading':>14} {'RSS MiB':>8}"
    )
    for r in results:
        print(
            f"{r.peer:<58} {r.acknowledged:>7,} {r.landed:>7,} {_f(r.seconds_to_land, 1):>9}"
            f" {_f(r.cpu_us_per_reading):>14} {_f(r.peak_rss_mib):>8}"
            + (f"  ({'; '.join(r.notes)})" if r.notes else "")
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([asdict(r) for r in results], indent=2))
    print(f"\nwritten to {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--readings", type=int, default=50_000)
    parser.add_argument(
        "--flat-s", type=float, default=15.0, help="stop waiting once the count is flat this long"
    )
    parser.add_argument("--json", type=Path, default=Path("bench/results/peers.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, Stack(Path(tmp)) as stack:
        results = run_peers(stack, args.readings, args.flat_s)
    print_peers(results, args.json)


def _f(value: float | None, decimals: int = 0) -> str:
    return "-" if value is None else f"{value:,.{decimals}f}"


if __name__ == "__main__":
    main()
