"""Placeholder; replaced below."""
from datetime import date

DEMO_AS_OF = date(2026, 11, 10)
def ensure_demo_data(data_dir):
    return False
