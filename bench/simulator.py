"""How fast the simulator generates readings, encoded and ready to publish.

Prints readings per second on one core (best of several runs: this machine is
shared and noisy) for a week of the default fleet, one reading per message and
in arrays of 60, for a 500-device fleet, and with every fault knob on; and,
as the baseline in the same process, the instant-at-a-time generator the
quick mode (`simulate --devices`) still uses.

    .venv/bin/python -m bench.simulator [--days 7]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import orjson

from smartplace.simulator.air_quality import AirQualityGenerator
from smartplace.simulator.faults import FaultRates
from smartplace.simulator.fleet import DeviceGroup, Fleet, load_fleet
from smartplace.simulator.traffic import Traffic

END_S = 1_795_478_400  # a Monday, 00:00 UTC
HOUR_S = 3_600


def best_of(runs: int, work: Callable[[], int]) -> float:
    best = 0.0
    for _ in range(runs):
        started = time.perf_counter()
        readings = work()
        best = max(best, readings / (time.perf_counter() - started))
    return best


def traffic_rate(fleet: Fleet, days: float, array_max: int) -> Callable[[], int]:
    def work() -> int:
        traffic = Traffic(fleet, "smartplace", array_max=array_max)
        readings = 0
        for hour in range(int(days * 24)):
            start = END_S - int(days * 86_400) + hour * HOUR_S
            messages = traffic.between(start, start + HOUR_S)
            readings += sum(len(m.records) for m in messages)
        return readings

    return work


def baseline(devices: int, steps: int) -> Callable[[], int]:
    """The quick mode's generator: one call per instant, a dict per reading, one message each."""

    def work() -> int:
        generator = AirQualityGenerator([f"aq-{i:04d}" for i in range(devices)])
        start = datetime.fromtimestamp(END_S, UTC)
        readings = 0
        for step in range(steps):
            for reading in generator.readings(start + timedelta(seconds=60 * step)):
                orjson.dumps(reading)
                readings += 1
        return readings

    return work


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    default = load_fleet()
    big = default.model_copy(
        update={
            "devices": [
                DeviceGroup(site="*", kind="air_quality", count=60, interval_s=60),
                DeviceGroup(site="*", kind="footfall", count=20, interval_s=300),
                DeviceGroup(site="*", kind="bin", count=20, interval_s=1800),
            ]
        }
    )
    faulty = default.model_copy(
        update={"faults": FaultRates(**dict.fromkeys(FaultRates.model_fields, 0.01))}
    )
    base = best_of(args.runs, baseline(25, 2_000))
    print(f"baseline: one instant at a time, 25 devices   {base:>12,.0f} readings/s")
    for name, fleet, days, array_max in (
        ("default fleet (25), one per message", default, args.days, 1),
        ("default fleet (25), arrays of 60", default, args.days, 60),
        ("500 devices, one per message", big, 1.0, 1),
        ("500 devices, arrays of 60", big, 1.0, 60),
        ("default fleet, every fault at 1 %", faulty, args.days, 1),
    ):
        rate = best_of(args.runs, traffic_rate(fleet, days, array_max))
        print(f"{name:<46} {rate:>12,.0f} readings/s  ({rate / base:.1f}x baseline)")


if __name__ == "__main__":
    main()
