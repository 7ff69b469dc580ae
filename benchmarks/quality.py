"""`python -m benchmarks quality`: the whole pipeline, cross-validated, next to a tuned GBDT.

The honest measure of the model is on rows it never saw. `data/data.csv` is
split into K folds (scikit-learn's StratifiedKFold, seeded: the same folds on
every machine, each with the label's share of big tippers); for each fold:

* the pipeline runs end to end (`local_runner.py`, a subprocess, a fresh output
  folder) on the other folds only; the model it pushed is loaded and called
  through its `serving_default` signature with the held-out rows as serialized
  `tf.Example`s, built exactly as `serving.client` builds them for TF Serving;
* a scikit-learn HistGradientBoostingClassifier on every raw column (except
  the label source `tips`) is tuned by an inner cross-validation on the same
  training folds, refitted on all of them and scored on the same held-out fold.

Both get AUC, accuracy (threshold 0.5) and expected calibration error per fold
and on average. The pipeline holds back a fifth of its input as its own eval
split (the Evaluator's), so it trains on fewer rows than the GBDT: that is part
of what is measured. A fold whose model the Evaluator did not bless has nothing
pushed; its Trainer's model is scored instead and the fold is marked.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import random
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from benchmarks import data, gbdt, tables

PROJECT_ROOT = data.PROJECT_ROOT
DEFAULT_WORK_DIR = "/tmp/taxi-tfx-quality"
DEFAULT_SEED = 12
CALIBRATION_BINS = 10
PIPELINE = "pipeline"
GBDT = "gbdt"


@dataclass(frozen=True)
class Scores:
    """Probability-based quality of one model on one held-out fold."""

    auc: float
    accuracy: float
    ece: float
    rows: int


@dataclass
class FoldResult:
    fold: int
    train_rows: int
    heldout_rows: int
    pipeline: Scores | None = None
    pipeline_model: str = ""  # "pushed", or why the Trainer's model was scored
    pipeline_seconds: float = 0.0
    pipeline_error: str = ""
    # What the pipeline's own Evaluator measured on its eval split (its blessing input).
    evaluator: dict[str, float] = field(default_factory=dict)
    gbdt: Scores | None = None
    gbdt_params: dict = field(default_factory=dict)
    gbdt_seconds: float = 0.0


# --------------------------------------------------------------------------- metrics


def roc_auc(labels: Sequence[int], probabilities: Sequence[float]) -> float:
    """Area under the ROC curve; needs both classes."""
    from sklearn.metrics import roc_auc_score

    if len(set(labels)) < 2:
        raise ValueError("AUC is undefined: the held-out fold has a single class")
    return float(roc_auc_score(labels, probabilities))


def accuracy(labels: Sequence[int], probabilities: Sequence[float]) -> float:
    """Share of rows where `probability > 0.5` matches the label."""
    import numpy as np
    from sklearn.metrics import accuracy_score

    return float(accuracy_score(labels, (np.asarray(probabilities) > 0.5).astype(int)))


def expected_calibration_error(
    labels: Sequence[int], probabilities: Sequence[float], bins: int = CALIBRATION_BINS
) -> float:
    """Row-weighted mean |mean probability - positive rate| over equal-width bins
    (scikit-learn's calibration curve, weighted by the rows in each bin)."""
    import numpy as np
    from sklearn.calibration import calibration_curve

    p = np.asarray(probabilities, dtype=float)
    if np.isnan(p).any():
        raise ValueError("not a probability: NaN")  # calibration_curve would bin it last
    positive_rate, mean_probability = calibration_curve(labels, p, n_bins=bins)
    # Rows per bin, binned as calibration_curve bins them (it returns non-empty bins only).
    edges = np.linspace(0.0, 1.0, bins + 1)
    rows = np.bincount(np.searchsorted(edges[1:-1], p), minlength=bins)
    weights = rows[rows > 0] / len(p)
    return float(np.sum(weights * np.abs(mean_probability - positive_rate)))


def score(labels: Sequence[int], probabilities: Sequence[float]) -> Scores:
    return Scores(
        auc=roc_auc(labels, probabilities),
        accuracy=accuracy(labels, probabilities),
        ece=expected_calibration_error(labels, probabilities),
        rows=len(labels),
    )


# --------------------------------------------------------------------------- folds


def assign_folds(labels: Sequence[int], folds: int, seed: int) -> list[int]:
    """Fold number of each row: scikit-learn's seeded StratifiedKFold, so every fold
    has the label's share of big tippers and fold sizes differ by at most one row."""
    import numpy as np
    from sklearn.model_selection import StratifiedKFold

    if folds < 2:
        raise ValueError(f"need at least 2 folds, got {folds}")
    if len(labels) < folds:
        raise ValueError(f"{len(labels)} rows cannot make {folds} folds")
    assignment = np.zeros(len(labels), dtype=int)
    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    for fold, (_, heldout) in enumerate(splitter.split(np.zeros(len(labels)), labels)):
        assignment[heldout] = fold
    return assignment.tolist()


def label_of(row: dict[str, str]) -> int:
    """big_tipper as the pipeline computes it: tips > 0.2 * fare, empty cells as 0."""
    from models import features

    def number(name: str) -> float:
        cell = row.get(name, "").strip()
        return float(cell) if cell else 0.0

    return int(number(features.TIPS_KEY) > features.BIG_TIP_FRACTION * number(features.FARE_KEY))


def read_rows(source: Path, limit: int | None, seed: int) -> tuple[str, list[str]]:
    """Header and data lines of `source`; with `limit`, a seeded random subset of them."""
    header, lines = data.split_csv(source.read_text(encoding="utf-8"))
    if limit is not None and limit < len(lines):
        lines = random.Random(seed).sample(lines, limit)
    return header, lines


def parse_lines(header: str, lines: Sequence[str]) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.render_csv(header, lines))))


