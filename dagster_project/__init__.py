"""Tally: warehouse-native usage-based billing."""
