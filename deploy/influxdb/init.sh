#!/bin/sh
# Runs once, when the InfluxDB 2.7 container initialises its data volume (after the
# setup that creates the org and the raw bucket). InfluxQL reaches buckets named
# database/retention-policy through virtual DBRP mappings, so ingest's v1 writes to
# db=smartplace rp=raw and rp=agg land in these buckets with no mapping to create.
set -eu
influx bucket create --org "$DOCKER_INFLUXDB_INIT_ORG" --name smartplace/agg --retention 0 \
  --token "$DOCKER_INFLUXDB_INIT_ADMIN_TOKEN"