# --------------------------------------------------------------------------- pipeline side


def run_pipeline(data_root: Path, output_dir: Path, extra: Sequence[str], log: Path) -> int:
    """`local_runner.py` on `data_root`; its console output goes to `log`."""
    with open(log, "w", encoding="utf-8") as out:
        done = subprocess.run(
            [sys.executable, str(PROJECT_ROOT / "local_runner.py"), "--data-root", str(data_root),
             "--output-dir", str(output_dir), *extra],
            cwd=PROJECT_ROOT, stdout=out, stderr=subprocess.STDOUT,
            env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
        )
    return done.returncode


def evaluator_metrics(console: str) -> dict[str, float]:
    """The Evaluator's overall metrics from the run summary's `Evaluation:` line."""
    line = next((x for x in console.splitlines() if x.startswith("Evaluation: ")), "")
    found = re.findall(r"(auc|binary_accuracy) ([0-9.]+)", line)
    return {name: float(value) for name, value in found}


def model_to_score(output_dir: Path) -> tuple[Path, str]:
    """The pushed model, or (when the Evaluator refused it) the Trainer's newest one."""
    from pipeline.configs import PipelineConfig

    serving = Path(PipelineConfig(output_dir=str(output_dir)).serving_model_dir)
    versions = sorted((p for p in serving.glob("*") if p.name.isdigit()), key=lambda p: int(p.name))
    if versions:
        return versions[-1], "pushed"
    trained = sorted(
        Path(PipelineConfig(output_dir=str(output_dir)).pipeline_root).glob(
            "Trainer/model/*/Format-Serving"
        ),
        key=lambda p: int(p.parent.name),
    )
    if not trained:
        raise RuntimeError(f"no model was trained in {output_dir}")
    return trained[-1], "not blessed: Trainer's model scored"


