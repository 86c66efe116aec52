"""Reading TALLY_DATA_DIR into the warehouse: events (incrementally) and reference CSVs."""
