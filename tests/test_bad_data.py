"""Bad data never reaches a served model (issue: validation gate, clear errors, crash safety).

Each test builds its bad input itself and checks the exit status, the message,
and that the serving folder is byte-for-byte what it was.
"""

from __future__ import annotations

import csv
import hashlib
import html
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from metadata.graph import MetadataGraph
from metadata.outcome import read_outcome
from metadata.store import open_store
from tests.conftest import DATA, ROOT, PipelineRun, run_cli, run_pipeline

HEADER, *ROWS = list(csv.reader(open(DATA / "data.csv", newline="")))


def write_csv(path: Path, rows: list[list[str]], header: list[str] = HEADER) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([header, *rows])
    return path


def tree_digest(folder: Path) -> dict[str, str]:
    """Every file under `folder` (hidden ones too) -> sha256 of its bytes."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def latest_states(run: PipelineRun) -> dict[str, str]:
    """Component -> state in the latest run recorded in `run`'s ML Metadata."""
    store = open_store(str(run.metadata_path))
    latest = MetadataGraph(store).run_ids()[-1]
    return {r.component: r.state for r in MetadataGraph(store).component_runs(latest)}


def last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


@pytest.fixture
def served(pipeline_run: PipelineRun, tmp_path: Path) -> PipelineRun:
    """A copy of a finished run with a pushed model, for a test to run into."""
    output = tmp_path / "outputs"
    shutil.copytree(pipeline_run.output_dir, output)
    return PipelineRun(output, DATA, 0, "", "")


# ---------------------------------------------------------------- unusable input


def _file(name: str, content: bytes):
    def make(folder: Path) -> Path:
        (folder / name).write_bytes(content)
        return folder

    return make


def _ragged(folder: Path) -> Path:
    """Row 51 (line 53 of the file, after the header) lost its last three fields."""
    return write_csv(folder / "data.csv", ROWS[:51] + [ROWS[51][:-3]] + ROWS[52:60]).parent


@pytest.mark.parametrize(
    "make_input, message",
    [
        (lambda d: d / "nowhere", "data folder not found"),
        (lambda d: d, "no CSV files in"),
        (_file("data.csv", b""), "is empty"),
        (_file("data.csv", (",".join(HEADER) + "\n").encode()), "header but no rows"),
        (_ragged, "line 53: 15 fields, the header has 18"),
        (_file("data.csv", bytes(range(256)) * 8), "is not a CSV text file"),
    ],
    ids=["missing-folder", "empty-folder", "empty-csv", "header-only", "ragged-row", "binary"],
)
def test_unusable_input_gives_one_clear_line(tmp_path: Path, make_input, message):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    output = tmp_path / "out"
    result = run_cli("--data-root", str(make_input(data_dir)), "--output-dir", str(output))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0, result.stderr  # exactly one line
    assert message in result.stderr and result.stderr.startswith("error: ")
    assert not output.exists(), "nothing may be written for unusable input"


def test_unwritable_output_folder_gives_one_clear_line(tmp_path: Path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = run_cli("--output-dir", str(blocker / "out"))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "cannot write to output folder" in result.stderr


def test_missing_schema_gives_one_clear_line(tmp_path: Path):
    output = tmp_path / "out"
    result = run_cli("--schema", str(tmp_path / "nope.pbtxt"), "--output-dir", str(output))
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: schema file not found: {tmp_path / 'nope.pbtxt'}"
    assert not output.exists()


def test_beam_mode_follows_the_input_size():
    from pipeline.configs import IN_MEMORY_MAX_BYTES, default_beam_args

    assert "--direct_running_mode=in_memory" in default_beam_args(IN_MEMORY_MAX_BYTES)
    big = default_beam_args(IN_MEMORY_MAX_BYTES + 1, cores=2)
    assert big == ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]


# ------------------------------------------------------------------ the gate


@pytest.mark.e2e
def test_schema_breaking_data_stops_before_training(served: PipelineRun, tmp_path: Path):
    rows = [list(r) for r in ROWS[:3000]]
    miles, payment = HEADER.index("trip_miles"), HEADER.index("payment_type")
    for row in rows[:300]:
        row[miles] = "far"  # text in a numeric column
    for row in rows[300:900]:
        row[payment] = "Bitcoin"  # 20 % outside the payment_type domain
    fare = HEADER.index("fare")
    header = [c for i, c in enumerate(HEADER) if i != fare]  # a required column missing
    rows = [[c for i, c in enumerate(r) if i != fare] for r in rows]
    data = write_csv(tmp_path / "bad" / "data.csv", rows, header).parent
    before = tree_digest(served.serving_base)

    run = run_pipeline(data, served.output_dir)

    assert run.returncode == 1
    err = run.stderr
    assert "trip_miles" in err and "not floats" in err
    assert "payment_type" in err and "Bitcoin" in err
    assert "fare" in err and "--allow-anomaly" in err
    assert last_line(err).startswith("error: Data validation failed: 3 feature(s)")
    assert tree_digest(served.serving_base) == before
    states = latest_states(served)
    assert states["DataValidationGate"] == "FAILED"
    assert "Transform" not in states and "Trainer" not in states


