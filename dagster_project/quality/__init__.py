"""Data quality suites (Great Expectations) over what the pipeline produced."""