def serve(model_dir: Path, header: str, lines: Sequence[str], batch: int = 1024) -> list[float]:
    """Probabilities from `serving_default`, fed serialized tf.Examples as a client sends them."""
    import tensorflow as tf

    from serving import INPUT_KEY, OUTPUT_KEY, SIGNATURE_NAME
    from serving.client import load_columns, read_examples

    examples, _ = read_examples([header, *lines], load_columns())
    signature = tf.saved_model.load(str(model_dir)).signatures[SIGNATURE_NAME]
    probabilities: list[float] = []
    for start in range(0, len(examples), batch):
        answer = signature(**{INPUT_KEY: tf.constant(examples[start:start + batch])})
        probabilities.extend(float(p) for p in answer[OUTPUT_KEY].numpy().reshape(-1))
    return probabilities


# --------------------------------------------------------------------------- driver


def run_fold(args: argparse.Namespace, fold: int, header: str, lines: list[str],
             assignment: list[int], work: Path) -> FoldResult:
    train = [line for line, f in zip(lines, assignment, strict=True) if f != fold]
    heldout = [line for line, f in zip(lines, assignment, strict=True) if f == fold]
    labels = [label_of(r) for r in parse_lines(header, heldout)]
    result = FoldResult(fold, len(train), len(heldout))
    fold_dir = work / f"fold-{fold}"
    data_root = fold_dir / "train"
    data_root.mkdir(parents=True, exist_ok=True)
    (data_root / "data.csv").write_text(data.render_csv(header, train), encoding="utf-8")
    if PIPELINE in args.which:
        started = time.time()
        code = run_pipeline(data_root, fold_dir / "output", args.runner_arg,
                            fold_dir / "local_runner.log")
        result.pipeline_seconds = time.time() - started
        if code != 0:
            result.pipeline_error = f"exit status {code}, see {fold_dir}/local_runner.log"
        else:
            model_dir, result.pipeline_model = model_to_score(fold_dir / "output")
            result.evaluator = evaluator_metrics(
                (fold_dir / "local_runner.log").read_text(encoding="utf-8"))
            result.pipeline = score(labels, serve(model_dir, header, heldout))
    if GBDT in args.which:
        started = time.time()
        train_rows = parse_lines(header, train)
        probabilities, result.gbdt_params = gbdt.run_gbdt(
            train_rows, [label_of(r) for r in train_rows], parse_lines(header, heldout),
            args.seed + fold,
        )
        result.gbdt = score(labels, probabilities)
        result.gbdt_seconds = time.time() - started
    return result


def describe_fold(r: FoldResult) -> str:
    parts = [f"fold {r.fold}: train {r.train_rows} rows, held out {r.heldout_rows}"]
    if r.pipeline:
        parts.append(f"pipeline AUC {r.pipeline.auc:.4f} acc {r.pipeline.accuracy:.4f} "
                     f"ECE {r.pipeline.ece:.4f} ({r.pipeline_model}, {r.pipeline_seconds:.0f} s; "
                     f"its Evaluator: {r.evaluator})")
    if r.pipeline_error:
        parts.append(f"pipeline FAILED: {r.pipeline_error}")
    if r.gbdt:
        parts.append(f"GBDT AUC {r.gbdt.auc:.4f} acc {r.gbdt.accuracy:.4f} "
                     f"ECE {r.gbdt.ece:.4f} ({r.gbdt_seconds:.0f} s, {r.gbdt_params})")
    return "; ".join(parts)


TABLE_HEADERS = ("fold", "held-out rows", "pipeline AUC", "GBDT AUC", "pipeline accuracy",
                 "GBDT accuracy", "pipeline ECE", "GBDT ECE")


