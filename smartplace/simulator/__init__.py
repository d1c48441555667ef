"""A simulated fleet of street devices for tests, demos and benchmarks."""

from smartplace.simulator.air_quality import AirQualityGenerator
from smartplace.simulator.publisher import Publisher
from smartplace.simulator.run import air_quality_device_ids, simulate

__all__ = ["AirQualityGenerator", "Publisher", "air_quality_device_ids", "simulate"]
