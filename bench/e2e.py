"""End to end: readings published over MQTT until they are queryable in InfluxDB.

One run on this machine: it starts its own mosquitto (dynamic security, as
deployed) and influxd on free ports in a temp dir, and for each case runs
`smartplace ingest` as its own process. Load comes from C `mosquitto_pub`
processes (one per simulated device, fed JSON lines by this script), so the
load generator does not eat the Python cores being measured. The readings are
the simulator's (AirQualityGenerator's values in its payload shape: device id,
ISO time, five fields), made before each case starts; times are a millisecond
apart per device (latency cases: stamped when sent, to the microsecond). Counts are
taken in InfluxDB, not at the publisher.

Cases, each for (a) one reading per message and (b) arrays of 100:
- sustained: N readings as fast as the publishers go; readings/s landed;
- latency at 1,000 and 10,000 readings/s, and at half the rate the sustained
  case landed in this run (so the load is the same share of any machine):
  publish-to-queryable p50/p99, sampled every 100 ms as (now - newest
  queryable reading's time);
- ingest's peak RSS, CPU seconds and CPU microseconds per reading landed.
Beside them, on the same broker and database: a C `mosquitto_sub` receive
rate and a batched raw write rate into influxd (the limits), and a baseline
(paho subscriber, one HTTP write per message). Then, on the same stack, the
peers' burst (bench/peers.py: smartplace, a tutorial paho + influxdb script and
Node-RED, 50,000 readings each), so one run gives every figure the README shows.

    .venv/bin/python -m bench.e2e [--readings 200000] [--peers-readings 50000]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

import httpx
import numpy as np
import orjson
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from smartplace.config import (
    InfluxSettings,
    IngestSettings,
    MqttSettings,
    Settings,
    settings_environment,
)
from smartplace.devices.dynsec import Dynsec
from smartplace.influx import InfluxClient
from smartplace.private_files import write_private_text
from smartplace.simulator import AirQualityGenerator, air_quality_device_ids
from smartplace.stack import (
    InfluxdServer,
    MosquittoServer,
    find_influxd,
    find_mosquitto,
    free_port,
    free_port_block,
)
from smartplace.stack.mosquitto import find_dynsec_plugin, provisioned_mqtt
from smartplace.stack.process import PeakMemory, descendants

DEVICES = 8
DEVICE_IDS = air_quality_device_ids(DEVICES)
SIMULATOR = AirQualityGenerator(DEVICE_IDS, seed=1)


@dataclass
class Result:
    case: str
    readings: int = 0
    seconds: float = 0.0
    readings_per_s: float | None = None
    """Landed per second (sustained cases and limits); latency cases run at a fixed rate."""
    p50_ms: float | None = None
    p99_ms: float | None = None
    peak_rss_mib: float | None = None
    cpu_s: float | None = None
    cpu_us_per_reading: float | None = None
    """Ingest's CPU (all its processes) per reading landed: the figure that carries across machines."""
    notes: list[str] = field(default_factory=list)


class Stack:
    def __init__(self, base: Path) -> None:
        self.admin = ("bench-admin", secrets.token_urlsafe(12))
        self.mosquitto = MosquittoServer(
            find_mosquitto(), base / "mosquitto", free_port(), self.admin, find_dynsec_plugin()
        )
        self.influxd = InfluxdServer(find_influxd(), base / "influxd", free_port(), free_port())
        self.base = base

    def __enter__(self) -> Stack:
        self.mosquitto.start()
        self.influxd.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.mosquitto.stop()
        self.influxd.stop()

    def accounts(self, name: str) -> tuple[MqttSettings, InfluxSettings]:
        mqtt = provisioned_mqtt(self.mosquitto, f"bench-{name}")
        return mqtt, InfluxSettings(url=self.influxd.url, database=f"bench_{name}")


