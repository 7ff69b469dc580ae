"""`python -m benchmarks.spans`: is a same-distribution span pushed, and is a worse model refused?

Method (results in docs/benchmarks.md, "Continuous training on random halves"):

* A halving shuffles the shipped rows (data/data.csv) with its own seed and
  cuts them in two: `span-1/` is one half, `span-2/` the other, both in one
  data root. The real pipeline (`local_runner.py`, default settings) runs on
  span-1 into a fresh output folder, then again on span-2 into the same
  folder, so span-2's model is evaluated against span-1's served model on
  span-2's eval split, as in continuous training.
* Worse candidates (`--worse`), in the first halving only, each as a span
  between the two halves (the other half, changed): `shuffled_tips` (tips
  shuffled across rows: the label is noise), `no_fare` (the model may not use
  `fare`; the label still comes from it), `500_rows` (split 1:14, so the
  model trains on about 500 rows and is scored on about 7,000). Each is
  compared with span-1's served model unless one of them was pushed.
* Every run's record is one JSON line in `<work-dir>/runs.jsonl`, written as
  soon as the run ends: blessed, pushed, the rules it failed, and the overall
  metrics of the candidate and of the baseline on the same rows, so another
  blessing rule can be scored from the same runs (`--score-only`).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks import tables

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SOURCE_CSV = PROJECT_ROOT / "data" / "data.csv"
DEFAULT_WORK_DIR = "/tmp/taxi-spans-bench"
WORSE = ("shuffled_tips", "no_fare", "500_rows")
# Settings each worse candidate's run gets (see `run_with_overrides`).
OVERRIDES = {"no_fare": {"drop_candidate": "fare"}, "500_rows": {"split_buckets": [1, 14]}}


def halves(seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The shipped rows in a random order, cut in two (as strings: written back unchanged)."""
    rows = pd.read_csv(SOURCE_CSV, dtype=str, keep_default_na=False)
    order = np.random.default_rng(seed).permutation(len(rows))
    cut = len(rows) // 2
    return rows.iloc[order[:cut]], rows.iloc[order[cut:]]


def shuffled_tips(rows: pd.DataFrame, seed: int) -> pd.DataFrame:
    rows = rows.copy()
    rows["tips"] = np.random.default_rng(seed).permutation(rows["tips"].to_numpy())
    return rows


def overall_by_model(evaluation_uri: str) -> dict[str, float]:
    """{"candidate/auc": .., "baseline/auc": .., "diff/auc": ..} of the overall slice."""
    import tensorflow_model_analysis as tfma

    found: dict[str, float] = {}
    for per_slice in tfma.load_metrics(evaluation_uri):
        if per_slice.slice_key.single_slice_keys:
            continue
        for entry in per_slice.metric_keys_and_values:
            key = entry.key
            if key.HasField("sub_key") or not entry.value.HasField("double_value"):
                continue
            model = "diff" if key.is_diff else (key.model_name or "candidate")
            found[f"{model}/{key.name}"] = entry.value.double_value.value
    return found


def record(output_dir: Path, run_id: str | None = None) -> dict:
    """What the latest run in `output_dir` did, from ML Metadata."""
    from local.summary import not_blessed_reasons
    from metadata import names
    from metadata.graph import MetadataGraph
    from metadata.outcome import read_outcome
    from metadata.store import location

    where = location(str(output_dir), None)
    result = read_outcome(where, run_id)
    graph = MetadataGraph(where)
    evaluator = graph.component_execution(result.run_id, names.EVALUATOR)
    metrics = {}
    if evaluator is not None:
        evaluations = graph.outputs_of_type(evaluator.id, names.MODEL_EVALUATION)
        if evaluations:
            metrics = overall_by_model(evaluations[0].uri)
    return {"blessed": result.blessed, "pushed": result.pushed_path is not None,
            "failures": not_blessed_reasons(result), "metrics": metrics}


