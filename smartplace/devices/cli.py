"""``smartplace devices``: provision street devices from the command line.

Every command works on the registry (settings.registry_file) and, for changes,
on the broker's accounts through its dynamic-security admin, then tells ingest.
"""

from __future__ import annotations

import csv
import io
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from smartplace.accounts import refuse_reserved
from smartplace.config import load_settings
from smartplace.devices.model import DeviceRecord
from smartplace.devices.provisioning import Plan, Provisioner, plan
from smartplace.devices.registry import RECORD_COLUMNS, Registry, RegistryError
from smartplace.errors import SmartplaceError

app = typer.Typer(
    help="Provision devices: registry, broker credentials, and ingest's view.", no_args_is_help=True
)
console = Console()
COLUMNS = RECORD_COLUMNS


class InvalidRowsError(SmartplaceError):
    pass


def _record(data: dict[str, Any]) -> DeviceRecord:
    """A DeviceRecord, or a one-line SmartplaceError saying which field is wrong and why."""
    try:
        return DeviceRecord.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        message = str(first["msg"]).removeprefix("Value error, ")
        named = where.replace("_", " ") in message  # our own messages name their field already
        raise SmartplaceError(f"{where}: {message}" if where and not named else message) from None


def _metadata(pairs: list[str] | None) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SmartplaceError(f"--meta {pair!r}: expected KEY=VALUE")
        result[key.strip()] = _scalar(value)
    return result


def _scalar(text: str) -> Any:
    """Numbers stay numbers (a bin's depth is a parameter); everything else is text."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def _write_secrets(path: Path, secrets_by_device: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.chmod(0o600)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["device_id", "secret"])
        writer.writerows(sorted(secrets_by_device.items()))


def _show_secret(device_id: str, secret: str, secret_file: Path | None) -> None:
    if secret_file is not None:
        _write_secrets(secret_file, {device_id: secret})
        console.print(
            f"Its MQTT password is in {secret_file} (mode 0600). It is not stored anywhere else."
        )
    else:
        console.print(f"MQTT user name: [bold]{device_id}[/]  password: [bold]{secret}[/]")
        console.print(
            "Shown once: it is stored only as a hash. Lost it? smartplace devices rotate-secret."
        )


@app.command()
def add(
    device_id: Annotated[str, typer.Argument(help="3-64 characters: a-z, 0-9 and '-'.")],
    kind: Annotated[str, typer.Option(help="air_quality, footfall or bin.")],
    site: Annotated[str | None, typer.Option(help="The named place it stands at.")] = None,
    profile: Annotated[str | None, typer.Option(help="Payload profile (LoRaWAN devices).")] = None,
    latitude: Annotated[float | None, typer.Option(help="WGS84 latitude.")] = None,
    longitude: Annotated[float | None, typer.Option(help="WGS84 longitude.")] = None,
    installed_on: Annotated[str | None, typer.Option(help="YYYY-MM-DD.")] = None,
    meta: Annotated[
        list[str] | None, typer.Option(help="KEY=VALUE, repeatable (e.g. empty_distance_mm=1200).")
    ] = None,
    secret_file: Annotated[
        Path | None, typer.Option(help="Write the secret here (mode 0600) instead of showing it.")
    ] = None,
) -> None:
    """Register a device, create its MQTT account and ACL, and tell ingest."""
    data = {
        "device_id": device_id,
        "kind": kind,
        "site": site,
        "profile": profile,
        "latitude": latitude,
        "longitude": longitude,
        "installed_on": installed_on,
        "metadata": _metadata(meta),
    }
    record = _record({k: v for k, v in data.items() if v is not None})
    settings = load_settings()
    refuse_reserved([record.device_id], settings.mqtt)
    with Registry(settings.registry_file) as registry:
        if registry.get(record.device_id) is not None:
            raise RegistryError(
                f"device {record.device_id!r} is already registered: use 'smartplace devices update'"
            )
        secrets_by_device = Provisioner(settings, registry).apply(Plan(add=[record]))
    console.print(
        f"Added {record.device_id} ({record.kind}{', ' + record.site if record.site else ''})."
    )
    _show_secret(record.device_id, secrets_by_device[record.device_id], secret_file)


@app.command("list")
def list_devices(
    kind: Annotated[str | None, typer.Option(help="Only this kind.")] = None,
    site: Annotated[str | None, typer.Option(help="Only this site.")] = None,
    status: Annotated[str | None, typer.Option(help="active or retired.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON, for scripts.")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV, for scripts.")] = False,
) -> None:
    """List devices, filtered by kind, site and status."""
    with Registry(load_settings().registry_file) as registry:
        records = registry.list(kind=kind, site=site, status=status)
    if as_json:
        typer.echo(
            orjson.dumps(
                [r.model_dump(mode="json") for r in records], option=orjson.OPT_INDENT_2
            ).decode()
        )
    elif as_csv:
        typer.echo(_to_csv(records), nl=False)
    else:
        table = Table(title=f"{len(records)} devices")
        for column in COLUMNS:
            table.add_column(column)
        for r in records:
            table.add_row(*["" if (v := getattr(r, c)) is None else str(v) for c in COLUMNS])
        console.print(table)


@app.command()
def show(device_id: str) -> None:
    """One device's record, as JSON."""
    with Registry(load_settings().registry_file) as registry:
        record = registry.require(device_id)
    typer.echo(orjson.dumps(record.model_dump(mode="json"), option=orjson.OPT_INDENT_2).decode())


