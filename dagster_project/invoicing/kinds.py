"""Invoice kinds and their order: an opening invoice is numbered, and draws credits and wallet,
before the cycle invoice issued the same day (SPEC 4.7, 5)."""

KIND_ORDER = {"opening": 0, "cycle": 1}
