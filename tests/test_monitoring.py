"""monitoring.check end to end: requests logged against the session's pushed model.

Windows of real rows (a random sample of the shipped data, the distribution the
model was trained on) are logged with the model's own answers through
`serving.capture`, then checked by `python -m monitoring.check` in a
subprocess, as a user runs it. The check writes into a copy of the run's ML
Metadata (the session's run stays as other tests expect it). Clean windows
pass; constructed shifts are refused naming the feature; the labelled
requests become the next span, and a pipeline run trains on that span.
"""

from __future__ import annotations

import csv
import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from metadata import names
from metadata.store import open_store
from serving import capture, client
from tests.conftest import DATA, ROOT, run_pipeline
from tests.test_notify import Webhook, fields

pytestmark = pytest.mark.e2e

HEADER, *ROWS = list(csv.reader(open(DATA / "data.csv", newline="")))
WINDOW = 1500


def window(seed: int, change=None) -> list[dict]:
    """WINDOW random rows as dicts (with a trip_id), optionally changed."""
    rows = random.Random(seed).sample(ROWS, WINDOW)
    result = [dict(zip(HEADER, r, strict=True), trip_id=f"{seed}-{i}") for i, r in enumerate(rows)]
    return [change(r) for r in result] if change else result


@pytest.fixture(scope="module")
def model(pushed_model_dir):
    import tensorflow as tf

    serve = tf.saved_model.load(str(pushed_model_dir)).signatures["serving_default"]

    def probabilities(examples: list[bytes]) -> list[float]:
        return serve(examples=tf.constant(examples))["probability"].numpy().reshape(-1).tolist()

    return probabilities


@pytest.fixture(scope="module")
def output_dir(pipeline_run, tmp_path_factory) -> Path:
    """The run's ML Metadata copied: the checks record there (artifacts stay where they are)."""
    folder = tmp_path_factory.mktemp("monitored")
    shutil.copy(pipeline_run.metadata_path, folder / "metadata.sqlite")
    return folder


def log_window(folder: Path, rows: list[dict], model, version: int) -> Path:
    columns = client.load_columns()
    lines = [",".join(HEADER) + "\n"]
    examples, _ = client.read_examples(
        lines + [",".join(r[h] for h in HEADER) + "\n" for r in rows], columns)
    with capture.CaptureWriter(folder) as writer:
        for start in range(0, len(examples), 256):
            batch = examples[start:start + 256]
            writer.log(batch, model(batch), version,
                       [r["trip_id"] for r in rows[start:start + 256]])
    return folder


def check(output_dir: Path, requests: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "monitoring.check", "--requests", str(requests),
         "--output-dir", str(output_dir), *extra],
        cwd=ROOT, capture_output=True, text=True, timeout=900)


def recorded(output_dir: Path) -> list:
    store = open_store(str(output_dir / "metadata.sqlite"))
    return sorted(store.get_executions_by_type(names.REQUEST_CHECK), key=lambda e: e.id)


def fares_in_cents(row: dict) -> dict:
    return {**row, "fare": f"{float(row['fare']) * 100:.0f}"}


def all_credit_card(row: dict) -> dict:
    return {**row, "payment_type": "Credit Card"}


def no_trip_seconds(row: dict) -> dict:
    return {**row, "trip_seconds": ""}