@app.command()
def update(
    device_id: str,
    kind: Annotated[str | None, typer.Option()] = None,
    site: Annotated[str | None, typer.Option()] = None,
    profile: Annotated[str | None, typer.Option()] = None,
    latitude: Annotated[float | None, typer.Option()] = None,
    longitude: Annotated[float | None, typer.Option()] = None,
    installed_on: Annotated[str | None, typer.Option()] = None,
    status: Annotated[str | None, typer.Option(help="active or retired.")] = None,
    meta: Annotated[
        list[str] | None, typer.Option(help="KEY=VALUE, repeatable; merged into its metadata.")
    ] = None,
) -> None:
    """Change a device's record (and its ACL, if its kind changes); ingest follows within seconds."""
    settings = load_settings()
    with Registry(settings.registry_file) as registry:
        old = registry.require(device_id)
        changes = {
            "kind": kind,
            "site": site,
            "profile": profile,
            "latitude": latitude,
            "longitude": longitude,
            "installed_on": installed_on,
            "status": status,
        }
        data = old.model_dump(mode="json") | {k: v for k, v in changes.items() if v is not None}
        data["metadata"] = old.metadata | _metadata(meta)
        new = _record(data)
        if new == old:
            console.print(f"{device_id} already is as asked: nothing changed.")
            return
        Provisioner(settings, registry).apply(Plan(change=[(old, new)]))
    console.print(f"Updated {device_id}.")


@app.command()
def retire(device_id: str) -> None:
    """Retire a device: its login is disabled and dropped, and ingest refuses its readings."""
    settings = load_settings()
    with Registry(settings.registry_file) as registry:
        record = registry.require(device_id)
        if record.status == "retired":
            console.print(f"{device_id} is already retired.")
            return
        Provisioner(settings, registry).apply(Plan(retire=[record]))
    console.print(
        f"Retired {device_id}: it can no longer connect, and ingest refuses what it sent before."
    )


@app.command("rotate-secret")
def rotate_secret(
    device_id: str,
    secret_file: Annotated[
        Path | None, typer.Option(help="Write the secret here (mode 0600).")
    ] = None,
) -> None:
    """Give a device a new MQTT password (the old one stops working at once)."""
    settings = load_settings()
    with Registry(settings.registry_file) as registry:
        secret = Provisioner(settings, registry).rotate_secret(device_id)
    console.print(f"New secret for {device_id}.")
    _show_secret(device_id, secret, secret_file)


@app.command("import")
def import_devices(
    source: Annotated[
        Path, typer.Argument(help="CSV (with a header row) or JSON (a list of objects).")
    ],
    plan_only: Annotated[
        bool, typer.Option("--plan", help="Print what would change, change nothing.")
    ] = False,
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="Import the good rows even if some are bad.")
    ] = False,
    retire_missing: Annotated[
        bool,
        typer.Option("--retire-missing", help="Retire registered devices the file does not list."),
    ] = False,
    secrets_file: Annotated[
        Path | None, typer.Option(help="Where new devices' secrets go (mode 0600).")
    ] = None,
) -> None:
    """Provisioning as code: make the registry (and broker) match a file. Applying it twice changes nothing."""
    wanted, errors = _read_rows(source)
    if errors:
        for line in errors:
            console.print(f"[red]{line}[/]", highlight=False)
        if not skip_invalid:
            raise InvalidRowsError(
                f"{len(errors)} bad row(s) in {source}: nothing was changed (--skip-invalid imports the rest)"
            )
    settings = load_settings()
    with Registry(settings.registry_file) as registry:
        changes = plan(settings, registry, wanted, retire_missing=retire_missing)
        _print_plan(changes)
        if plan_only or changes.empty:
            return
        secrets_path = secrets_file or Path(
            f"device-secrets-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.csv"
        )
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as bar:
            task = bar.add_task("provisioning", total=changes.size * 2)  # broker, then ingest
            secrets_by_device = Provisioner(settings, registry).apply(
                changes, progress=lambda n: bar.advance(task, n)
            )
    if secrets_by_device:
        _write_secrets(secrets_path, secrets_by_device)
        console.print(
            f"Secrets of the {len(secrets_by_device)} new devices are in {secrets_path} (mode 0600), and nowhere else."
        )