class Ingest:
    """`smartplace ingest` as its own process, with its resident memory and CPU watched."""

    def __init__(
        self, mqtt: MqttSettings, influx: InfluxSettings, workdir: Path, workers: int = 1
    ) -> None:
        settings = Settings(
            mqtt=mqtt.model_copy(update={"extra_subscriptions": []}),
            influx=influx,
            ingest=IngestSettings(
                require_registered_devices=False,
                http_port=free_port_block(workers),
                max_readings_per_payload=1000,
                workers=workers,
            ),
            stack_dir=workdir,
        )
        env = {**os.environ, **settings_environment(settings)}
        self.log = (workdir / "ingest.log").open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "smartplace", "ingest", "--log-level", "WARNING"],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.memory = PeakMemory(self.process.pid, interval_s=0.2)
        time.sleep(3)  # connected and subscribed (a persistent session keeps what comes early)

    def cpu_s(self) -> float:
        """CPU seconds of ingest and its workers so far."""
        return cpu_seconds([self.process.pid, *descendants(self.process.pid)])

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(60)


def client_options(tool: str, options: dict[str, str]) -> dict[str, str]:
    """An environment whose $XDG_CONFIG_HOME/{tool} (0600) holds these options.

    mosquitto_pub and mosquitto_sub read that file before their argv (mosquitto 2.0.11
    client/client_shared.c:346-375, one "option value" a line), so no password is on a
    command line.
    """
    home = Path(tempfile.mkdtemp(prefix=f"{tool}-"))  # mkdtemp makes it 0700
    write_private_text(home / tool, "".join(f"{k} {v}\n" for k, v in options.items()))
    return {**os.environ, "XDG_CONFIG_HOME": str(home)}


def publisher_accounts(mqtt: MqttSettings, count: int) -> list[tuple[str, str]]:
    """``count`` accounts with the simulator's role, each bound to its own client id (one
    account, one connection: see smartplace.accounts), for parallel C publishers."""
    assert mqtt.simulator_username
    assert mqtt.simulator_password
    admin = mqtt.admin_account()
    assert admin is not None
    password = mqtt.simulator_password.get_secret_value()
    names = [f"{mqtt.simulator_username}-p{n}" for n in range(count)]
    with Dynsec(mqtt, admin) as dynsec:
        dynsec.run(
            [
                {
                    "command": "createClient",
                    "username": name,
                    "password": password,
                    "clientid": name,
                    "roles": [{"rolename": f"simulator:{mqtt.topic_prefix}"}],
                }
                for name in names
            ]
        )
    return [(name, password) for name in names]