def _drifted_rows() -> list[list[str]]:
    """Most cash trips turned into card trips: payment_type drifts."""
    rng = random.Random(7)
    payment = HEADER.index("payment_type")
    rows = [list(r) for r in ROWS]
    for row in rows:
        if row[payment] == "Cash" and rng.random() < 0.6:
            row[payment] = "Credit Card"
    return rows


@pytest.mark.e2e
def test_a_drifted_new_span_is_refused(served: PipelineRun, tmp_path: Path):
    data = tmp_path / "spans"
    shutil.copy(DATA / "data.csv", (data / "span-1").mkdir(parents=True) or data / "span-1")
    write_csv(data / "span-2" / "data.csv", _drifted_rows())
    before = tree_digest(served.serving_base)

    run = run_pipeline(data, served.output_dir)

    assert run.returncode == 1
    assert "payment_type (train split): The Linfty distance" in run.stderr
    assert "COMPARATOR_L_INFTY_HIGH" in run.stderr
    assert tree_digest(served.serving_base) == before
    # The report shows the findings the gate recorded, next to the data it last accepted.
    report = served.output_dir / "report" / "index.html"
    assert f"Report: {report}" in run.stderr
    said = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", report.read_text())).split())
    accepted_by = MetadataGraph(str(served.metadata_path)).run_ids()[0]
    assert f"accepted by run {accepted_by}" in said, said
    assert "Data checked: read span 2 (" in said and "compared with the last accepted" in said
    assert re.search(r"payment_type train: The Linfty distance .*\[COMPARATOR_L_INFTY_HIGH\]",
                     said), said


@pytest.mark.e2e
def test_a_new_span_with_an_allowed_anomaly_is_trained_and_pushed(
    served: PipelineRun, tmp_path: Path
):
    """A fresh drop (resampled, 2 % unknown payment type, knowingly allowed)."""
    rng = random.Random(11)
    payment = HEADER.index("payment_type")
    rows = [list(rng.choice(ROWS)) for _ in range(len(ROWS))]
    for row in rows[: len(rows) // 50]:
        row[payment] = "Venmo"
    data = tmp_path / "spans"
    shutil.copy(DATA / "data.csv", (data / "span-1").mkdir(parents=True) or data / "span-1")
    write_csv(data / "span-2" / "data.csv", rows)
    before = set(os.listdir(served.serving_base))

    refused = run_pipeline(data, served.output_dir)
    assert refused.returncode == 1 and "Venmo" in refused.stderr

    run = run_pipeline(data, served.output_dir, "--allow-anomaly", "payment_type")
    assert run.returncode == 0, run.stderr[-3000:]
    result = read_outcome(str(served.metadata_path))
    assert result.blessed, result
    new = set(os.listdir(served.serving_base)) - before
    assert len(new) == 1 and result.pushed_path.endswith(new.pop())


# ------------------------------------------------------------ worse models


@pytest.mark.e2e
def test_a_worse_model_is_never_pushed(served: PipelineRun):
    before = tree_digest(served.serving_base)
    run = run_pipeline(served.data_root, served.output_dir, "--train-steps", "3")
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Model: NOT blessed" in run.stdout
    assert "auc" in run.stdout and "needs at least" in run.stdout
    assert "Pushed: nothing (the model was not blessed by the Evaluator)" in run.stdout
    assert tree_digest(served.serving_base) == before


# ------------------------------------------------------------ crash safety


def _start(output: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "local_runner.py"), "--output-dir", str(output), *extra],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_for_line(process: subprocess.Popen, needle: str, timeout: float = 600) -> str:
    deadline = time.time() + timeout
    seen = []
    while time.time() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        seen.append(line)
        if needle in line:
            return "".join(seen)
    raise AssertionError(f"never saw {needle!r}:\n{''.join(seen)}")


@pytest.mark.e2e
@pytest.mark.parametrize("victim", ["Trainer"])
def test_a_run_killed_mid_component_is_completed_by_the_next(served: PipelineRun, victim: str):
    before = tree_digest(served.serving_base)
    process = _start(served.output_dir, "--train-steps", "2500")
    _wait_for_line(process, f"{victim} ")
    time.sleep(1.0)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert tree_digest(served.serving_base) == before  # no partial version

    run = run_pipeline(served.data_root, served.output_dir, "--train-steps", "2500")
    assert run.returncode == 0, run.stderr[-3000:]
    states = latest_states(served)
    assert states["Transform"] == "cached"
    assert states[victim] == "ran"
    for version in served.serving_base.iterdir():
        assert (version / "saved_model.pb").is_file(), f"partial version {version}"


@pytest.mark.e2e
def test_a_second_concurrent_run_refuses_at_once(served: PipelineRun):
    first = _start(served.output_dir, "--no-cache")
    try:
        _wait_for_line(first, "CsvExampleGen")
        started = time.time()
        second = run_cli("--output-dir", str(served.output_dir), timeout=60)
        assert time.time() - started < 30
        assert second.returncode == 2
        assert f"another run (pid {first.pid}) is using" in second.stderr
    finally:
        first.kill()
        first.wait()
    # The killed run's lock died with it: the next run is not blocked.
    third = run_cli("--output-dir", str(served.output_dir))
    assert "another run" not in third.stderr and third.returncode == 0, third.stderr[-2000:]
