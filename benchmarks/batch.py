"""`python -m benchmarks batch`: batch predictions, ours against TFX's BulkInferrer.

    python -m benchmarks batch --rows 1000000 --rows 10000000 --which both

For each input size (data/data.csv resampled with replacement, as the other
benchmarks do), both score every row with the same pushed version, side by
side in one invocation:

* ours: `python -m serving.batch_predict data.csv --out scores.parquet`;
* TFX: `python -m benchmarks.bulk_inferrer`, a minimal pipeline of stock
  CsvExampleGen + BulkInferrer (PredictionLogs out), LocalDagRunner, Beam's
  direct runner in `--tfx-mode`.

Each is one process tree, measured for wall time, CPU time and peak memory
(benchmarks/measure.py); TFX's component times come from its ML Metadata.
The model is the one pushed by a short run of our pipeline on the shipped
data (made once under the work dir), or `--model-output-dir`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from datetime import datetime, timezone
from pathlib import Path

from benchmarks import data, machine, tables
from benchmarks.measure import run_measured

PROJECT_ROOT = data.PROJECT_ROOT
PYTHON = sys.executable
DEFAULT_WORK_DIR = "/tmp/taxi-tfx-bench"
GIB = 2**30


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks batch",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, action="append", default=None,
                        help="input rows, repeatable (default: 1000000)")
    parser.add_argument("--which", choices=("both", "ours", "theirs"), default="both")
    parser.add_argument("--tfx-mode", choices=("in_memory", "multi_processing"),
                        default="multi_processing",
                        help="Beam direct running mode for BulkInferrer (default: %(default)s, "
                             "with --direct_num_workers=0: every core)")
    parser.add_argument("--work-dir", default=DEFAULT_WORK_DIR)
    parser.add_argument("--seed", type=int, default=data.DEFAULT_SEED)
    parser.add_argument("--model-output-dir", default=None,
                        help="an output folder of our pipeline holding a pushed version "
                             "(default: one made under the work dir)")
    parser.add_argument("--timeout", type=float, default=7200)
    parser.add_argument("--note", default="")
    args = parser.parse_args(argv)
    args.rows = args.rows or [1_000_000]
    return args


def env(work: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "TF_CPP_MIN_LOG_LEVEL": "2",
            "TMPDIR": str(work / "tmp"), "SERVING_SETTLE_SECONDS": "0"}


def model_output_dir(args: argparse.Namespace, work: Path) -> Path:
    """Our pipeline's output folder with a pushed version, made once."""
    if args.model_output_dir:
        return Path(args.model_output_dir)
    out = work / "batch" / "model"
    if not list((out / "serving_model" / "chicago_taxi").glob("[0-9]*")):
        command = [PYTHON, str(PROJECT_ROOT / "local_runner.py"), "--output-dir", str(out),
                   "--train-steps", "200"]
        result = run_measured(command, cwd=PROJECT_ROOT, env=env(work),
                              log_path=work / "batch" / "model.log", timeout=args.timeout)
        if result.returncode != 0:
            raise SystemExit(f"error: the pipeline run making the model failed: "
                             f"{work / 'batch' / 'model.log'}")
    return out


def measure(name: str, command: list[str], work: Path, log: Path, timeout: float) -> dict:
    load = machine.load_average()
    result = run_measured(command, cwd=PROJECT_ROOT, env=env(work), log_path=log,
                          timeout=timeout)
    return {"pipeline": name, "ok": result.returncode == 0, "wall": result.wall_seconds,
            "cpu": result.cpu_seconds, "peak_tree_bytes": result.peak_tree_rss_bytes,
            "largest_process_bytes": result.max_process_rss_bytes, "load_before": load,
            "load_after": machine.load_average(), "log": str(log)}


def tfx_components(output_dir: Path) -> dict[str, float]:
    from benchmarks.bulk_inferrer import metadata_path
    from metadata.graph import MetadataGraph

    graph = MetadataGraph(metadata_path(str(output_dir)))
    return {c.component: round(c.seconds, 1) for run_id in graph.run_ids()
            for c in graph.component_runs(run_id)}


def run_size(args, rows: int, work: Path, model_out: Path, root: Path) -> list[dict]:
    dataset = data.prepare_dataset(work, rows, args.seed)
    csv = str(Path(dataset.data_root) / "data.csv")
    version = max(p for p in (model_out / "serving_model" / "chicago_taxi").iterdir()
                  if p.name.isdigit())
    results = []
    if args.which in ("both", "ours"):
        out = root / f"ours-{rows}"
        out.mkdir(parents=True, exist_ok=True)
        command = [PYTHON, "-m", "serving.batch_predict", csv, "--out",
                   str(out / "scores.parquet"), "--output-dir", str(model_out),
                   "--version", version.name]
        results.append({"rows": rows, **measure("ours", command, work, out / "log.txt",
                                                args.timeout)})
        (out / "scores.parquet").unlink(missing_ok=True)
    if args.which in ("both", "theirs"):
        out = root / f"bulk-inferrer-{rows}"
        command = [PYTHON, "-m", "benchmarks.bulk_inferrer", "--data-root", dataset.data_root,
                   "--model-dir", str(version), "--output-dir", str(out), "--mode",
                   args.tfx_mode]
        result = measure("BulkInferrer", command, work, root / f"bulk-inferrer-{rows}.log",
                         args.timeout)
        result["components"] = tfx_components(out) if result["ok"] else {}
        results.append({"rows": rows, **result})
        shutil.rmtree(out / "pipeline_root", ignore_errors=True)
    return results


def markdown(results: list[dict], args: argparse.Namespace) -> str:
    headers = ("rows", "scorer", "ok", "wall s", "CPU s", "peak memory (tree)",
               "largest process", "load before/after", "components")
    rows = []
    for r in results:
        components = ", ".join(f"{k} {v} s" for k, v in r.get("components", {}).items())
        rows.append([
            f"{r['rows']:,}", r["pipeline"], "yes" if r["ok"] else "FAILED", f"{r['wall']:.1f}",
            f"{r['cpu']:.1f}", f"{r['peak_tree_bytes'] / GIB:.2f} GiB",
            f"{r['largest_process_bytes'] / GIB:.2f} GiB",
            f"{r['load_before']:.1f} / {r['load_after']:.1f}", components or "-"])
    lines = [f"Batch predictions, `python -m benchmarks batch` (BulkInferrer in "
             f"`{args.tfx_mode}` mode){': ' + args.note if args.note else ''}", "",
             tables.markdown_table(headers, rows)]
    by_rows: dict[int, dict[str, float]] = {}
    for r in results:
        if r["ok"]:
            by_rows.setdefault(r["rows"], {})[r["pipeline"]] = r["wall"]
    for rows_count, walls in sorted(by_rows.items()):
        if "ours" in walls and "BulkInferrer" in walls:
            lines.append(f"\n{rows_count:,} rows: ours takes "
                         f"{walls['ours'] / walls['BulkInferrer']:.2f}x BulkInferrer's wall time.")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    work = Path(args.work_dir).resolve()
    (work / "tmp").mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    root = work / "batch" / stamp
    model_out = model_output_dir(args, work)
    results = []
    for rows in args.rows:
        results += run_size(args, rows, work, model_out, root)
        print(json.dumps(results[-2:] if args.which == "both" else results[-1:]), flush=True)
    text = markdown(results, args)
    (work / "results").mkdir(parents=True, exist_ok=True)
    (work / "results" / f"batch-{stamp}.json").write_text(json.dumps(results, indent=1))
    print("\n" + text)
    return 0 if results and all(r["ok"] for r in results) else 1
