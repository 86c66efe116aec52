"""Dagster definitions, one folder per step of the flow; thin wrappers around the pure core."""