def test_a_clean_window_passes_is_recorded_and_becomes_the_next_span(
        output_dir, pushed_model_dir, model, tmp_path, monkeypatch):
    version = int(pushed_model_dir.name)
    rows = window(1)
    requests = log_window(tmp_path / "requests", rows, model, version)
    labels = tmp_path / "labels.csv"
    labelled = rows[: WINDOW * 2 // 3]  # the rest have not been labelled yet
    labels.write_text("trip_id,tips\n" + "".join(f"{r['trip_id']},{r['tips']}\n" for r in labelled))
    data_root = tmp_path / "data"
    hook = Webhook()
    monkeypatch.setenv("TEST_WEBHOOK_SECRET", "s3cr3t")
    try:
        result = check(output_dir, requests, "--as-span", str(data_root), "--labels", str(labels),
                       "--notify-webhook", hook.base + "/${TEST_WEBHOOK_SECRET}")
    finally:
        hook.close()
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith(f"Served requests check passed: {WINDOW:,} requests answered "
                                    f"by version {version}")
    assert "s3cr3t" not in result.stdout + result.stderr
    path, message = hook.received[0]
    assert path == "/s3cr3t" and fields(message)["Outcome"] == "passed"
    report = Path(fields(message)["Report"])
    assert report.is_file() and "Served probabilities" in report.read_text()
    executions = recorded(output_dir)
    assert [e.properties["outcome"].string_value for e in executions] == ["passed"]
    store = open_store(str(output_dir / "metadata.sqlite"))
    events = store.get_events_by_execution_ids([executions[0].id])
    inputs = [e.artifact_id for e in events if e.type == e.INPUT]
    served = store.get_artifacts_by_id(inputs)[0]
    assert served.custom_properties[names.PUSHED_VERSION].string_value == str(version)
    # The labelled requests, as the next span: every schema column, tips from the labels.
    span = data_root / "span-1" / "requests.csv"
    assert f"Span written: {span} ({len(labelled):,} labelled requests" in result.stdout
    written = list(csv.DictReader(span.open()))
    assert len(written) == len(labelled)
    assert {(r["fare"], r["tips"]) for r in written} == {
        (str(np.float32(r["fare"])), r["tips"]) for r in labelled}

    # The span feeds a retraining run through the gate, which notifies how it ended.
    hook = Webhook()
    try:
        retrain = run_pipeline(data_root, tmp_path / "retrained", "--train-steps", "200",
                               "--notify-webhook", hook.base + "/${TEST_WEBHOOK_SECRET}")
    finally:
        hook.close()
    assert retrain.returncode == 0, retrain.stderr[-3000:]
    assert "Data: read span 1 (" in retrain.stdout
    told = fields(hook.received[0][1])
    assert told["Outcome"] in ("pushed", "not blessed") and Path(told["Report"]).is_file()
    assert ("Pushed version" in told) == (told["Outcome"] == "pushed")
    assert "s3cr3t" not in retrain.stdout + retrain.stderr
    assert "Trainer                          ran" in retrain.stdout


@pytest.mark.parametrize("change, feature", [
    (fares_in_cents, "fare"),
    (all_credit_card, "payment_type"),
    (no_trip_seconds, "trip_seconds"),
])
def test_a_shifted_window_is_refused_naming_the_feature(
        change, feature, output_dir, pushed_model_dir, model, tmp_path):
    requests = log_window(tmp_path / "requests", window(2, change), model,
                          int(pushed_model_dir.name))
    pointer = output_dir / "monitoring" / "accepted_window.json"
    before = pointer.read_text() if pointer.exists() else None
    result = check(output_dir, requests)
    assert result.returncode == 1, result.stderr[-3000:]
    lines = result.stderr.splitlines()
    lines = lines[next(i for i, line in enumerate(lines)
                       if line.startswith("Served requests check failed: ")):]
    assert any(line.startswith(f"  - {feature} (requests split): ") for line in lines), lines
    assert lines[-1].startswith("Report: ")
    assert recorded(output_dir)[-1].properties["outcome"].string_value == "refused"
    # A refused window does not become the baseline of the next drift check.
    assert (pointer.read_text() if pointer.exists() else None) == before


def test_the_next_clean_window_is_compared_with_the_previous_one(
        output_dir, pushed_model_dir, model, tmp_path):
    pointer = output_dir / "monitoring" / "accepted_window.json"
    if not pointer.exists():  # run alone: a first clean window
        assert check(output_dir, log_window(tmp_path / "first", window(4), model,
                                            int(pushed_model_dir.name))).returncode == 0
    previous = json.loads(pointer.read_text())
    requests = log_window(tmp_path / "requests", window(3), model, int(pushed_model_dir.name))
    result = check(output_dir, requests)
    assert result.returncode == 0, result.stderr[-3000:]
    checked = json.loads(Path(result.stdout.splitlines()[-1].removeprefix("Report: "))
                         .with_name("result.json").read_text())
    assert checked["previous_window"] == previous["check"]


def test_bad_input_is_one_line(output_dir, tmp_path):
    (tmp_path / "empty").mkdir()
    for folder in (tmp_path / "empty", tmp_path / "missing"):
        result = check(output_dir, folder)
        assert result.returncode == 2 and result.stdout == ""
        assert len(result.stderr.strip().splitlines()) == 1
        assert result.stderr.startswith("error: ")
