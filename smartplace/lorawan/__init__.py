"""Connecting LoRaWAN network servers: bridges to their MQTT servers, and their CLI."""
