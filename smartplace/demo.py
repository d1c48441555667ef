"""``smartplace demo``: the whole loop for a newcomer, with a live terminal view.

Brings the local stack up, runs the simulator and ingest side by side, shows
the counts as they move, then reads back what landed in InfluxDB.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from smartplace.accounts import simulator_client_id
from smartplace.config import MqttSettings, Settings, load_settings
from smartplace.influx import InfluxClient, quote_identifier
from smartplace.ingest.service import IngestService
from smartplace.ingest.stats import IngestStats
from smartplace.publisher import Publisher
from smartplace.schemas.kinds import AIR_QUALITY
from smartplace.simulator.run import air_quality_device_ids, provision_fleet, simulate
from smartplace.stack.local import LocalStack
from smartplace.storage import REJECTS, aggregate_field, aggregate_measurement

CATCH_UP_TIMEOUT_S = 30.0


@dataclass
class DemoResult:
    published: int
    stats: IngestStats
    row_counts: dict[str, int] = field(default_factory=dict)


class _Worker(threading.Thread):
    """A daemon thread that keeps the exception that ended it, for the main thread to raise."""

    def __init__(self, name: str, target: Callable[[], object]) -> None:
        super().__init__(name=name, daemon=True)
        self._work = target
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._work()
        except BaseException as exc:  # handed to the main thread, which re-raises it
            self.error = exc


def run_demo(
    settings: Settings,
    console: Console,
    duration_s: float,
    devices: int,
    interval_s: float,
    keep_stack: bool,
) -> DemoResult:
    stack = LocalStack(settings)
    console.print(f"[bold]Starting the local stack[/] in {stack.dir}/ ...")
    state, started = stack.up()
    console.print(
        f"  broker   {state.mqtt_address} (ingest), {state.mqtt_tls_address} (devices: TLS)\n"
        f"  influxdb {state.influx_url}"
    )
    # The stack wrote where it listens and its accounts to stack.toml: read settings again.
    settings = load_settings()
    # The demo's ingest logs in as ingest: the broker binds that account to ingest's client id
    # (smartplace.accounts), so stop any 'smartplace ingest' first. Its spool is its own.
    ingest = settings.ingest
    spool_dir = ingest.spool_dir or settings.stack_dir / "spool" / "demo"
    settings = settings.model_copy(
        update={"ingest": ingest.model_copy(update={"spool_dir": spool_dir})}
    )
    try:
        # The simulated devices publish as real ones would: over TLS, trusting the stack's CA.
        device_mqtt = stack.device_mqtt(settings.mqtt, state)
        return _run_loop(settings, device_mqtt, console, duration_s, devices, interval_s)
    finally:
        if started and not keep_stack:
            stack.down()
            console.print(
                "Stopped the local stack (its data stays in .smartplace/; 'smartplace up' restarts it)."
            )


def _run_loop(
    settings: Settings,
    device_mqtt: MqttSettings,
    console: Console,
    duration_s: float,
    devices: int,
    interval_s: float,
) -> DemoResult:
    added = provision_fleet(settings, air_quality_device_ids(devices))
    console.print(
        f"Registered {added} new devices in {settings.registry_file}; announced {devices} to ingest."
    )
    started_ns = time.time_ns()
    stats = IngestStats()
    service = IngestService(settings, stats)
    stop_ingest, stop_simulator, ingest_ready = (
        threading.Event(),
        threading.Event(),
        threading.Event(),
    )
    ingest = _Worker("ingest", lambda: service.run(stop_ingest, ingest_ready))
    ingest.start()
    while not ingest_ready.wait(0.1):
        if ingest.error:
            raise ingest.error
    publisher = Publisher(
        device_mqtt, simulator_client_id(settings.mqtt), settings.mqtt.simulator_account()
    )
    publisher.start()
    simulator = _Worker(
        "simulator",
        lambda: simulate(settings, devices, interval_s, duration_s, stop_simulator, publisher),
    )
    console.print(
        f"[bold]Simulating {devices} air quality monitors[/], one reading each every {interval_s:g} s, "
        f"for {duration_s:g} s (Ctrl-C ends it early)."
    )
    simulator.start()
    try:
        with Live(
            _live_view(publisher, stats, 0.0, duration_s), console=console, refresh_per_second=4
        ) as live:
            begun = time.monotonic()
            while simulator.is_alive():
                simulator.join(0.25)
                live.update(_live_view(publisher, stats, time.monotonic() - begun, duration_s))
            deadline = time.monotonic() + CATCH_UP_TIMEOUT_S
            while stats.received < publisher.published and time.monotonic() < deadline:
                time.sleep(0.1)
                live.update(_live_view(publisher, stats, time.monotonic() - begun, duration_s))
            time.sleep(settings.ingest.batch_max_wait_s * 2)
            live.update(_live_view(publisher, stats, time.monotonic() - begun, duration_s))
    except KeyboardInterrupt:
        console.print("Stopping: draining what has arrived ...")
    finally:
        stop_simulator.set()
        simulator.join()
        publisher.stop()
        stop_ingest.set()
        ingest.join()
    for worker in (simulator, ingest):
        if worker.error:
            raise worker.error
    result = DemoResult(published=publisher.published, stats=stats)
    _report(settings, console, started_ns, result)
    return result


def _live_view(
    publisher: Publisher, stats: IngestStats, elapsed_s: float, duration_s: float
) -> Group:
    snap = stats.snapshot()
    table = Table(
        title=f"smartplace demo: {min(elapsed_s, duration_s):.0f} / {duration_s:.0f} s",
        min_width=48,
    )
    table.add_column("stage")
    table.add_column("count", justify="right")
    table.add_row("published by the simulator", f"{publisher.published:,}")
    table.add_row("received by ingest", f"{snap['received']:,}")
    table.add_row("accepted", f"{snap['accepted']:,}")
    table.add_row("rejected", f"{snap['rejected']:,}")
    table.add_row("raw points written", f"{snap['raw_points_written']:,}")
    table.add_row("aggregate points written (1 min to 1 day)", f"{snap['agg_points_written']:,}")
    table.add_row("batches", f"{snap['batches']:,}")
    return Group(table)


def _report(settings: Settings, console: Console, started_ns: int, result: DemoResult) -> None:
    influx = settings.influx
    raw = quote_identifier(influx.raw_retention_policy)
    agg = quote_identifier(influx.agg_retention_policy)
    window_start_ns = started_ns - started_ns % 60_000_000_000
    # Only quoted identifiers from settings and integers of our own go into these statements.
    raw_name, minute_name = AIR_QUALITY.model.measurement, aggregate_measurement("air_quality", 60)
    queries = {
        f"{influx.raw_retention_policy}.{raw_name}": (
            f"SELECT count(*) FROM {raw}.{raw_name} WHERE time >= {started_ns}"  # noqa: S608
        ),
        f"{influx.agg_retention_policy}.{minute_name}": (
            f"SELECT count(*) FROM {agg}.{minute_name} WHERE time >= {window_start_ns}"  # noqa: S608
        ),
        f"{influx.raw_retention_policy}.{REJECTS}": (
            f"SELECT count(*) FROM {raw}.{REJECTS} WHERE time >= {started_ns}"  # noqa: S608
        ),
    }
    with InfluxClient(influx.for_reading()) as client:
        table = Table(title="What landed in InfluxDB (this run)")
        table.add_column("measurement")
        table.add_column("rows", justify="right")
        for name, statement in queries.items():
            rows = client.query_rows(statement)
            # count(*) counts each field; a point has at least one, so rows = the largest count.
            counts = [v for k, v in rows[0].items() if k.startswith("count")] if rows else []
            count = int(max(counts, default=0))
            result.row_counts[name] = count
            table.add_row(name, f"{count:,}")
        console.print(table)

        shown = [("pm25_ugm3", stat) for stat in ("mean", "min", "max", "count")]
        fields = ", ".join(aggregate_field(f, s) for f, s in [*shown, ("no2_ugm3", "mean")])
        latest = client.query_rows(
            f"SELECT {fields} FROM {agg}.{minute_name} WHERE time >= {window_start_ns} "  # noqa: S608
            "GROUP BY device_id ORDER BY time DESC LIMIT 1 SLIMIT 5"
        )
    sample = Table(title="A few 1-minute aggregates, read back with InfluxQL")
    for column in ("device_id", "window start (UTC)", "PM2.5 mean", "min", "max", "n", "NO2 mean"):
        sample.add_column(column, justify="right")
    for row in latest:
        start = time.strftime("%H:%M", time.gmtime(row["time"] / 1e9))
        sample.add_row(
            row["device_id"],
            start,
            _number(row.get("pm25_ugm3_mean")),
            _number(row.get("pm25_ugm3_min")),
            _number(row.get("pm25_ugm3_max")),
            str(row.get("pm25_ugm3_count") or 0),
            _number(row.get("no2_ugm3_mean")),
        )
    console.print(sample)
    console.print(
        f"Published {result.published:,}; ingest accepted {result.stats.accepted:,}, "
        f"rejected {result.stats.rejected:,}."
    )


def _number(value: float | None) -> str:
    """One decimal, or a dash where a window has no value (all of it flagged, say)."""
    return "-" if value is None else f"{value:.1f}"
