"""A peer as the libraries' tutorials write it: paho-mqtt subscribes, and each message is
written to InfluxDB with its own ``write_points`` call (the ``influxdb`` client, the one
InfluxDB 1.x's Python tutorials use; ``influxdb-client`` speaks only the 2.x API, which
the influxd 1.6 here does not serve).

Not smartplace code: the bench runs it as its own process, to measure what a council
would get by gluing the two libraries together.

    python bench/peer_paho_influxdb.py HOST PORT USER PASSWORD CLIENT_ID TOPIC INFLUX_URL DB
"""

from __future__ import annotations

import json
import sys
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from influxdb import InfluxDBClient
from paho.mqtt.enums import CallbackAPIVersion


def main() -> None:
    host, port, user, password, client_id, topic, influx_url, database = sys.argv[1:9]
    url = urlsplit(influx_url)
    influx = InfluxDBClient(host=url.hostname, port=url.port, database=database)

    def on_connect(client: mqtt.Client, *_args: object) -> None:
        client.subscribe(topic, qos=1)

    def on_message(_client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        reading = json.loads(message.payload)
        fields = {k: v for k, v in reading.items() if k not in ("ts", "device_id")}
        point = {
            "measurement": "air_quality",
            "tags": {"device_id": message.topic.split("/")[2]},
            "time": reading["ts"],
            "fields": fields,
        }
        influx.write_points([point], retention_policy="raw")

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
    client.username_pw_set(user, password)
    client.on_connect = on_connect
    client.on_message = on_message
    client.connect(host, int(port))
    print("connected", flush=True)
    client.loop_forever()


if __name__ == "__main__":
    main()
