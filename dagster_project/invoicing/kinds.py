"""Document kinds and their order: an opening invoice is numbered, and draws credits and wallet,
before the cycle invoice issued the same day (README). Credit and debit notes correct a
final invoice (corrections.py); each kind of note is numbered in a series of its own."""

KIND_ORDER = {"opening": 0, "cycle": 1, "credit_note": 2, "debit_note": 3}
NOTE_KINDS = ("credit_note", "debit_note")
