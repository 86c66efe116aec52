"""The shared conformance cases, run by their own checker against the real `tally` command."""
from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import CASES, SHARED, TALLY

ALL_CASES = sorted(path.name for path in CASES.iterdir() if (path / "case.yaml").exists())


def test_the_shared_cases_are_there():
    assert len(ALL_CASES) >= 8, f"expected the shared conformance cases in {CASES}"


@pytest.mark.parametrize("case", ALL_CASES)
def test_conformance_case(case):
    proc = subprocess.run([sys.executable, str(SHARED / "conformance" / "check.py"), "--tally", str(TALLY),
                           str(CASES / case)], capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"PASS {case}" in proc.stdout
