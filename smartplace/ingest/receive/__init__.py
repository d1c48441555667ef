"""Receive: MQTT messages from the broker made durable in the spool before they are acknowledged.

``MqttSubscriber`` (``subscriber``, over ``mqtt_wire``) reads the broker; ``Spool``
keeps what it read, in order, until it is written; ``RecentMessages`` knows the
broker's redeliveries; ``shard_of`` says which worker a device belongs to. What
flows on: ``RawMessage``.
"""

from smartplace.ingest.receive.message import RawMessage
from smartplace.ingest.receive.redelivery import RecentMessages
from smartplace.ingest.receive.shard import shard_of, worker_settings
from smartplace.ingest.receive.spool import Spool, SpooledMessage, SpoolError
from smartplace.ingest.receive.subscriber import MqttSubscriber

__all__ = [
    "MqttSubscriber",
    "RawMessage",
    "RecentMessages",
    "Spool",
    "SpoolError",
    "SpooledMessage",
    "shard_of",
    "worker_settings",
]
