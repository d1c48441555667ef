#!/bin/sh
# Sourced once by the influxdb:1.11 image's init-influxdb.sh, when it first initialises
# its data volume: influxd runs on 127.0.0.1 with auth on, the admin account and the
# database exist, and $INFLUX_CMD is the influx CLI logged in as admin
# (influxdata-docker influxdb/1.11/init-influxdb.sh:63,114-117).
#
# The retention policies the settings name (SMARTPLACE_INFLUX__RAW_RETENTION_POLICY,
# __AGG_RETENTION_POLICY), and one account per reader or writer: ingest may read and write
# its database (it reads raw points back to rebuild open windows when its saved state is
# lost) and is no admin; Grafana and the feeds service may only read, so no dashboard user
# can drop data.
$INFLUX_CMD 'CREATE RETENTION POLICY "raw" ON "smartplace" DURATION 30d REPLICATION 1 DEFAULT'
$INFLUX_CMD 'CREATE RETENTION POLICY "agg" ON "smartplace" DURATION INF REPLICATION 1'
for account in ingest:ALL:INFLUXDB_INGEST_PASSWORD grafana:READ:INFLUXDB_GRAFANA_PASSWORD \
  feeds:READ:INFLUXDB_FEEDS_PASSWORD; do
  user=${account%%:*}
  rest=${account#*:}
  privilege=${rest%%:*}
  password=$(printenv "${rest#*:}")
  case "$password" in
    ''|*\'*) echo "${rest#*:} must be set and hold no single quote" >&2; exit 1 ;;
  esac
  $INFLUX_CMD "CREATE USER \"$user\" WITH PASSWORD '$password'"
  $INFLUX_CMD "REVOKE ALL PRIVILEGES FROM \"$user\""
  $INFLUX_CMD "GRANT $privilege ON \"smartplace\" TO \"$user\""
done
