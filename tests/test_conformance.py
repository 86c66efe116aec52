"""The shared conformance cases, run by their own checker against the real `tally` command."""
from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import CASES, SHARED, TALLY

# Cases covered by the capabilities built so far; 03-06 need the pricing model of issue 3.
CASES_IN_SCOPE = ["01_stripe_payments", "02_tiers_packages_volume", "07_grace_and_late_events",
                  "08_invalid_config"]


@pytest.mark.parametrize("case", CASES_IN_SCOPE)
def test_conformance_case(case):
    proc = subprocess.run([sys.executable, str(SHARED / "conformance" / "check.py"), "--tally", str(TALLY),
                           str(CASES / case)], capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"PASS {case}" in proc.stdout
