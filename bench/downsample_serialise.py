"""Downsampling and line-protocol throughput, each beside a plain per-reading Python version.

1,000,000 air quality readings across 1,000 devices, fed in micro-batches as
ingest feeds them. Prints readings/s (best of several runs: this machine is
shared and noisy) and the ratio to the per-reading baseline run in the same
process. Targets from issue 4, for one core here: downsampling >= 2,000,000
readings/s, serialising >= 500,000 lines/s.

    .venv/bin/python -m bench.downsample_serialise [--readings 1000000] [--batch 10000]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import partial

import numpy as np

from smartplace.ingest.decode.columns import ReadingColumns
from smartplace.ingest.windows.tumbling import WindowAggregator
from smartplace.ingest.write.points import raw_lines
from smartplace.schemas import AirQualityReading
from smartplace.schemas.air_quality import POLLUTANT_FIELDS

FIELDS = AirQualityReading.measurement_fields()
S = 1_000_000_000
ESCAPED_SPACE = "\\ "


def make_batches(readings: int, devices: int, batch: int, seed: int = 1) -> list[ReadingColumns]:
    rng = np.random.default_rng(seed)
    device_names = np.array([f"aq-{i:04d}" for i in range(devices)], dtype=np.str_)
    per_device = readings // devices
    # Every device reports every 10 s; readings arrive in time order, interleaved across devices.
    ts = (1_795_000_000 + np.repeat(np.arange(per_device) * 10, devices)) * S
    ids = np.tile(device_names, per_device)
    values = rng.lognormal(2.0, 0.5, size=(len(ts), len(FIELDS)))
    values[rng.random(values.shape) < 0.2] = np.nan  # not every device measures every field
    return [
        ReadingColumns(
            measurement="air_quality",
            kind="air_quality",
            fields=FIELDS,
            field_types=("float",) * len(FIELDS),
            device_ids=ids[start : start + batch],
            ts_ns=ts[start : start + batch],
            values=values[start : start + batch],
            qc_flags=np.zeros(min(batch, len(ts) - start), dtype=np.uint32),
        )
        for start in range(0, len(ts), batch)
    ]


def numpy_downsample(batches: list[ReadingColumns], length_s: int = 60) -> int:
    # As ingest runs it: p95 sketches of the pollutants in windows of 15 minutes and more.
    quantiled = POLLUTANT_FIELDS if length_s >= 900 else ()
    aggregator = WindowAggregator(
        "air_quality", FIELDS, length_s=length_s, grace_s=120, quantile_fields=quantiled
    )
    emitted = 0
    for columns in batches:
        emitted += len(aggregator.add(columns, np.ones(len(columns), dtype=bool)))
    return emitted


def python_downsample(batches: list[ReadingColumns], length_s: int = 60) -> int:
    """The tutorial way: a dict of running sums per (device, window, field), one reading at a time."""
    state: dict[tuple[str, int, str], list[float]] = {}
    emitted = 0
    for columns in batches:
        touched = set()
        for device, ts, row in zip(
            columns.device_ids.tolist(),
            columns.ts_ns.tolist(),
            columns.values.tolist(),
            strict=True,
        ):
            start = ts - ts % (length_s * S)
            for name, value in zip(FIELDS, row, strict=True):
                if value != value:
                    continue
                acc = state.setdefault((device, start, name), [0.0, float("inf"), float("-inf"), 0])
                acc[0] += value
                acc[1] = min(acc[1], value)
                acc[2] = max(acc[2], value)
                acc[3] += 1
            touched.add((device, start))
        emitted += len(touched)
    return emitted


def python_serialise(batches: list[ReadingColumns]) -> int:
    lines = 0
    for columns in batches:
        out = []
        for device, ts, row in zip(
            columns.device_ids.tolist(),
            columns.ts_ns.tolist(),
            columns.values.tolist(),
            strict=True,
        ):
            fields = ",".join(
                f"{name}={value}" for name, value in zip(FIELDS, row, strict=True) if value == value
            )
            tag = device.replace(" ", ESCAPED_SPACE)
            out.append(f"air_quality,device_id={tag},kind=air_quality {fields},qc_flags=0i {ts}")
        lines += len(out)
    return lines


def numpy_serialise(batches: list[ReadingColumns]) -> int:
    return sum(len(raw_lines(columns)) for columns in batches)


def best(runs: int, work: Callable[[], int]) -> float:
    fastest = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        work()
        fastest = min(fastest, time.perf_counter() - started)
    return fastest


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--readings", type=int, default=1_000_000)
    parser.add_argument("--devices", type=int, default=1_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    batches = make_batches(args.readings, args.devices, args.batch)
    n = sum(len(b) for b in batches)
    print(
        f"{n:,} readings, {args.devices:,} devices, batches of {args.batch:,}, best of {args.runs}"
    )
    print(f"{'':32} {'smartplace':>14} {'per-reading':>14} {'ratio':>7}")
    for label, ours, baseline in (
        ("downsampling, 1-min windows", numpy_downsample, python_downsample),
        (
            "downsampling, 15-min with p95",
            partial(numpy_downsample, length_s=900),
            partial(python_downsample, length_s=900),
        ),
        ("serialising raw points", numpy_serialise, python_serialise),
    ):
        fast = best(args.runs, lambda f=ours: f(batches))
        slow = best(1, lambda f=baseline: f(batches))
        print(f"{label:32} {n / fast:12,.0f}/s {n / slow:12,.0f}/s {slow / fast:6.1f}x")


if __name__ == "__main__":
    main()
