"""The open data HTTP service over the aggregates. Not built yet: see issue 9."""
