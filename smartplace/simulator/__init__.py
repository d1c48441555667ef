"""A simulated fleet of street devices for tests, demos and benchmarks."""

from smartplace.simulator.air_quality import AirQualityGenerator
from smartplace.simulator.run import air_quality_device_ids, provision_fleet, simulate

__all__ = ["AirQualityGenerator", "air_quality_device_ids", "provision_fleet", "simulate"]
