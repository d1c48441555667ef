"""Local mosquitto and influxd processes: the demo stack and the test harness."""

from smartplace.stack.influxd import InfluxdServer, find_influxd
from smartplace.stack.mosquitto import BROKER_SETTINGS, MosquittoServer, find_mosquitto
from smartplace.stack.process import ServerProcess, free_port, free_port_block

__all__ = [
    "BROKER_SETTINGS",
    "InfluxdServer",
    "MosquittoServer",
    "ServerProcess",
    "find_influxd",
    "find_mosquitto",
    "free_port",
    "free_port_block",
]