class Publishers:
    """One C mosquitto_pub per device (-l: a message per stdin line), at QoS 1."""

    def __init__(self, mqtt: MqttSettings) -> None:
        binary = shutil.which("mosquitto_pub") or "/usr/bin/mosquitto_pub"
        self.pipes: list[IO[bytes]] = []
        self.processes = []
        for device, (username, password) in enumerate(publisher_accounts(mqtt, DEVICES)):
            process = subprocess.Popen(
                [
                    binary,
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(mqtt.port),
                    "-q",
                    "1",
                    "-t",
                    f"{mqtt.topic_prefix}/air_quality/{DEVICE_IDS[device]}/reading",
                    "-l",
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=client_options(
                    "mosquitto_pub", {"-u": username, "-P": password, "-i": username}
                ),
            )
            assert process.stdin is not None
            self.processes.append(process)
            self.pipes.append(process.stdin)

    def send_all(self, lines: list[list[bytes]]) -> list[threading.Thread]:
        """Each device's lines into its publisher, on threads; flushed (the pipe buffers)."""

        def feed(pipe: IO[bytes], device_lines: list[bytes]) -> None:
            pipe.writelines(device_lines)
            pipe.flush()

        threads = [
            threading.Thread(target=feed, args=(pipe, device_lines), daemon=True)
            for pipe, device_lines in zip(self.pipes, lines, strict=True)
        ]
        for thread in threads:
            thread.start()
        return threads

    def close(self) -> None:
        for pipe in self.pipes:
            pipe.close()
        for process in self.processes:
            process.wait(120)


def payloads(start_ns: int, readings: int, per_message: int, step_ms: int) -> list[list[bytes]]:
    """Per device, JSON lines of the simulator's readings, one every ``step_ms`` from ``start_ns``."""
    per_device = readings // DEVICES
    ts_ns = start_ns // 10**6 * 10**6 + np.arange(per_device, dtype=np.int64) * step_ms * 10**6
    lines: list[list[bytes]] = []
    for device, body in enumerate(simulated(ts_ns, "ms")):
        lines.append(
            [
                orjson.dumps(body[i : i + per_message] if per_message > 1 else body[i]) + b"\n"
                for i in range(0, len(body) - per_message + 1, per_message)
            ]
        )
        assert len(lines[device]) == per_device // per_message
    return lines


def simulated(ts_ns: np.ndarray, unit: str) -> list[list[dict[str, object]]]:
    """For each device, its readings at these times: the simulator's values in its payload
    shape (``AirQualityGenerator.readings``), with ISO times to the ``unit`` ("ms" or "us")."""
    values = SIMULATOR.block(ts_ns / 1e9)  # (times, devices) per field
    times = [
        text + "Z"
        for text in np.datetime_as_string(ts_ns.astype("datetime64[ns]"), unit=unit).tolist()
    ]
    out = []
    for device, device_id in enumerate(DEVICE_IDS):
        columns = [values[name][:, device].tolist() for name in SIMULATOR.fields]
        out.append(
            [
                {"device_id": device_id, "ts": ts, **dict(zip(SIMULATOR.fields, row, strict=True))}
                for ts, *row in zip(times, *columns, strict=True)
            ]
        )
    return out


def landed(influx: InfluxClient) -> int:
    rows = influx.query_rows('SELECT count("no2_ugm3") FROM "raw"."air_quality"')
    return int(rows[0]["count"]) if rows else 0


def sustained(stack: Stack, name: str, readings: int, per_message: int, workers: int = 1) -> Result:
    mqtt, influx_settings = stack.accounts(name)
    result = Result(f"sustained, {per_message} per message" + _workers(workers))
    ingest = Ingest(mqtt, influx_settings, Path(tempfile.mkdtemp(dir=stack.base)), workers)
    publishers = Publishers(mqtt)
    lines = payloads(time.time_ns() - 3_600 * 10**9, readings, per_message, 10)
    started = time.monotonic()
    threads = publishers.send_all(lines)
    expected = sum(len(ls) for ls in lines) * per_message
    with InfluxClient(influx_settings) as influx:
        while True:
            count = landed(influx)
            if count >= expected or time.monotonic() - started > 600:
                break
            time.sleep(0.1)
    result.seconds = time.monotonic() - started
    for thread in threads:
        thread.join()
    publishers.close()
    result.readings = count
    result.readings_per_s = count / result.seconds
    result.cpu_s = ingest.cpu_s()
    ingest.stop()
    result.peak_rss_mib = ingest.memory.peak_mib
    if count < expected:
        result.notes.append(f"only {count} of {expected} landed within 600 s")
    return result


def latency(stack: Stack, name: str, rate: int, per_message: int, seconds: float = 10.0) -> Result:
    mqtt, influx_settings = stack.accounts(name)
    result = Result(f"latency at {rate:,}/s, {per_message} per message")
    ingest = Ingest(mqtt, influx_settings, Path(tempfile.mkdtemp(dir=stack.base)))
    publishers = Publishers(mqtt)
    messages_per_s = rate / per_message
    stop = threading.Event()
    samples: list[float] = []

    # The simulator's readings, made before the clock starts; each is stamped when it is sent.
    pool = simulated(time.time_ns() + np.arange(1_000, dtype=np.int64) * 10**6, "ms")
    epoch = datetime(1970, 1, 1, tzinfo=UTC)

    def feed() -> None:
        started = time.monotonic()
        sent = 0
        last_us = [0] * DEVICES  # a device's times stay unique, a microsecond apart at least
        while not stop.is_set():
            due = int((time.monotonic() - started) * messages_per_s)
            now_us = time.time_ns() // 1000
            while sent < due:
                device = sent % DEVICES
                first_us = max(now_us, last_us[device] + 1)
                last_us[device] = first_us + per_message - 1
                body = [
                    {
                        **pool[device][(sent + k) % len(pool[device])],
                        "ts": (epoch + timedelta(microseconds=first_us + k))
                        .isoformat(timespec="microseconds")
                        .replace("+00:00", "Z"),
                    }
                    for k in range(per_message)
                ]
                line = orjson.dumps(body if per_message > 1 else body[0]) + b"\n"
                publishers.pipes[device].write(line)
                sent += 1
            for pipe in publishers.pipes:
                pipe.flush()
            time.sleep(0.005)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    with InfluxClient(influx_settings) as influx:
        time.sleep(2)  # warm up
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            rows = influx.query_rows('SELECT last("no2_ugm3") FROM "raw"."air_quality"')
            if rows:
                samples.append((time.time_ns() - int(rows[0]["time"])) / 1e6)
            time.sleep(0.1)
        stop.set()
        feeder.join()
        result.readings = landed(influx)
    publishers.close()
    result.cpu_s = ingest.cpu_s()
    ingest.stop()
    result.peak_rss_mib = ingest.memory.peak_mib
    result.seconds = seconds
    if samples:
        result.p50_ms, result.p99_ms = (float(v) for v in np.percentile(samples, [50, 99]))
    return result


def sweep(
    stack: Stack,
    name: str,
    per_message: int,
    rates: list[int],
    step_s: float = 6.0,
    workers: int = 1,
) -> list[Result]:
    """Rising offered rates into one ingest: per step, the rate that landed and how far behind
    ingest was at its end. The steps stop once ingest falls more than 2 s behind."""
    mqtt, influx_settings = stack.accounts(name)
    ingest = Ingest(mqtt, influx_settings, Path(tempfile.mkdtemp(dir=stack.base)), workers)
    publishers = Publishers(mqtt)
    # Where both cores go, step by step: is there one to spare for ingest?
    others = {
        "mosquitto": [stack.mosquitto.pid or 0],
        "influxd": [stack.influxd.pid or 0],
        "publishers": [process.pid for process in publishers.processes],
    }
    results: list[Result] = []
    sent = 0
    start_ns = time.time_ns() - 3_600 * 10**9
    with InfluxClient(influx_settings) as influx:
        for rate in rates:
            result = Result(
                f"sweep, {per_message} per message{_workers(workers)}, offered {rate:,}/s"
            )
            readings = int(rate * step_s)
            # Each device a reading a millisecond, carrying on from the last step's times.
            lines = payloads(start_ns + sent // DEVICES * 10**6, readings, per_message, 1)
            slices = 100  # paced in hundredths of the step
            before = landed(influx)
            cpu_before = ingest.cpu_s()
            others_before = [cpu_seconds(pids) for pids in others.values()]
            idle_before = machine_idle()
            started = time.monotonic()
            for k in range(slices):
                due = started + step_s * k / slices
                time.sleep(max(0.0, due - time.monotonic()))
                for pipe, device_lines in zip(publishers.pipes, lines, strict=True):
                    n = len(device_lines)
                    pipe.writelines(device_lines[k * n // slices : (k + 1) * n // slices])
                    pipe.flush()
            sent += sum(len(ls) for ls in lines) * per_message
            time.sleep(max(0.0, started + step_s - time.monotonic()))
            count = landed(influx)
            result.seconds = time.monotonic() - started
            result.readings = count - before
            result.readings_per_s = result.readings / result.seconds
            result.cpu_s = ingest.cpu_s() - cpu_before
            behind_s = (sent - count) / rate
            idle = machine_idle() - idle_before
            spent = {"ingest": result.cpu_s} | {
                name: cpu_seconds(pids) - was
                for (name, pids), was in zip(others.items(), others_before, strict=True)
            }
            result.notes.append(
                f"{behind_s:.1f} s behind at the end; both cores {1 - idle[0] / idle[1]:.0%} busy"
                " (cores: "
                + ", ".join(f"{name} {cpu / result.seconds:.2f}" for name, cpu in spent.items())
                + ")"
            )
            results.append(result)
            if behind_s > 2.0:
                break
    publishers.close()
    ingest.stop()
    for result in results:
        result.peak_rss_mib = ingest.memory.peak_mib
    return results


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU seconds these processes have used so far (those still running)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def machine_idle() -> np.ndarray:
    """(idle, total) CPU time of the whole machine so far, from /proc/stat: is there a core to spare?"""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return np.array([fields[3] + fields[4], sum(fields[:8])], dtype=np.float64)


def probe_mosquitto_sub(stack: Stack, messages: int) -> Result:
    """How fast a C subscriber receives what C publishers send (QoS 1): the broker's limit here."""
    mqtt, _ = stack.accounts("probe-sub")
    result = Result("limit: C mosquitto_sub receive, 1 per message")
    binary = shutil.which("mosquitto_sub") or "/usr/bin/mosquitto_sub"
    subscriber = subprocess.Popen(
        [
            binary,
            "-h",
            "127.0.0.1",
            "-p",
            str(mqtt.port),
            "-q",
            "1",
            "-t",
            f"{mqtt.topic_prefix}/#",
            "-C",
            str(messages),
        ],
        stdout=subprocess.DEVNULL,
        # Ingest's account, so its client id (accounts are bound to one).
        env=client_options(
            "mosquitto_sub",
            {
                "-u": mqtt.username or "",
                "-P": mqtt.password.get_secret_value() if mqtt.password else "",
                "-i": mqtt.client_id,
            },
        ),
    )
    time.sleep(1)
    publishers = Publishers(mqtt)
    lines = payloads(time.time_ns(), messages, 1, 1)
    started = time.monotonic()
    publishers.send_all(lines)
    subscriber.wait(300)
    result.seconds = time.monotonic() - started
    publishers.close()
    result.readings = sum(len(ls) for ls in lines)
    result.readings_per_s = result.readings / result.seconds
    return result


def probe_influx_write(stack: Stack, points: int) -> Result:
    """Batched raw writes (5,000 lines a request) into influxd: the database's limit here."""
    _, influx_settings = stack.accounts("probe-write")
    result = Result("limit: batched raw write into influxd")
    now = time.time_ns() - 3_600 * 10**9
    lines = [
        f"air_quality,device_id=dev-{i % 100:03d} no2_ugm3={20 + i % 13}.0 {now + i * 1000}"
        for i in range(points)
    ]
    with InfluxClient(influx_settings) as influx:
        influx.ensure_storage()
        started = time.monotonic()
        for first in range(0, points, 5_000):
            influx.write(lines[first : first + 5_000], "raw")
        result.seconds = time.monotonic() - started
    result.readings = points
    result.readings_per_s = points / result.seconds
    return result


def baseline(stack: Stack, readings: int) -> Result:
    """The tutorial pipeline: a paho subscriber that writes each message with its own request."""
    mqtt, influx_settings = stack.accounts("baseline")
    result = Result("baseline: paho, one HTTP write per message")
    with InfluxClient(influx_settings) as influx:
        influx.ensure_storage()
    http = httpx.Client(base_url=influx_settings.url)
    done = threading.Event()
    received = [0]

    def on_message(_c: paho.Client, _u: object, message: paho.MQTTMessage) -> None:
        reading = orjson.loads(message.payload)
        device = message.topic.split("/")[2]
        ts_ns = int(datetime.fromisoformat(reading["ts"]).timestamp() * 1e9)
        line = f"air_quality,device_id={device} no2_ugm3={reading['no2_ugm3']} {ts_ns}"
        http.post("/write", params={"db": influx_settings.database, "rp": "raw"}, content=line)
        received[0] += 1
        if received[0] >= readings:
            done.set()

    # The ingest account is bound to ingest's client id (smartplace.accounts).
    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=mqtt.client_id, protocol=paho.MQTTv5
    )
    client.username_pw_set(mqtt.username, mqtt.password.get_secret_value() if mqtt.password else "")
    client.on_message = on_message
    client.connect("127.0.0.1", mqtt.port)
    client.subscribe(f"{mqtt.topic_prefix}/#", qos=1)
    client.loop_start()
    time.sleep(1)
    publishers = Publishers(mqtt)
    lines = payloads(time.time_ns() - 3_600 * 10**9, readings, 1, 10)
    started = time.monotonic()
    publishers.send_all(lines)
    done.wait(600)
    result.seconds = time.monotonic() - started
    publishers.close()
    client.loop_stop()
    result.readings = received[0]
    result.readings_per_s = received[0] / result.seconds
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--readings", type=int, default=200_000)
    parser.add_argument("--baseline-readings", type=int, default=10_000)
    parser.add_argument("--json", type=Path, default=Path("bench/results/e2e.json"))
    parser.add_argument(
        "--peers-readings",
        type=int,
        default=50_000,
        help="the peers' burst (bench/peers.py) in the same run; 0 leaves it out",
    )
    args = parser.parse_args()
    from bench.peers import PeerResult, print_peers, run_peers  # peers builds on this module

    results: list[Result] = []
    peers: list[PeerResult] = []
    with tempfile.TemporaryDirectory() as tmp, Stack(Path(tmp)) as stack:
        results.append(probe_mosquitto_sub(stack, args.readings // 2))
        results.append(probe_influx_write(stack, args.readings))
        results.append(baseline(stack, args.baseline_readings))
        single = sustained(stack, "single", args.readings // 2, 1)
        batched = sustained(stack, "batched", args.readings * 5, 100)
        results += [single, batched]
        # Fixed rates carry across runs; half of what this machine sustains carries across machines.
        rates = [("fixed", 1_000, 1), ("fixed", 10_000, 1), ("fixed", 10_000, 100)]
        rates += [("half", _half(single), 1), ("half", _half(batched), 100)]
        for which, rate, per_message in rates:
            # Each case its own database and session: a half rate can equal a fixed one, and
            # ingest would then start on the other case's data (a rebuild, not a latency).
            name = f"lat-{which}-{rate}-{per_message}"
            results.append(latency(stack, name, rate, per_message))
        results += sweep(stack, "sweep-single", 1, [5_000, 10_000, 20_000, 30_000, 40_000, 50_000])
        batched_rates = [25_000, 50_000, 100_000, 150_000, 200_000, 300_000]
        results += sweep(stack, "sweep-batched", 100, batched_rates)
        results.append(sustained(stack, "batched-2", args.readings * 5, 100, workers=2))
        results += sweep(stack, "sweep-batched-2", 100, batched_rates, workers=2)
        if args.peers_readings:
            peers = run_peers(stack, args.peers_readings, flat_s=15.0)
    for r in results:
        if r.cpu_s is not None and r.readings:
            r.cpu_us_per_reading = r.cpu_s * 1e6 / r.readings
    base = next(r for r in results if r.case.startswith("baseline")).readings_per_s or 1.0
    receive_limit = results[0].readings_per_s or 1.0
    write_limit = results[1].readings_per_s or 1.0
    print(
        f"\n{'case':<56} {'readings/s':>12} {'x base':>7} {'of limit':>8} {'p50 ms':>8} {'p99 ms':>8} {'RSS MiB':>8} {'CPU s':>7} {'µs/rdg':>7}"
    )
    for r in results:
        # Single readings are bound by what the broker delivers; arrays by what influxd takes.
        limit = write_limit if "100 per message" in r.case else receive_limit
        share = (
            None if r.case.startswith("limit") else r.readings_per_s and r.readings_per_s / limit
        )
        print(
            f"{r.case:<56} {_f(r.readings_per_s):>12}"
            f" {_f(r.readings_per_s and r.readings_per_s / base, 1):>7}"
            f" {'-' if share is None else f'{share:.0%}':>8}"
            f" {_f(r.p50_ms):>8} {_f(r.p99_ms):>8} {_f(r.peak_rss_mib):>8} {_f(r.cpu_s):>7}"
            f" {_f(r.cpu_us_per_reading, 1):>7}" + (f"  ({'; '.join(r.notes)})" if r.notes else "")
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))
    print(f"\nwritten to {args.json}")
    if peers:
        print_peers(peers, args.json.with_name("peers.json"))


def _half(result: Result) -> int:
    """Half the rate a sustained case landed, rounded down to a thousand (at least 1,000)."""
    return max(1_000, int((result.readings_per_s or 0) / 2 // 1_000 * 1_000))


def _workers(count: int) -> str:
    return "" if count == 1 else f", {count} workers"


def _f(value: float | None, decimals: int = 0) -> str:
    return "-" if value is None else f"{value:,.{decimals}f}"


if __name__ == "__main__":
    main()
