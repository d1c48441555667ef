"""The ``smartplace`` command: one sub-command per part of the pipeline.

Errors smartplace raises on purpose print as one line and exit 1; anything
else is a bug and shows its traceback.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from smartplace import __version__
from smartplace.config import Settings, invalid_settings, load_settings, settings_reference
from smartplace.dashboards.cli import app as dashboards_app
from smartplace.devices.cli import app as devices_app
from smartplace.errors import SmartplaceError
from smartplace.feeds.cli import app as feeds_app
from smartplace.logs import configure_logging
from smartplace.lorawan.cli import app as lorawan_app

app = typer.Typer(
    name="smartplace",
    help="Ingestion pipeline for a town's street sensors: MQTT in, InfluxDB out.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(devices_app, name="devices")
app.add_typer(dashboards_app, name="dashboards")
app.add_typer(feeds_app, name="feeds")
app.add_typer(lorawan_app, name="lorawan")
console = Console()
errors = Console(stderr=True)

LogLevel = Annotated[str, typer.Option(help="DEBUG, INFO, WARNING or ERROR.")]


def _version(value: bool) -> None:
    if value:
        console.print(f"smartplace {__version__}")
        raise typer.Exit


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """smartplace: air quality, footfall and smart-bin readings from MQTT to InfluxDB."""


@app.command()
def up(
    status: Annotated[
        bool, typer.Option("--status", help="Show whether the stack is running.")
    ] = False,
    stop: Annotated[
        bool, typer.Option("--stop", help="Stop the stack (its data is kept).")
    ] = False,
) -> None:
    """Start a local broker and InfluxDB under ./.smartplace/ (the demo stack).

    The broker includes every bridge file in ./.smartplace/bridges/ (smartplace lorawan bridge).
    """
    from smartplace.stack.local import LocalStack

    stack = LocalStack(load_settings())
    if stop:
        stopped = stack.down()
        console.print("Stopped the local stack." if stopped else "The local stack was not running.")
        return
    if not status:
        state, started = stack.up()
        console.print(
            "Started the local stack." if started else "The local stack is already running."
        )
        console.print(
            f"Devices connect over TLS to {state.mqtt_tls_address}, trusting the CA"
            f" {stack.tls.ca_cert}: {stack.tls_env_path} has SMARTPLACE_MQTT__PORT and"
            " SMARTPLACE_MQTT__TLS_CA_FILE for them. Ingest and the other commands use the"
            f" plain listener, {state.mqtt_address}, on loopback.",
            highlight=False,
        )
    table = Table(title=f"local stack in {stack.dir}/")
    for column in ("server", "address", "pid", "running", "answering"):
        table.add_column(column)
    statuses = stack.status()
    for s in statuses:
        table.add_row(s.name, s.address, str(s.pid or "-"), _yes(s.running), _yes(s.answering))
    console.print(table)
    if status and not all(s.running and s.answering for s in statuses):
        raise typer.Exit(3)


@app.command()
def ingest(
    log_level: LogLevel = "INFO",
    worker: Annotated[
        int | None,
        typer.Option(hidden=True, help="Run as this worker of SMARTPLACE_INGEST__WORKERS."),
    ] = None,
) -> None:
    """Run the ingest service until SIGTERM or Ctrl-C, then drain and stop."""
    from smartplace.ingest.receive.shard import worker_settings
    from smartplace.ingest.service import IngestService
    from smartplace.ingest.workers import run_workers

    configure_logging(log_level)
    stop = _stop_on_signals()
    settings = load_settings()
    if worker is None and settings.ingest.workers > 1:
        raise typer.Exit(run_workers(settings, log_level, stop))
    IngestService(worker_settings(settings, worker or 0)).run(stop)


@app.command()
def simulate(
    fleet: Annotated[
        Path | None,
        typer.Option(help="Fleet file (TOML): sites, devices, intervals, seed, faults."),
    ] = None,
    backfill: Annotated[
        float | None,
        typer.Option(min=0.0, help="Send the last DAYS days of history as fast as it is taken."),
    ] = None,
    rate: Annotated[
        float | None, typer.Option(min=1.0, help="Load mode: this many readings per second.")
    ] = None,
    accelerate: Annotated[
        float,
        typer.Option(
            min=1.0, help="Real time, X times faster (needs --duration-s: it ends at now)."
        ),
    ] = 1.0,
    output_format: Annotated[
        str | None,
        typer.Option("--format", help="Send every device as native, senml or ttn (bins only)."),
    ] = None,
    fault: Annotated[
        list[str] | None,
        typer.Option(help="A fault rate as NAME=RATE, e.g. duplicate=0.01 (repeatable)."),
    ] = None,
    record: Annotated[
        Path | None,
        typer.Option(help="Write every reading sent, after faults, as JSON lines (an oracle)."),
    ] = None,
    devices: Annotated[
        int | None,
        typer.Option(min=1, help="Quick mode: this many air quality monitors, no fleet file."),
    ] = None,
    interval_s: Annotated[
        float, typer.Option(min=0.01, help="Quick mode: seconds between a device's readings.")
    ] = 5.0,
    duration_s: Annotated[
        float | None,
        typer.Option(min=0.0, help="Stop after this many seconds (default: run until stopped)."),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(help="Random seed (default: the fleet's): same seed, same readings."),
    ] = None,
    as_devices: Annotated[
        Path | None,
        typer.Option(
            help="Publish one reading as each device in this secrets CSV (from 'devices import'), "
            "each with its own credentials."
        ),
    ] = None,
    provision: Annotated[
        bool,
        typer.Option(
            "--provision",
            help="Register the fleet (registry, broker accounts) and publish as each device.",
        ),
    ] = False,
    log_level: LogLevel = "INFO",
) -> None:
    """Publish simulated readings (QoS 1): a fleet in real time, a backfill, or a load."""
    configure_logging(log_level)
    settings = load_settings()
    stop = _stop_on_signals()
    if as_devices is not None:
        from smartplace.simulator.run import publish_as_devices, read_secrets

        published = publish_as_devices(settings, read_secrets(as_devices), seed or 0)
        console.print(f"Published {published:,} readings, each as its own device.")
        return
    if devices is not None:
        from smartplace.simulator.run import air_quality_device_ids, provision_fleet
        from smartplace.simulator.run import simulate as run_simulation

        if provision:
            added = provision_fleet(settings, air_quality_device_ids(devices))
            console.print(f"Registered {added} new devices ({devices} announced to ingest).")
        published = run_simulation(settings, devices, interval_s, duration_s, stop, seed=seed or 0)
        console.print(f"Published {published:,} readings.")
        return
    _simulate_fleet(
        settings,
        stop,
        fleet,
        backfill,
        rate,
        accelerate,
        output_format,
        fault or [],
        record,
        duration_s,
        seed,
        provision,
    )


def _simulate_fleet(
    settings: Settings,
    stop: threading.Event,
    fleet_file: Path | None,
    backfill: float | None,
    rate: float | None,
    accelerate: float,
    output_format: str | None,
    faults: list[str],
    record: Path | None,
    duration_s: float | None,
    seed: int | None,
    provision: bool,
) -> None:
    from rich.progress import Progress

    from smartplace.errors import SmartplaceError
    from smartplace.simulator import modes
    from smartplace.simulator.fleet import load_fleet
    from smartplace.simulator.run import fleet_publishers
    from smartplace.simulator.traffic import Traffic

    if backfill is not None and rate is not None:
        raise SmartplaceError("choose one of --backfill and --rate")
    if accelerate != 1.0 and duration_s is None:
        raise SmartplaceError("--accelerate needs --duration-s (the run ends at now)")
    loaded = load_fleet(fleet_file)
    changes: dict[str, object] = {}
    if seed is not None:
        changes["seed"] = seed
    if output_format is not None:
        if output_format not in ("native", "senml", "ttn"):
            raise SmartplaceError(f"--format {output_format!r}: use native, senml or ttn")
        changes["devices"] = [
            group.model_copy(update={"format": output_format}) for group in loaded.devices
        ]
    overrides = {}
    for item in faults:
        name, _, number = item.partition("=")
        try:
            overrides[name.strip()] = float(number)
        except ValueError:
            raise SmartplaceError(f"--fault {item!r}: expected NAME=RATE") from None
    try:
        changes["faults"] = loaded.faults.with_overrides(overrides)
        chosen = type(loaded).model_validate({**loaded.model_dump(), **changes})
    except ValueError as exc:
        raise SmartplaceError(str(exc)) from None
    traffic = Traffic(chosen, settings.mqtt.topic_prefix, array_max=60 if backfill else 1)
    publisher_for, publishers = fleet_publishers(settings, chosen, provision)
    record_file = modes.open_record(record)
    try:
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("readings", total=None)
            sender = modes.Sender(publisher_for, record_file, lambda n: progress.advance(task, n))
            if backfill is not None:
                modes.backfill(traffic, sender, stop, backfill)
            elif rate is not None:
                modes.load(traffic, sender, stop, rate, duration_s)
            else:
                modes.real_time(traffic, sender, stop, duration_s, accelerate)
    finally:
        for publisher in publishers:
            publisher.stop()
        if record_file is not None:
            record_file.close()
    summary = sender.summary
    console.print(
        f"Published {summary.readings:,} readings in {summary.messages:,} messages from "
        f"{len(traffic.devices)} devices."
    )


@app.command()
def demo(
    duration_s: Annotated[
        float, typer.Option(min=1.0, help="How long to run the simulator.")
    ] = 60.0,
    devices: Annotated[int, typer.Option(min=1, help="Air quality monitors to simulate.")] = 50,
    interval_s: Annotated[
        float, typer.Option(min=0.05, help="Seconds between one device's readings.")
    ] = 1.0,
    keep_stack: Annotated[
        bool, typer.Option("--keep-stack", help="Leave the local stack running afterwards.")
    ] = False,
) -> None:
    """The whole loop for a newcomer: local stack, simulator, ingest, live counts, then what landed."""
    from smartplace.demo import run_demo

    settings = load_settings()
    settings.stack_dir.mkdir(parents=True, exist_ok=True)
    configure_logging("INFO", file=settings.stack_dir / "demo.log")
    result = run_demo(settings, console, duration_s, devices, interval_s, keep_stack)
    if not all(result.row_counts.get(name) for name in list(result.row_counts)[:2]):
        errors.print("[red]error:[/] no readings landed; see .smartplace/demo.log")
        raise typer.Exit(1)


@app.command()
def validate(
    topic: Annotated[str, typer.Option(help="The MQTT topic the payload came on.")],
    source: Annotated[
        str, typer.Argument(help="File with the payload, or - for standard input.")
    ] = "-",
    profile: Annotated[
        str | None, typer.Option(help="Decode LoRaWAN uplinks with this payload profile.")
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(
            help="A profile parameter as NAME=NUMBER, e.g. empty_distance_mm=1200 (repeatable)."
        ),
    ] = None,
    received_at: Annotated[
        str | None, typer.Option(help="Judge it as if it arrived then (ISO 8601); default: now.")
    ] = None,
) -> None:
    """Decode and validate one payload exactly as ingest would; print the verdict as JSON.

    Exit 0 when every reading in it is accepted, 1 when anything is rejected.
    """
    import time

    import orjson

    from smartplace.errors import SmartplaceError
    from smartplace.ingest.decode.verdict import verdict
    from smartplace.schemas.profiles import UnknownProfileError, profile_named
    from smartplace.schemas.reading import timestamp_to_ns

    settings = load_settings()
    try:
        topic.encode("utf-8")
    except UnicodeEncodeError:
        raise SmartplaceError("--topic is not valid UTF-8, as every MQTT topic is") from None
    # One byte past the limit is enough to be refused as payload_too_large, as ingest
    # refuses it; reading more (an endless stdin, /dev/zero) would only exhaust memory.
    limit = settings.ingest.max_payload_bytes + 1
    payload = sys.stdin.buffer.read(limit) if source == "-" else _read_file(Path(source), limit)
    try:
        chosen = profile_named(profile) if profile else None
    except UnknownProfileError as exc:
        raise SmartplaceError(str(exc)) from None
    parameters = {}
    for item in param or []:
        name, _, number = item.partition("=")
        try:
            parameters[name.strip()] = float(number)
        except ValueError:
            raise SmartplaceError(f"--param {item!r}: expected NAME=NUMBER") from None
    try:
        received_ns = timestamp_to_ns(received_at) if received_at else time.time_ns()
    except ValueError:
        raise SmartplaceError(f"--received-at {received_at!r} is not ISO 8601") from None
    if not 0 <= received_ns < 1 << 63:  # arrival times are int64 nanoseconds from 1970
        raise SmartplaceError(f"--received-at {received_at!r} is outside 1970-2262")
    result = verdict(settings, topic, payload, received_ns, chosen, parameters)
    typer.echo(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    if result["verdict"] != "accepted":
        raise typer.Exit(1)


def _read_file(path: Path, limit: int) -> bytes:
    """At most ``limit`` bytes of the file."""
    try:
        with path.open("rb") as handle:
            return handle.read(limit)
    except OSError as exc:
        raise SmartplaceError(f"cannot read {path}: {exc.strerror}") from None


@app.command("config")
def show_config(
    markdown: Annotated[
        bool, typer.Option("--markdown", help="Print the table as Markdown.")
    ] = False,
) -> None:
    """Every setting: its environment variable, default and meaning."""
    rows = settings_reference()
    if markdown:
        from smartplace.docs import settings_markdown

        typer.echo(settings_markdown())
        return
    table = Table(title="smartplace settings (environment variables; also TOML keys)")
    for column in ("variable", "default", "meaning"):
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    console.print(table)


broker_app = typer.Typer(
    help="Set up a broker you run yourself (docker-compose does): dynamic security, accounts.",
    no_args_is_help=True,
)
app.add_typer(broker_app, name="broker")


@broker_app.command("init-dynsec")
def broker_init_dynsec(
    path: Annotated[
        Path, typer.Argument(help="The plugin's file, e.g. /mosquitto/data/dynamic-security.json.")
    ],
) -> None:
    """Create the dynamic-security file with the admin account (from settings), once.

    Leaves an existing file alone: it holds every device's account.
    """
    from smartplace.devices.provisioning import admin_account
    from smartplace.stack.mosquitto import init_dynsec

    if path.exists():
        console.print(f"{path} exists; left as it is.")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    init_dynsec(path, admin_account(load_settings()))
    console.print(f"Created {path} with the admin account.")


@broker_app.command("certificates")
def broker_certificates(
    names: Annotated[
        list[str],
        typer.Argument(help="Host names (or addresses) devices reach the broker by."),
    ],
    directory: Annotated[
        Path,
        typer.Option("--dir", help="Where to write them: what docker-compose mounts."),
    ] = Path("deploy/mosquitto/certs"),
) -> None:
    """Make a CA of your own and a broker certificate it signs for NAMES.

    The code 'smartplace up' makes its local certificates with (openssl). It never
    replaces a file: devices trust the CA, so a new one is a decision (delete the files).
    """
    from smartplace.stack.tls import TlsFiles, ensure_certificates

    existing = [path.name for path in TlsFiles(directory).all() if path.exists()]
    if existing:
        raise SmartplaceError(
            f"{directory} already holds {', '.join(existing)}: devices may trust that CA;"
            " delete the files first to make a new one"
        )
    files = ensure_certificates(directory, names)
    console.print(
        f"Made a CA and a broker certificate for {', '.join(names)} in {directory}/."
        f" Devices trust {files.ca_cert.name}; {files.ca_key.name} signs certificates. The"
        " broker needs neither: move both somewhere safe first, as once the directory is"
        f" uid 1883's (mosquitto reads the rest as that user: sudo chown -R 1883:1883"
        f" {directory}) only root can read it.",
        highlight=False,
    )


@broker_app.command("accounts")
def broker_accounts() -> None:
    """Create (or reset the passwords of) the ingest and simulator accounts, from settings."""
    from smartplace.devices.dynsec import Dynsec
    from smartplace.devices.provisioning import admin_account
    from smartplace.errors import ConfigError

    mqtt = load_settings().mqtt
    if mqtt.ingest_account() is None:
        raise ConfigError("set SMARTPLACE_MQTT__USERNAME and SMARTPLACE_MQTT__PASSWORD (ingest's)")
    with Dynsec(mqtt, admin_account(load_settings())) as dynsec:
        dynsec.ensure_service_accounts(mqtt)
    console.print("Ingest and simulator accounts are in place.")


@app.command()
def trace(
    device_id: Annotated[str, typer.Argument(help="The device to follow.")],
    since: Annotated[
        str, typer.Option(help="From when: ISO time, HH:MM today (UTC), or an age (6h, 2d).")
    ] = "24h",
    at: Annotated[
        str | None,
        typer.Option(help="The reading to look for, by its time (ISO, HH:MM today, UTC)."),
    ] = None,
) -> None:
    """Did this device's readings reach InfluxDB, and if not, why? (delivery ledger, readings,
    rejects)"""
    from datetime import UTC, datetime

    from smartplace.influx import InfluxClient
    from smartplace.trace import parse_when
    from smartplace.trace import trace as trace_device

    now = datetime.now(UTC)
    at_time = parse_when(at, now) if at else None
    since_time = parse_when(since, now)
    if at_time is not None:
        since_time = min(since_time, at_time)
    with InfluxClient(load_settings().influx.for_reading()) as influx:
        found = trace_device(influx, device_id, since_time, at_time)
    ledger = Table(title=f"Delivery ledger for {device_id} (by arrival hour, UTC)")
    counted = ("received", "accepted", "written", "duplicate", "late")
    lorawan = [
        k
        for k in ("missed_frames", "backfilled_frames")
        if any(k in h.counts for h in found.ledger)
    ]
    for column in ("hour", *counted, *lorawan, "rejected"):
        ledger.add_column(column, justify="left" if column in ("hour", "rejected") else "right")
    for hour in found.ledger:
        c = hour.counts
        rejected = ", ".join(f"{r} {n}" for r, n in sorted(hour.rejected_by_reason.items()))
        ledger.add_row(
            f"{hour.hour:%Y-%m-%d %H:00}",
            *(str(c.get(k, 0)) for k in (*counted, *lorawan)),
            rejected or "-",
        )
    console.print(ledger)
    for reading in found.readings:
        values = {
            k: v
            for k, v in reading.items()
            if k not in ("time", "measurement", "flags", "device_id", "kind", "site")
        }
        console.print(f"{reading['time']:%H:%M:%S} {reading['measurement']} {values}")
    for reject in found.rejects:
        console.print(
            f"[red]rejected[/red] {reject['time']:%Y-%m-%d %H:%M:%S} {reject['reason']}: "
            f"{reject.get('detail', '')} (payload {reject.get('payload', '')!r})"
        )
    console.print(found.verdict(at_time))


def _stop_on_signals() -> threading.Event:
    """An event set by SIGTERM or SIGINT, so services stop gracefully and drain."""
    stop = threading.Event()

    def handle(_signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    return stop


def _yes(value: bool) -> str:
    return "[green]yes[/]" if value else "[red]no[/]"


def main() -> None:
    """Console-script entry point: one-line errors for the problems smartplace knows about."""
    try:
        app()
    except SmartplaceError as exc:
        errors.print(f"[red]error:[/] {exc}", markup=True, highlight=False)
        sys.exit(1)
    except ValidationError as exc:
        if exc.title != Settings.__name__:
            raise
        # the message holds the pattern's brackets: printed as text, not as markup
        errors.print(
            "[red]error:[/] " + escape(invalid_settings(exc)), markup=True, highlight=False
        )
        sys.exit(1)
