"""Grafana for operations staff: dashboards as code, provisioning and alert rules."""
