"""Devices: the registry (``registry``, SQLite), each device's broker account and ACL
(``provisioning`` over mosquitto's dynamic security, ``dynsec``), the ``devices`` CLI, and
the registry as ingest follows it (``directory``)."""
