"""luigi_runner.py on real Luigi: a task per TFX node, cache, crash-resume, refusal, luigid, MySQL.

One output folder (SQLite) holds a sequence of runs, each checked below:
a local run; a Luigi run after it (everything from the cache); a Luigi run
with more training steps killed with SIGKILL while the Trainer runs; the next
Luigi run, which reuses what had finished and pushes; a Luigi run on bad data,
which the gate stops. A second folder holds a run with two workers against
MariaDB, scheduled by a real `luigid` on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from metadata import names, store
from metadata.graph import MetadataGraph
from tests.conftest import DATA, ROOT, run_cli, write_bitcoin_data
from tests.extras import MariaDB, mariadb  # noqa: F401 - the fixture
from tests.review_checks import check_review_tools

pytestmark = pytest.mark.e2e

STEPS = ("--train-steps", "300", "--eval-steps", "10")
MORE_STEPS = ("--train-steps", "400", "--eval-steps", "10")
CACHEABLE = {"CsvExampleGen", "StatisticsGen", "Transform", "Trainer", "Evaluator", "Pusher"}
UPSTREAM_OF_TRAINER = {"CsvExampleGen", "StatisticsGen", "Transform"}
AFTER_GATE = {"FeatureSelection", "Transform", "Trainer", "Evaluator", "Pusher"}


def luigi_cli(*args: str, env: dict | None = None, timeout: float = 1800):
    return subprocess.run([sys.executable, str(ROOT / "luigi_runner.py"), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout,
                          env={"SERVING_SETTLE_SECONDS": "0", **os.environ, **(env or {})})


def run_id_of(stdout: str) -> str:
    line = next(line for line in stdout.splitlines() if line.startswith("Luigi run "))
    return line.split()[2].rstrip(":")


def states(where, run_id: str) -> dict[str, str]:
    return {c.component: c.state for c in MetadataGraph(where).component_runs(run_id)}


def tree_digest(folder: Path) -> dict[str, str]:
    """Every file under `folder` with the SHA-256 of its bytes."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def run_and_kill_in_trainer(*args: str) -> tuple[int, str]:
    """Start a Luigi run, SIGKILL its whole process group once the Trainer is executing."""
    output_dir = Path(args[args.index("--output-dir") + 1])
    trainer_dir = output_dir / "pipeline_root" / "Trainer" / "model"
    before = set(trainer_dir.iterdir()) if trainer_dir.exists() else set()
    process = subprocess.Popen([sys.executable, str(ROOT / "luigi_runner.py"), *args], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True,
                               env={"SERVING_SETTLE_SECONDS": "0", **os.environ})
    deadline = time.time() + 1500
    while time.time() < deadline and process.poll() is None:
        if trainer_dir.exists() and set(trainer_dir.iterdir()) - before:  # the executor started
            time.sleep(2)
            os.killpg(process.pid, signal.SIGKILL)
            break
        time.sleep(0.5)
    output, _ = process.communicate(timeout=120)
    return process.returncode, output


@dataclass
class LuigiRuns:
    output_dir: Path
    local_run: str
    cached: subprocess.CompletedProcess
    killed: tuple[int, str]
    resumed: subprocess.CompletedProcess
    partial: subprocess.CompletedProcess
    bad: subprocess.CompletedProcess
    serving_before_bad: dict[str, str]

    @property
    def where(self) -> str:
        return str(self.output_dir / store.SQLITE_FILENAME)

    @property
    def serving(self) -> Path:
        return self.output_dir / "serving_model" / "chicago_taxi"


@pytest.fixture(scope="module")
def luigi_runs(tmp_path_factory) -> LuigiRuns:
    out = tmp_path_factory.mktemp("luigi_outputs")
    where = ("--data-root", str(DATA), "--output-dir", str(out))
    local = run_cli(*where, *STEPS)
    assert local.returncode == 0, local.stderr[-3000:]
    (local_run,) = MetadataGraph(str(out / store.SQLITE_FILENAME)).run_ids()
    cached = luigi_cli(*where, *STEPS)
    killed = run_and_kill_in_trainer(*where, *MORE_STEPS)
    resumed = luigi_cli(*where, *MORE_STEPS)
    # A local partial run on top: Trainer and Evaluator only, the rest reused.
    partial = run_cli(*where, "--train-steps", "450", "--eval-steps", "10",
                      "--from", "Trainer", "--to", "Evaluator")
    serving = out / "serving_model" / "chicago_taxi"
    before = tree_digest(serving)
    bad_data = write_bitcoin_data(out.parent / "bad_data" / "data.csv").parent
    bad = luigi_cli("--data-root", str(bad_data), "--output-dir",
                    str(out), *STEPS)
    return LuigiRuns(out, local_run, cached, killed, resumed, partial, bad, before)


def test_a_luigi_run_after_a_local_run_takes_everything_from_the_cache(luigi_runs):
    run = luigi_runs.cached
    assert run.returncode == 0, run.stderr[-3000:]
    recorded = states(luigi_runs.where, run_id_of(run.stdout))
    assert len(recorded) == 10
    assert set(recorded.values()) <= {"ran", "cached"}, recorded
    assert {recorded[c] for c in CACHEABLE} == {"cached"}, recorded
    assert "Pushed:" in run.stdout and "Run summary" in run.stdout
    # One progress line per node as it finishes, with the outcome ML Metadata recorded.
    finished = [line for line in run.stdout.splitlines() if line.startswith("[")
                and "running..." not in line]
    assert len(finished) == 10 and all(" cached " in f or " ran " in f for f in finished)


