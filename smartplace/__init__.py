"""smartplace: ingestion pipeline for a town's street sensors.

MQTT readings in; validated, quality-checked and downsampled series out to
InfluxDB for Grafana dashboards and the open data portal.
"""

__version__ = "0.1.0"
