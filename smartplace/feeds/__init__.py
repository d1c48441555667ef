"""The open data HTTP service over the aggregates (see app.py)."""
