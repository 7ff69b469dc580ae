"""Continuous training over new drops of data, in one output folder (issue 16).

The shipped rows, shuffled and cut into two random halves, are two drops from
the same distribution: span 1 is trained and pushed; span 2 must be accepted
(the old drift check refused it), retrained, and pushed or kept with the
reason printed. Span 3, whose fares are 30 % higher, must be refused naming
`fare`, with the served model untouched; once it is removed, or allowed
knowingly, the next run proceeds. Everything goes through the command line
and is checked on what a user sees: exit codes, messages, the serving folder's
bytes and the executions ML Metadata recorded.
"""

from __future__ import annotations

import csv
import random
import shutil
from pathlib import Path

import pytest

from metadata.outcome import read_outcome
from tests.conftest import DATA, PipelineRun, run_cli
from tests.test_bad_data import last_line, latest_states, tree_digest, write_csv

HEADER, *ROWS = list(csv.reader(open(DATA / "data.csv", newline="")))
# Enough to pass the Evaluator's floors on 6,000 train rows, few enough for CI.
TRAIN_STEPS = "1000"

pytestmark = pytest.mark.e2e


def _halves() -> tuple[list[list[str]], list[list[str]]]:
    rows = [list(r) for r in ROWS]
    random.Random(16).shuffle(rows)
    return rows[: len(rows) // 2], rows[len(rows) // 2 :]


def _fares_up(rows: list[list[str]], factor: float) -> list[list[str]]:
    fare = HEADER.index("fare")
    return [r[:fare] + [f"{float(r[fare]) * factor:.2f}"] + r[fare + 1 :] for r in rows]


def _run(data: Path, output: Path, *extra: str) -> PipelineRun:
    """A run into `output` (a generous timeout: five runs share a busy machine in CI)."""
    args = ("--data-root", str(data), "--output-dir", str(output), "--train-steps", TRAIN_STEPS)
    result = run_cli(*args, *extra, timeout=2400)
    return PipelineRun(output, data, result.returncode, result.stdout, result.stderr)


def _versions(run_dir: Path) -> set[str]:
    base = run_dir / "serving_model" / "chicago_taxi"
    return {p.name for p in base.iterdir() if p.name.isdigit()} if base.exists() else set()


def _pushed_or_kept(run: PipelineRun, before: set[str]) -> None:
    """Blessed and pushed as a new version, or kept out with the reason printed."""
    result = read_outcome(str(run.metadata_path))
    new = _versions(run.output_dir) - before
    if result.blessed:
        assert len(new) == 1 and result.pushed_path.endswith(new.pop()), result
        assert "Pushed: " in run.stdout and "Pushed: nothing" not in run.stdout
    else:
        assert not new
        assert "Model: NOT blessed" in run.stdout and "needs" in run.stdout
        assert "Pushed: nothing (" in run.stdout


def test_continuous_training_over_spans(tmp_path: Path):
    first, second = _halves()
    data, output = tmp_path / "data", tmp_path / "outputs"
    write_csv(data / "span-1" / "data.csv", first)

    run1 = _run(data, output)
    assert run1.returncode == 0, run1.stderr[-3000:]
    assert "Data: read span 1 (" in run1.stdout and "no data accepted before" in run1.stdout
    assert "Model: BLESSED" in run1.stdout, run1.stdout
    assert len(_versions(output)) == 1

    # A same-distribution drop: accepted, retrained, compared with the served model.
    write_csv(data / "span-2" / "data.csv", second)
    before = _versions(output)
    run2 = _run(data, output)
    assert run2.returncode == 0, run2.stderr[-3000:]
    assert "Data: read span 2 (" in run2.stdout
    assert "compared with the last accepted data, span 1 (" in run2.stdout
    states = latest_states(run2)
    assert states["DataValidationGate"] == "ran" and states["Trainer"] == "ran", states
    assert states["Evaluator"] == "ran", states
    _pushed_or_kept(run2, before)

    # A drifted drop: refused, naming the feature; the served models are untouched.
    write_csv(data / "span-3" / "data.csv", _fares_up(second, 1.3))
    served = tree_digest(output / "serving_model")
    run3 = _run(data, output)
    assert run3.returncode == 1
    assert "fare (train split)" in run3.stderr and "DISTRIBUTION_DRIFT" in run3.stderr
    assert "Data checked: read span 3 (" in run3.stderr
    assert "compared with the last accepted data, span 2 (" in run3.stderr
    assert last_line(run3.stderr).startswith("error: Data validation failed")
    assert tree_digest(output / "serving_model") == served
    states = latest_states(run3)
    assert states["DataValidationGate"] == "FAILED"
    assert "Trainer" not in states and "Pusher" not in states

    # Drifted drop removed: the next run proceeds on span 2.
    drifted = data / "span-3"
    shutil.move(drifted, tmp_path / "span-3-held-back")
    run4 = _run(data, output)
    assert run4.returncode == 0, run4.stderr[-3000:]
    assert "Data: read span 2 (" in run4.stdout
    assert tree_digest(output / "serving_model") == served

    # The drift allowed knowingly: span 3 is trained on.
    shutil.move(tmp_path / "span-3-held-back", drifted)
    before = _versions(output)
    run5 = _run(data, output, "--allow-anomaly", "fare")
    assert run5.returncode == 0, run5.stderr[-3000:]
    assert "Data: read span 3 (" in run5.stdout
    states = latest_states(run5)
    assert states["DataValidationGate"] == "ran" and states["Trainer"] == "ran", states
    _pushed_or_kept(run5, before)

