"""`python -m benchmarks quality`: fold logic, metrics, and one real small cross-validation.

The real run is 2 folds of a 1,200-row subset with 100 training steps: two
pipeline runs through `local_runner.py`, each pushed (or Trainer) model scored
through `serving_default` on the fold it never saw, next to the tuned GBDT.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from benchmarks import gbdt, quality
from benchmarks.quality import FoldResult, Scores
from tests.conftest import ROOT
from tests.test_benchmarks import table_rows


def test_folds_are_seeded_stratified_balanced_and_cover_every_row():
    labels = [1] * 23 + [0] * 80
    folds = quality.assign_folds(labels, 5, seed=12)
    assert folds == quality.assign_folds(labels, 5, seed=12)
    assert folds != quality.assign_folds(labels, 5, seed=13)
    sizes = [folds.count(k) for k in range(5)]
    assert sorted(sizes) == [20, 20, 21, 21, 21]
    # Each fold holds the label's share of big tippers (23 of 103: 4 or 5 per fold).
    positives = [sum(y for y, f in zip(labels, folds, strict=True) if f == k) for k in range(5)]
    assert sorted(positives) == [4, 4, 5, 5, 5]


@pytest.mark.parametrize("rows, folds", [(10, 1), (3, 5)])
def test_impossible_folds_are_refused(rows: int, folds: int):
    with pytest.raises(ValueError):
        quality.assign_folds([k % 2 for k in range(rows)], folds, seed=0)


def test_label_is_the_pipelines_rule_with_empty_cells_as_zero():
    assert quality.label_of({"tips": "2.01", "fare": "10"}) == 1
    assert quality.label_of({"tips": "2.0", "fare": "10"}) == 0
    assert quality.label_of({"tips": "", "fare": "10"}) == 0
    assert quality.label_of({"tips": "1", "fare": ""}) == 1


def test_calibration_error_of_known_cases():
    # Perfectly calibrated bins: 0.25 predicted where 1 in 4 is positive.
    assert quality.expected_calibration_error([1, 0, 0, 0], [0.25] * 4) == pytest.approx(0.0)
    # Always 0.9 where half are positive: off by 0.4 everywhere.
    assert quality.expected_calibration_error([1, 0], [0.9, 0.9]) == pytest.approx(0.4)
    # Three bins weighted by their rows: 2/5 * |0.34 - 0.5| + 2/5 * |0.74 - 0.5| + 1/5 * 0.05
    # (per row, not per bin, the mean gap would be 0.394).
    assert quality.expected_calibration_error(
        [0, 1, 0, 1, 1], [0.32, 0.36, 0.72, 0.76, 0.95]) == pytest.approx(0.85 / 5)
    with pytest.raises(ValueError, match=r"outside \[0, 1\]"):
        quality.expected_calibration_error([1], [1.5])
    with pytest.raises(ValueError, match="not a probability"):
        quality.expected_calibration_error([1], [float("nan")])


def test_accuracy_thresholds_at_one_half():
    assert quality.accuracy([1, 0, 1, 0], [0.9, 0.2, 0.5, 0.51]) == pytest.approx(0.5)


def test_auc_of_a_single_class_fold_is_refused_not_zero():
    with pytest.raises(ValueError, match="single class"):
        quality.roc_auc([0, 0, 0], [0.1, 0.2, 0.3])


def test_table_marks_unblessed_folds_and_averages():
    a, b = Scores(0.9, 0.8, 0.05, 10), Scores(0.7, 0.6, 0.15, 10)
    results = [
        FoldResult(0, 20, 10, pipeline=a, pipeline_model="pushed", gbdt=b),
        FoldResult(1, 20, 10, pipeline=b, pipeline_model="not blessed", gbdt=a),
    ]
    table = quality.markdown_table(results)
    rows = table_rows(table)
    assert rows[0] == list(quality.TABLE_HEADERS)
    assert rows[2][:2] == ["1 (not blessed)", "10"]
    assert rows[-1][:6] == ["**mean**", "20", "**0.8000**", "**0.8000**", "**0.7000**",
                            "**0.7000**"]


def test_evaluator_metrics_are_read_from_the_run_summary():
    console = "x\nEvaluation: auc 0.9502, binary_accuracy 0.9038, precision 0.7778\nModel: BLESSED"
    assert quality.evaluator_metrics(console) == {"auc": 0.9502, "binary_accuracy": 0.9038}
    assert quality.evaluator_metrics("Model: not evaluated") == {}


def test_work_dir_inside_the_repo_is_refused(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "quality", "--work-dir", str(ROOT / "x")],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert done.returncode == 2
    assert "must be outside the repo" in done.stderr.strip().splitlines()[-1]


@pytest.mark.e2e
def test_two_fold_cross_validation_scores_both_models_on_unseen_rows(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "quality", "--folds", "2", "--rows", "1200",
         "--runner-arg=--train-steps=100", "--work-dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=1800,
    )
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    report = json.loads((run_dir / "results.json").read_text())
    folds = report["results"]
    assert [f["fold"] for f in folds] == [0, 1]
    assert sum(f["heldout_rows"] for f in folds) == 1200
    for fold in folds:
        assert fold["train_rows"] + fold["heldout_rows"] == 1200
        assert fold["pipeline_model"] == "pushed" or fold["pipeline_model"].startswith(
            "not blessed")
        for side in ("pipeline", "gbdt"):
            scores = fold[side]
            assert scores["rows"] == fold["heldout_rows"]
            # Real models of the label on unseen rows: far better than chance,
            # probabilities (not 0/1 answers) so the calibration error is small.
            assert 0.75 < scores["auc"] <= 1.0, (side, scores)
            assert 0.7 < scores["accuracy"] <= 1.0, (side, scores)
            assert 0.0 <= scores["ece"] < 0.2, (side, scores)
        assert set(fold["gbdt_params"]) == set(gbdt.GBDT_GRID)
        assert set(fold["evaluator"]) == {"auc", "binary_accuracy"}
    table = (run_dir / "results.md").read_text()
    assert table_rows(table)[-1][:2] == ["**mean**", "1200"]
    assert "pipeline AUC" in done.stdout and "GBDT AUC" in done.stdout