def run_pipeline(data_root: Path, output_dir: Path, log: Path, overrides: dict) -> dict:
    """One run of the pipeline in a child process; its record."""
    command = [sys.executable, "-m", "benchmarks.spans", "--run-one", json.dumps(overrides),
               "--data-root", str(data_root), "--output-dir", str(output_dir)]
    started = time.time()
    with log.open("a") as out:
        code = subprocess.run(command, cwd=PROJECT_ROOT, stdout=out, stderr=subprocess.STDOUT,
                              check=False).returncode
    seconds = round(time.time() - started, 1)
    if code != 0:
        return {"returncode": code, "seconds": seconds}
    return {"returncode": 0, "seconds": seconds, **record(output_dir)}


def run_with_overrides(overrides: dict, runner_args: list[str]) -> int:
    """local_runner.py with some PipelineConfig settings replaced (benchmark only)."""
    from pipeline import run_config
    from pipeline.configs import PipelineConfig

    build = run_config.checked_config

    def patched(args) -> PipelineConfig:
        config = build(args)
        if "split_buckets" in overrides:
            config = replace(config, split_buckets=tuple(overrides["split_buckets"]))
        return config

    run_config.checked_config = patched
    if "drop_candidate" in overrides:
        # Not a candidate, so neither selected nor a model input (Transform runs in
        # this process: the direct runner's in-memory mode on this data). A
        # dropped label source stays in Transform's schema for the label.
        from models import features

        features.CANDIDATE_FEATURES = tuple(
            name for name in features.CANDIDATE_FEATURES if name != overrides["drop_candidate"])
    import local_runner

    return local_runner.main(runner_args)


def write_span(data_root: Path, span: int, rows: pd.DataFrame) -> None:
    folder = data_root / f"span-{span}"
    folder.mkdir(parents=True, exist_ok=True)
    rows.to_csv(folder / "data.csv", index=False)


def halving(work: Path, seed: int, worse: tuple[str, ...], results: Path) -> None:
    """span-1 (one half), then each worse candidate, then the other half, in one folder.

    A refused candidate pushes nothing, so the other half is still compared
    with span-1's model; the record says if a worse candidate was pushed.
    """
    folder = work / f"halving-{seed}"
    shutil.rmtree(folder, ignore_errors=True)
    data_root, output_dir = folder / "data", folder / "output"
    first, second = halves(seed)
    spans = [("good", first, {})]
    spans += [(case, shuffled_tips(second, seed) if case == "shuffled_tips" else second,
               OVERRIDES.get(case, {})) for case in worse]
    spans.append(("good", second, {}))
    for number, (case, rows, settings) in enumerate(spans, start=1):
        write_span(data_root, number, rows)
        line = {"halving": seed, "span": number, "case": case, "rows": len(rows),
                **run_pipeline(data_root, output_dir, folder / "log.txt", settings)}
        with results.open("a") as out:
            out.write(json.dumps(line) + "\n")
        print(json.dumps({k: v for k, v in line.items() if k != "metrics"}), flush=True)
        if line["returncode"] != 0 and number == 1:
            return
    shutil.rmtree(output_dir / "pipeline_root", ignore_errors=True)


def refused_by(metrics: dict, rule) -> list[str]:
    """The rules of `rule` (an EvaluationThresholds) these recorded metrics fail."""
    failed = []
    if metrics.get("candidate/auc", 0.0) < rule.min_auc:
        failed.append("auc floor")
    if metrics.get("candidate/binary_accuracy", 0.0) < rule.min_accuracy:
        failed.append("accuracy floor")
    if "diff/auc" in metrics and metrics["diff/auc"] < -rule.max_auc_drop:
        failed.append("auc drop")
    if "diff/binary_accuracy" in metrics and (
            metrics["diff/binary_accuracy"] < -rule.max_accuracy_drop):
        failed.append("accuracy drop")
    return failed


