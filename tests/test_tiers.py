"""The fast tier stays fast: conftest names a fast-tier test that costs too much CPU.

A small test file runs in a child pytest with the project's conftest as a plugin
and a tiny CPU budget: the busy unmarked test is named, the busy slow one and
the cheap one are not.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

TESTS = '''
import time

import pytest


def burn(seconds):
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_busy():
    burn(0.6)


@pytest.mark.slow
def test_busy_but_slow():
    burn(0.6)


def test_cheap():
    pass
'''


def test_a_fast_tier_test_over_its_cpu_budget_is_named(tmp_path: Path):
    (tmp_path / "test_busy.py").write_text(TESTS)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.conftest", "-p", "no:cacheprovider",
         "-q", "-W", "ignore::pytest.PytestUnknownMarkWarning", "test_busy.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT), "TAXI_FAST_TEST_CPU_SECONDS": "0.3"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    named = done.stdout.split("fast-tier tests over 0.3 s of CPU", 1)[1]
    assert "test_busy.py::test_busy\n" in named
    assert "test_busy_but_slow" not in named and "test_cheap" not in named