def test_a_killed_run_is_completed_by_the_next_reusing_finished_nodes(luigi_runs):
    returncode, output = luigi_runs.killed
    assert returncode == -signal.SIGKILL, output[-3000:]
    killed_run = run_id_of(output)
    assert states(luigi_runs.where, killed_run).get("Trainer") == "running"

    run = luigi_runs.resumed
    assert run.returncode == 0, run.stderr[-3000:]
    recorded = states(luigi_runs.where, run_id_of(run.stdout))
    assert {recorded[c] for c in UPSTREAM_OF_TRAINER} == {"cached"}, recorded
    assert recorded["Trainer"] == "ran" and recorded["Evaluator"] == "ran", recorded
    assert recorded["Pusher"] == "ran" and "Pushed: " in run.stdout, run.stdout


def test_a_partial_run_reruns_its_slice_and_reuses_the_rest(luigi_runs):
    run = luigi_runs.partial
    assert run.returncode == 0, run.stderr[-3000:]
    latest = MetadataGraph(luigi_runs.where).run_ids()[-2]  # the bad-data run came after it
    recorded = states(luigi_runs.where, latest)
    assert recorded["Trainer"] == "ran" and recorded["Evaluator"] == "ran", recorded
    assert "Pusher" not in recorded
    reused = [line.split()[0] for line in run.stdout.splitlines()
              if line.startswith("  ") and " reused " in line]
    assert set(reused) == set(recorded) - {"Trainer", "Evaluator"}, run.stdout
    assert "Partial run: reused the outputs the previous run recorded for" in run.stdout
    progress = [line for line in run.stdout.splitlines() if line.startswith("[")]
    assert progress and all("/2]" in line for line in progress), progress


def test_review_tools_read_the_luigi_run(luigi_runs):
    run_id = run_id_of(luigi_runs.resumed.stdout)
    served = max((p for p in luigi_runs.serving.iterdir() if p.name.isdigit()),
                 key=lambda p: int(p.name))
    check_review_tools(luigi_runs.output_dir, run_id, DATA, served)


def test_bad_data_fails_the_gate_and_nothing_after_it_runs(luigi_runs):
    run = luigi_runs.bad
    assert run.returncode == 1, run.stdout[-3000:]
    recorded = states(luigi_runs.where, run_id_of(run.stdout))
    assert recorded[names.GATE] == "FAILED", recorded
    assert not AFTER_GATE & set(recorded), recorded
    assert tree_digest(luigi_runs.serving) == luigi_runs.serving_before_bad
    lines = run.stderr.strip().splitlines()
    assert any("payment_type" in line and "Bitcoin" in line for line in lines), run.stderr
    assert lines[-1].startswith("error: DataValidationGate FAILED") and "Data validation failed" \
        in lines[-1], lines[-1]
    assert "Report: " in run.stderr  # the refused data next to the data last accepted


def test_more_than_one_worker_on_sqlite_is_refused_in_one_line(tmp_path):
    run = luigi_cli("--data-root", str(DATA), "--output-dir", str(tmp_path), "--workers", "2")
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        "error: --workers 2 needs --metadata-mysql: ML Metadata in SQLite takes one writer at "
        "a time, so Luigi may run one worker on it"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def luigid(tmp_path_factory):
    """A real central Luigi scheduler on a loopback port."""
    home = tmp_path_factory.mktemp("luigid")
    port = _free_port()
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "luigid"), "--address", "127.0.0.1", "--port",
         str(port), "--state-path", str(home / "state.pickle"), "--logdir", str(home)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url + "api/task_list", timeout=2)
            break
        except OSError:
            time.sleep(0.3)
    yield url
    process.terminate()
    process.wait(timeout=30)


def test_two_workers_on_mariadb_scheduled_by_luigid(mariadb: MariaDB, luigid, tmp_path):  # noqa: F811
    spec = mariadb.create_database("mlmd_luigi")
    out = tmp_path / "out"
    run = luigi_cli("--data-root", str(DATA), "--output-dir", str(out), "--metadata-mysql", spec,
                    "--workers", "2", "--scheduler-url", luigid, *STEPS, env=mariadb.env)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "2 worker(s)" in run.stdout and luigid in run.stdout
    run_id = run_id_of(run.stdout)
    where = store.mysql_connection_config(store.parse_mysql(spec), mariadb.env)
    assert set(states(where, run_id).values()) == {"ran"}
    assert not (out / store.SQLITE_FILENAME).exists()
    # The central scheduler ran every task of this run.
    query = urllib.parse.quote(json.dumps({"status": "DONE"}))
    with urllib.request.urlopen(f"{luigid}api/task_list?data={query}", timeout=10) as response:
        done = json.load(response)["response"]
    assert len([t for t in done.values() if t["params"]["run_id"] == run_id]) == 10
    (served,) = [p for p in (out / "serving_model" / "chicago_taxi").iterdir()
                 if p.name.isdigit()]
    check_review_tools(out, run_id, DATA, served, mysql=spec, env=mariadb.env)