def score(lines: list[dict], rules: dict) -> str:
    """Markdown: every run's metrics, and what each rule would have decided."""
    head = ["halving", "span", "case", "eval rows", "AUC", "accuracy", "AUC change",
            "accuracy change", "blessed", "pushed"] + list(rules)
    rows = []
    for line in lines:
        m = line.get("metrics", {})
        if line["returncode"] != 0:
            rows.append([line["halving"], line["span"], line["case"],
                         f"run failed (exit {line['returncode']})"] + [""] * (len(head) - 4))
            continue
        cells = [line["halving"], line["span"], line["case"],
                 f"{m.get('candidate/example_count', 0):.0f}"]
        cells += [f"{m[k]:.4f}" if k in m else "–" for k in
                  ("candidate/auc", "candidate/binary_accuracy", "diff/auc",
                   "diff/binary_accuracy")]
        cells += ["yes" if line["blessed"] else "no", "yes" if line["pushed"] else "no"]
        cells += [", ".join(refused_by(m, rule)) or "blessed" for rule in rules.values()]
        rows.append(cells)
    return tables.markdown_table(head, rows)


def summary_lines(lines: list[dict], rules: dict) -> list[str]:
    """Rates: good runs refused per rule, same-distribution second halves pushed."""
    good = [x for x in lines if x["case"] == "good" and x["returncode"] == 0]
    later = [x for x in good if x["span"] > 1]
    out = [f"same-distribution later spans blessed and pushed: "
           f"{sum(bool(x['pushed']) for x in later)} of {len(later)} "
           f"({sum(x['returncode'] != 0 for x in lines)} run(s) failed)"]
    for name, rule in rules.items():
        refused = [x for x in good if refused_by(x["metrics"], rule)]
        out.append(f"good models refused by {name}: {len(refused)} of {len(good)}")
    spread = {"AUC": [x["metrics"]["candidate/auc"] for x in good],
              "accuracy": [x["metrics"]["candidate/binary_accuracy"] for x in good],
              "AUC change vs served": [x["metrics"]["diff/auc"] for x in later
                                       if "diff/auc" in x["metrics"]],
              "accuracy change vs served": [x["metrics"]["diff/binary_accuracy"] for x in later
                                            if "diff/binary_accuracy" in x["metrics"]]}
    for name, values in spread.items():
        if len(values) > 1:
            out.append(f"good models' {name}: mean {np.mean(values):.4f}, standard "
                       f"deviation {np.std(values, ddof=1):.4f}, lowest {min(values):.4f} "
                       f"({len(values)} runs)")
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--run-one"]:
        return run_with_overrides(json.loads(argv[1]), argv[2:])
    parser = argparse.ArgumentParser(prog="python -m benchmarks.spans", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--halvings", type=int, default=20)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--worse", nargs="*", choices=WORSE, default=list(WORSE),
                        help="worse candidates run in the first halving (default: all)")
    parser.add_argument("--work-dir", default=DEFAULT_WORK_DIR)
    parser.add_argument("--score-only", action="store_true",
                        help="score the recorded runs (old and current blessing rule)")
    args = parser.parse_args(argv)
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    results = work / "runs.jsonl"
    if args.score_only:
        from pipeline.configs import EvaluationThresholds

        lines = [json.loads(x) for x in results.read_text().splitlines() if x.strip()]
        rules = {"current rule": EvaluationThresholds(), "old rule (0.945 / 0.89)":
                 EvaluationThresholds(min_auc=0.945, min_accuracy=0.89, max_auc_drop=0.01,
                                      max_accuracy_drop=1.0)}
        print(score(lines, rules))
        print("\n".join(summary_lines(lines, rules)))
        return 0
    for seed in range(args.first_seed, args.first_seed + args.halvings):
        worse = tuple(args.worse) if seed == args.first_seed else ()
        halving(work, seed, worse, results)
    print(f"results: {results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