def markdown_table(results: Sequence[FoldResult]) -> str:
    """Per-fold and mean AUC / accuracy / ECE of both models (a row per fold)."""

    def cells(s: Scores | None) -> tuple[str, str, str]:
        return ("–", "–", "–") if s is None else (
            f"{s.auc:.4f}", f"{s.accuracy:.4f}", f"{s.ece:.4f}")

    rows = []
    for r in results:
        p, g = cells(r.pipeline), cells(r.gbdt)
        marker = "" if r.pipeline_model in ("", "pushed") else " (not blessed)"
        rows.append([f"{r.fold}{marker}", r.heldout_rows, p[0], g[0], p[1], g[1], p[2], g[2]])
    means = {}
    for side in (PIPELINE, GBDT):
        scored = [getattr(r, side) for r in results if getattr(r, side)]
        means[side] = (
            ("–",) * 3 if len(scored) < len(results) or not scored
            else tuple(f"{statistics.fmean(getattr(s, m) for s in scored):.4f}"
                       for m in ("auc", "accuracy", "ece"))
        )
    p, g = means[PIPELINE], means[GBDT]
    rows.append(["**mean**", sum(r.heldout_rows for r in results), f"**{p[0]}**",
                 f"**{g[0]}**", f"**{p[1]}**", f"**{g[1]}**", p[2], g[2]])
    return tables.markdown_table(TABLE_HEADERS, rows)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks quality",
        description="Cross-validate the whole pipeline (train on K-1 folds, score the pushed "
                    "model's serving_default on the held-out fold) next to a tuned scikit-learn "
                    "HistGradientBoosting on the same folds. Takes minutes per fold.",
    )
    parser.add_argument("--folds", type=int, default=5, help="K (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                        help="seed of the fold assignment (default: %(default)s)")
    parser.add_argument("--data", default=str(data.SOURCE_CSV),
                        help="CSV to cross-validate (default: data/data.csv)")
    parser.add_argument("--rows", type=int, default=None,
                        help="use a seeded random subset of this many rows (default: all)")
    parser.add_argument("--only-folds", type=int, nargs="+", default=None, metavar="K",
                        help="run only these folds (default: all)")
    parser.add_argument("--which", choices=(f"{PIPELINE},{GBDT}", PIPELINE, GBDT),
                        default=f"{PIPELINE},{GBDT}", help="models to score (default: both)")
    parser.add_argument("--runner-arg", action="append", default=[], metavar="ARG",
                        help="extra argument for local_runner.py, repeatable, e.g. "
                             "--runner-arg=--train-steps=100")
    parser.add_argument("--work-dir", default=DEFAULT_WORK_DIR,
                        help="fold data, pipeline outputs and results; must be outside the repo "
                             "(default: %(default)s)")
    args = parser.parse_args(argv)
    if args.folds < 2:
        parser.error("--folds must be at least 2")
    if args.rows is not None and args.rows < 2 * args.folds:
        parser.error("--rows must leave at least 2 rows per fold")
    if args.only_folds and not all(0 <= k < args.folds for k in args.only_folds):
        parser.error(f"--only-folds must be between 0 and {args.folds - 1}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    source = Path(args.data)
    if not source.is_file():
        print(f"error: {source} is not a file", file=sys.stderr)
        return 2
    work = Path(args.work_dir).resolve()
    if work == PROJECT_ROOT or PROJECT_ROOT in work.parents:
        print(f"error: --work-dir must be outside the repo ({PROJECT_ROOT})", file=sys.stderr)
        return 2
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    run_dir = work / stamp
    header, lines = read_rows(source, args.rows, args.seed)
    assignment = assign_folds([label_of(r) for r in parse_lines(header, lines)], args.folds,
                              args.seed)
    print(f"{len(lines)} rows of {source} in {args.folds} folds (seed {args.seed}); "
          f"work in {run_dir}", flush=True)
    results = []
    for fold in args.only_folds or range(args.folds):
        results.append(run_fold(args, fold, header, lines, assignment, run_dir))
        print(describe_fold(results[-1]), flush=True)
    table = markdown_table(results)
    print("\n" + table)
    (run_dir / "results.json").write_text(json.dumps(
        {"command": " ".join(["python -m benchmarks quality", *(argv or sys.argv[2:])]),
         "started": stamp, "rows": len(lines), "folds": args.folds, "seed": args.seed,
         "results": [asdict(r) for r in results]}, indent=2))
    (run_dir / "results.md").write_text(table + "\n")
    print(f"(saved to {run_dir}/results.md and results.json)", flush=True)
    return 0 if all(not r.pipeline_error for r in results) else 1
