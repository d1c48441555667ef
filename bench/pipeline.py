"""Ingest's CPU per reading in process: the pipeline, then the request body, one core.

The same simulator payloads as ``bench.e2e`` (eight air-quality monitors, ISO
times to the millisecond, five fields), cut into micro-batches of about
``--batch-bytes`` as the writer thread takes them from the spool. For each
shape it prints microseconds per reading (best of ``--runs``) for:

- ``process``: ``Pipeline.process`` (decode, screen, quality, windows, ledger
  and line protocol), with the ledger's totals taken as the writer thread takes them;
- ``body``: the lines as the InfluxDB write sends them (joined, gzip level 1).

    .venv/bin/python -m bench.pipeline [--readings 200000] [--profile arrays]
"""

from __future__ import annotations

import argparse
import cProfile
import gzip
import pstats
import time

from bench.e2e import DEVICE_IDS, payloads
from smartplace.config import Settings
from smartplace.devices.model import DeviceRecord
from smartplace.ingest.pipeline import Pipeline, PipelineOutput
from smartplace.ingest.receive import RawMessage

SHAPES = {"singles": 1, "arrays": 100}


def batches(readings: int, per_message: int, batch_bytes: int) -> list[list[RawMessage]]:
    start_ns = time.time_ns() - 3_600 * 10**9
    per_device = payloads(start_ns, readings, per_message, 10)
    out: list[list[RawMessage]] = [[]]
    size = 0
    received_ns = start_ns
    # Devices interleaved, as they arrive at the broker.
    for index in range(len(per_device[0])):
        for device, lines in enumerate(per_device):
            received_ns += 1000
            topic = f"smartplace/air_quality/{DEVICE_IDS[device]}/reading"
            out[-1].append(RawMessage(topic, lines[index].rstrip(b"\n"), received_ns))
            size += len(lines[index])
            if size >= batch_bytes:
                out.append([])
                size = 0
    return [batch for batch in out if batch]


def run(settings: Settings, work: list[list[RawMessage]]) -> tuple[float, float, int]:
    pipeline = Pipeline(settings)
    for device in DEVICE_IDS:
        pipeline.directory.restore(
            DeviceRecord(device_id=device, kind="air_quality", site="merseyway")
        )
    outputs: list[PipelineOutput] = []
    started = time.process_time()
    for batch in work:
        out = pipeline.process(batch)
        out.raw.extend(pipeline.ledger_points())  # as the writer thread does before sending
        outputs.append(out)
    processed = time.process_time()
    for out in outputs:
        for points in (out.raw, out.agg):
            body = "\n".join(points.lines).encode()
            gzip.compress(body, compresslevel=1)
    bodies = time.process_time()
    accepted = sum(out.accepted for out in outputs)
    return processed - started, bodies - processed, accepted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--readings", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batch-bytes", type=int, default=1 << 20)
    parser.add_argument("--profile", choices=sorted(SHAPES), help="cProfile one run of a shape")
    args = parser.parse_args()
    settings = Settings()
    print(f"in process, {args.readings:,} readings a shape, best of {args.runs}, one core")
    print(f"{'shape':10} {'process us':>11} {'body us':>9} {'total us':>9} {'readings/s':>11}")
    for name, per_message in SHAPES.items():
        work = batches(args.readings, per_message, args.batch_bytes)
        if args.profile == name:
            profiler = cProfile.Profile()
            profiler.runcall(run, settings, work)
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
            continue
        best = min((run(settings, work) for _ in range(args.runs)), key=lambda r: r[0] + r[1])
        process_s, body_s, accepted = best
        assert accepted == args.readings // 8 // per_message * per_message * 8, accepted
        total = (process_s + body_s) / accepted * 1e6
        print(
            f"{name:10} {process_s / accepted * 1e6:11.2f} {body_s / accepted * 1e6:9.2f}"
            f" {total:9.2f} {accepted / (process_s + body_s):11,.0f}"
        )


if __name__ == "__main__":
    main()
