"""The review tools answer the same questions whichever orchestrator made a run.

`check_review_tools` asks `review.lineage` (JSON and text), `review.report`
and the runner's summary about a run recorded by the local runner, Airflow,
Luigi or an Azure ML step, and checks each names the data, the features, the
training, the blessing and the push of the served model, and the run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from metadata import store
from metadata.outcome import read_outcome
from tests.conftest import ROOT

TRAINING_CHAIN = ("CsvExampleGen", "StatisticsGen", "FeatureSelection", "Transform", "Trainer",
                  "Evaluator", "Pusher")


def _tool(module: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, env={**os.environ, **(env or {})})


def check_review_tools(output_dir: Path, run_id: str, data_root: Path, served: Path,
                       mysql: str | None = None, env: dict | None = None) -> None:
    """Lineage, report and summary all say `run_id` trained, blessed and pushed `served`."""
    where = ["--output-dir", str(output_dir)] + (["--metadata-mysql", mysql] if mysql else [])

    answer = _tool("review.lineage", *where, "--json", env=env)
    assert answer.returncode == 0, answer.stderr[-3000:]
    data = json.loads(answer.stdout)
    assert data["lineage"]["version"] == served.name
    steps = {s["component"]: s for s in data["lineage"]["steps"]}
    assert set(TRAINING_CHAIN) <= set(steps), sorted(steps)
    assert steps["CsvExampleGen"]["properties"]["input_base"] == str(data_root)
    assert steps["FeatureSelection"]["outputs"]["selection"][0]["properties"]["selected"]
    (blessing,) = steps["Evaluator"]["outputs"]["blessing"]
    assert blessing["properties"]["blessed"] == 1
    for node in ("Trainer", "Evaluator", "Pusher"):
        assert steps[node]["run_id"] == run_id, (node, steps[node]["run_id"])
    run = next(r for r in data["runs"] if r["run_id"] == run_id)
    assert run["blessed"] is True and run["pushed_version"] == served.name, run

    text = _tool("review.lineage", *where, env=env)
    assert text.returncode == 0, text.stderr[-3000:]
    lines = [line.strip() for line in text.stdout.splitlines()]
    assert f"Model version {served.name}, served from {served}" in text.stdout
    said = {label: next(line for line in lines if line.startswith(label))
            for label in ("data:", "features:", "trained:", "blessed:", "pushed:")}
    assert str(data_root) in said["data:"]
    assert "payment_type" in said["features:"]
    for label in ("trained:", "blessed:", "pushed:"):
        assert f"(run {run_id})" in said[label], said[label]

    report = _tool("review.report", *where, "--run-id", run_id, env=env)
    assert report.returncode == 0, report.stderr[-3000:]
    page = (output_dir / "report" / "index.html").read_text()
    assert run_id in page and served.name in page

    location = (store.mysql_connection_config(store.parse_mysql(mysql), env) if mysql
                else str(output_dir / store.SQLITE_FILENAME))
    recorded = read_outcome(location, run_id)
    assert recorded.blessed is True and recorded.pushed_path == str(served)
    assert {c.component for c in recorded.components} >= set(TRAINING_CHAIN)