@app.command()
def export(
    destination: Annotated[str, typer.Argument(help="File, or - for standard output.")] = "-",
    fmt: Annotated[str, typer.Option("--format", help="csv or json.")] = "csv",
) -> None:
    """Write the registry as CSV or JSON that 'devices import' reads back (no secrets)."""
    with Registry(load_settings().registry_file) as registry:
        records = registry.list()
    if fmt == "csv":
        text = _to_csv(records)
    elif fmt == "json":
        text = (
            orjson.dumps(
                [r.model_dump(mode="json") for r in records], option=orjson.OPT_INDENT_2
            ).decode()
            + "\n"
        )
    else:
        raise SmartplaceError(f"--format {fmt!r}: use csv or json")
    if destination == "-":
        sys.stdout.write(text)
    else:
        Path(destination).write_text(text)
        console.print(f"Exported {len(records)} devices to {destination}.")


def _to_csv(records: list[DeviceRecord]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([*COLUMNS, "metadata"])
    for r in records:
        row = ["" if (v := getattr(r, c)) is None else str(v) for c in COLUMNS]
        writer.writerow([*row, orjson.dumps(r.metadata).decode() if r.metadata else ""])
    return out.getvalue()


def _read_rows(source: Path) -> tuple[list[DeviceRecord], list[str]]:
    """Every row as a record, and every bad row as 'line N: reason' (CSV) or 'item N: reason' (JSON)."""
    try:
        text = source.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise SmartplaceError(f"cannot read {source}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise SmartplaceError(f"{source} is not UTF-8 text") from None
    rows: list[tuple[str, dict[str, Any]]] = []
    if source.suffix.lower() == ".json":
        try:
            document = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise SmartplaceError(f"{source} is not valid JSON: {exc}") from None
        if not isinstance(document, list):
            raise SmartplaceError(f"{source} must hold a JSON list of device objects")
        rows = [
            (f"item {i}", item if isinstance(item, dict) else {"_": item})
            for i, item in enumerate(document)
        ]
    else:
        reader = csv.DictReader(io.StringIO(text))
        try:
            header = reader.fieldnames
            if not header or "device_id" not in header:
                raise SmartplaceError(
                    f"{source} needs a header row naming at least device_id and kind"
                )
            # A column named twice would be read as its last copy, not the one a reviewer
            # reads first (a device id in the first, a service's name in the second).
            twice = sorted({name for name in header if header.count(name) > 1})
            if twice:
                raise SmartplaceError(
                    f"{source}: the header row names {', '.join(twice)} more than once"
                )
            for line_number, row in enumerate(reader, start=2):
                rows.append((f"line {line_number}", _csv_row(row)))
        except csv.Error as exc:  # a cell over the csv module's limit, a NUL byte
            raise SmartplaceError(f"{source} cannot be read as CSV: {exc}") from None
    records, errors, seen = [], [], set()
    for where, data in rows:
        try:
            record = _record(data)
        except SmartplaceError as exc:
            errors.append(f"{where}: {exc}")
            continue
        if record.device_id in seen:
            errors.append(f"{where}: device {record.device_id} appears twice")
            continue
        seen.add(record.device_id)
        records.append(record)
    return records, errors


def _csv_row(row: dict[str | None, Any]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    metadata: dict[str, Any] = {}
    for key, value in row.items():
        if key is None:
            data["_extra"] = value  # more cells than the header: refused as an unknown field
            continue
        if value in (None, ""):
            continue
        if key == "metadata":
            try:
                metadata |= orjson.loads(value)
            except orjson.JSONDecodeError:
                data["metadata"] = value  # refused with pydantic's message
        elif key in COLUMNS:
            data[key] = value
        else:
            metadata[key] = _scalar(value)  # extra columns are metadata
    if metadata:
        data.setdefault("metadata", metadata)
    return data


def _print_plan(changes: Plan) -> None:
    for record in changes.add:
        console.print(
            f"[green]+ add[/]     {record.device_id} ({record.kind}, {record.site or 'no site'})"
        )
    for old, new in changes.change:
        fields = [k for k in new.model_fields if getattr(old, k) != getattr(new, k)]
        console.print(f"[yellow]~ change[/]  {new.device_id}: {', '.join(fields)}")
    for record in changes.retire:
        console.print(f"[red]- retire[/]  {record.device_id}")
    console.print(
        f"Plan: {len(changes.add)} to add, {len(changes.change)} to change, {len(changes.retire)} to retire, "
        f"{changes.unchanged} unchanged."
    )
