"""Shared fixtures: one real pipeline run that many tests inspect.

The run goes through the command line (`local_runner.py`) in a subprocess, on
the shipped data, into a temporary folder: it exercises the real TFX, TFT, TFDV,
TFMA, Beam and ML Metadata, and keeps TensorFlow's global state out of pytest.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from models import contract

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"
# Fixtures holding whole-pipeline runs: the session's `pipeline_run`, `runs`
# (tests/three_runs.py) in the modules that use the three runs, and the runs
# against MariaDB (tests/test_metadata_mysql.py).
WHOLE_PIPELINE_FIXTURES = {"pipeline_run", "runs", "mysql_runs"}


# The fast tier (`make test-fast`: neither e2e nor slow) should answer in about a
# minute. A test of it using more CPU than this (its setup, call and teardown, with
# the processes it starts; CPU, not wall time, so a busy machine does not move it)
# is named at the end of the run, to be made faster or marked slow.
FAST_TEST_CPU_SECONDS = float(os.environ.get("TAXI_FAST_TEST_CPU_SECONDS", "4"))
_fast_cpu_seconds: dict[str, float] = {}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test using a whole-pipeline run must be marked e2e, so `make test-fast` skips it."""
    unmarked = [item.nodeid for item in items
                if WHOLE_PIPELINE_FIXTURES & set(getattr(item, "fixturenames", ()))
                and item.get_closest_marker("e2e") is None]
    if unmarked:
        raise pytest.UsageError(
            "these tests run whole pipelines but lack @pytest.mark.e2e: " + ", ".join(unmarked))


def _cpu_seconds() -> float:
    """CPU used so far by this process and the child processes it has waited for."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    """Measure the CPU each fast-tier test costs (fixtures it is the first to use included)."""
    before = _cpu_seconds()
    yield
    if item.get_closest_marker("e2e") is None and item.get_closest_marker("slow") is None:
        _fast_cpu_seconds[item.nodeid] = _cpu_seconds() - before


def pytest_terminal_summary(terminalreporter) -> None:
    """Name the fast-tier tests over FAST_TEST_CPU_SECONDS: they make `make test-fast` slow."""
    over = sorted(((s, n) for n, s in _fast_cpu_seconds.items() if s > FAST_TEST_CPU_SECONDS),
                  reverse=True)
    if not over:
        return
    terminalreporter.section(f"fast-tier tests over {FAST_TEST_CPU_SECONDS:g} s of CPU",
                             yellow=True)
    terminalreporter.write_line(
        "make them cheaper (share the expensive fixture, avoid TensorFlow) or mark them "
        "@pytest.mark.slow (run by `make test`, not by `make test-fast`); the first test "
        "to import a library pays for the import:")
    for seconds, nodeid in over:
        terminalreporter.write_line(f"{seconds:7.1f} s CPU  {nodeid}")


def write_bitcoin_data(path: Path) -> Path:
    """3,000 shipped trips of which a fifth pay with "Bitcoin", outside the payment_type
    domain: data every orchestrator's gate must refuse. Written to `path` (a CSV file)."""
    rows = list(csv.reader(open(DATA / "data.csv", newline="")))
    header, body = rows[0], rows[1:3001]
    payment = header.index("payment_type")
    for row in body[:600]:
        row[payment] = "Bitcoin"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([header, *body])
    return path


@dataclass
class PipelineRun:
    """A finished `local_runner.py` run."""

    output_dir: Path
    data_root: Path
    returncode: int
    stdout: str
    stderr: str

    @property
    def metadata_path(self) -> Path:
        return self.output_dir / "metadata.sqlite"

    @property
    def serving_base(self) -> Path:
        return self.output_dir / "serving_model" / contract.MODEL_NAME


def run_cli(
    *args: str, timeout: float = 900, env: dict | None = None
) -> subprocess.CompletedProcess:
    """Run `python local_runner.py ARGS` from the project root."""
    return subprocess.run(
        [sys.executable, str(ROOT / "local_runner.py"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        # No TF Serving watches a test's folder: the Pusher need not wait for
        # one to load a version before labelling it stable (serving/rollout.py).
        env={"SERVING_SETTLE_SECONDS": "0", **os.environ, **(env or {})},
    )


def run_pipeline(data_root: Path, output_dir: Path, *extra: str) -> PipelineRun:
    result = run_cli("--data-root", str(data_root), "--output-dir", str(output_dir), *extra)
    return PipelineRun(output_dir, data_root, result.returncode, result.stdout, result.stderr)


@pytest.fixture(scope="session")
def pipeline_run(tmp_path_factory) -> PipelineRun:
    """The full pipeline on the shipped data (about a minute), shared by tests."""
    output_dir = tmp_path_factory.mktemp("pipeline_run")
    run = run_pipeline(DATA, output_dir)
    assert run.returncode == 0, f"pipeline failed:\n{run.stdout}\n{run.stderr[-5000:]}"
    return run


@pytest.fixture(scope="session")
def pushed_model_dir(pipeline_run: PipelineRun) -> Path:
    """The one version directory Pusher wrote."""
    versions = [p for p in pipeline_run.serving_base.iterdir() if p.name.isdigit()]
    assert len(versions) == 1, f"expected one pushed version, found {versions}"
    return versions[0]
