"""The behaviour cases under tests/cases, each through the real `tally run` (see case_runner.py)."""
from __future__ import annotations

import pytest

from tests.case_runner import run_case
from tests.conftest import CASES

ALL_CASES = sorted(path.name for path in CASES.iterdir() if (path / "case.yaml").exists())


def test_the_cases_are_there():
    assert len(ALL_CASES) >= 8


@pytest.mark.parametrize("case", ALL_CASES)
def test_case(case, tmp_path):
    differences = run_case(CASES / case, tmp_path)
    assert not differences, "\n".join(differences)
