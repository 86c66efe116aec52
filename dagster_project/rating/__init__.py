"""Pure Polars rating: rate cards applied to metered quantities, one module per concern."""
