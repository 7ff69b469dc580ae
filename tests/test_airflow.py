"""airflow_runner.py on a real Airflow 2.10 (the `make airflow` venv): load, run, cache, refuse.

Airflow runs in its own venv (.venv-airflow), so everything Airflow does here
goes through its command line or a short script in that venv, with AIRFLOW_HOME
and Airflow's SQLite database in a temporary folder. The pipeline's ML Metadata
(SQLite under the output folder) is then read from this process.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

from metadata import names
from metadata.store import open_store
from pipeline.configs import PipelineConfig
from tests.conftest import DATA, ROOT, write_bitcoin_data
from tests.extras import airflow_python
from tests.review_checks import check_review_tools

# Every test here loads or runs the pipeline as an Airflow DAG.
pytestmark = pytest.mark.e2e

DAG_ID = PipelineConfig().pipeline_name
GATE = "DataValidationGate"
# Components whose work a re-run with unchanged inputs takes from the cache.
CACHEABLE = {"CsvExampleGen", "StatisticsGen", "Transform", "Trainer", "Evaluator", "Pusher"}

DAGBAG_SCRIPT = """
import json, sys
from airflow.models import DagBag
bag = DagBag(dag_folder=sys.argv[1], include_examples=False)
dag = bag.get_dag(sys.argv[2])
print(json.dumps({
    "import_errors": {k: v.splitlines()[-1] for k, v in bag.import_errors.items()},
    "tasks": {t.task_id: sorted(t.upstream_task_ids) for t in dag.tasks} if dag else None,
}))
"""

# Parse the DAG file as the scheduler does, recording what the parse touches
# (Python's audit events): file opens, new folders, deletions, sockets, SQLite.
# Airflow and the libraries it loads touch files of their own (its log folder,
# temporary files); what the test watches is the pipeline's data and output
# folders, any socket and any database but Airflow's.
PARSE_SCRIPT = """
import json, os, sys
touched = []
WATCHED = {"open", "os.mkdir", "os.remove", "os.rename", "os.rmdir", "socket.connect",
           "sqlite3.connect"}

def text(value):
    if isinstance(value, (str, int)) or value is None:
        return value
    try:
        return os.fsdecode(value)  # a Path or bytes
    except TypeError:
        return repr(value)

def record(event, args):
    if event in WATCHED:
        touched.append([event, *(text(a) for a in args[:3])])

sys.addaudithook(record)
from airflow.models import DagBag
bag = DagBag(dag_folder=sys.argv[1], include_examples=False)
sys.stdout.write(json.dumps({"import_errors": list(bag.import_errors.values()),
                             "loaded": sys.argv[2] in bag.dags, "touched": touched}))
"""


@dataclass
class Airflow:
    """An Airflow installation in a temporary AIRFLOW_HOME, with our DAG file linked in."""

    python: Path
    home: Path
    dags: Path
    output_dir: Path
    env: dict[str, str]

    def run(self, *args: str, timeout: float = 1800, **settings: str):
        """`airflow ARGS` with extra TAXI_* settings in the environment."""
        return subprocess.run(
            [str(self.python), "-m", "airflow", *args], cwd=self.home, capture_output=True,
            text=True, timeout=timeout, env={**self.env, **settings},
        )

    def dags_test(self, logical_date: str, **settings: str) -> DagRun:
        """Run the DAG once in-process (`airflow dags test`), then read back its task states."""
        result = self.run("dags", "test", DAG_ID, logical_date, **settings)
        with sqlite3.connect(self.home / "airflow.db") as db:
            (run_id,) = db.execute(
                "SELECT run_id FROM dag_run WHERE dag_id = ? AND execution_date LIKE ?",
                (DAG_ID, f"{logical_date}%"),
            ).fetchone()
            states = dict(db.execute(
                "SELECT task_id, state FROM task_instance WHERE dag_id = ? AND run_id = ?",
                (DAG_ID, run_id),
            ).fetchall())
        assert states, f"no task states:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        return DagRun(run_id, states, result.stdout + result.stderr, result.returncode)


@dataclass
class DagRun:
    """One `airflow dags test` run: Airflow's run id, task id -> state, its output."""

    run_id: str
    states: dict[str, str]
    output: str
    returncode: int


@pytest.fixture(scope="module")
def airflow(tmp_path_factory) -> Airflow:
    python = airflow_python()
    home = tmp_path_factory.mktemp("airflow_home")
    dags = home / "dags"
    dags.mkdir()
    (dags / "airflow_runner.py").symlink_to(ROOT / "airflow_runner.py")
    output_dir = tmp_path_factory.mktemp("airflow_outputs")
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "600",
        "TAXI_DATA_ROOT": str(DATA),
        "TAXI_OUTPUT_DIR": str(output_dir),
    }
    env.pop("PYTHONPATH", None)  # the Airflow venv has this project installed itself
    airflow = Airflow(python, home, dags, output_dir, env)
    migrated = airflow.run("db", "migrate", timeout=600)
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    return airflow


def _pipeline():
    from pipeline.pipeline import create_pipeline

    # Building the DAG writes nothing (tests/test_schema_import.py checks it), so
    # the folder is never created.
    return create_pipeline(PipelineConfig(output_dir="/nonexistent/never-written"))


def expected_tasks() -> dict[str, list[str]]:
    """Task id -> upstream task ids, as the pipeline object defines its nodes and edges."""
    return {c.id: sorted(u.id for u in c.upstream_nodes) for c in _pipeline().components}


def test_the_dag_loads_with_the_pipelines_tasks_and_edges(airflow: Airflow):
    result = subprocess.run(
        [str(airflow.python), "-c", DAGBAG_SCRIPT, str(airflow.dags), DAG_ID],
        capture_output=True, text=True, timeout=600, env=airflow.env, cwd=airflow.home,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded["import_errors"] == {}
    assert loaded["tasks"] == expected_tasks()


def test_parsing_the_dag_file_opens_no_data_output_socket_or_database(
    airflow: Airflow, tmp_path: Path
):
    """The scheduler parses the file every 30 s: only the DAG is built, no check runs.

    The settings name real data and an unreachable MySQL store; a check at parse
    time would read the CSV, write a probe file in the output folder or connect.
    """
    output = tmp_path / "never-created"
    with socket.socket() as closed:  # bound, never listening: nothing answers on it
        closed.bind(("127.0.0.1", 0))
        mysql = f"127.0.0.1:{closed.getsockname()[1]}/mlmd"
        result = subprocess.run(
            [str(airflow.python), "-c", PARSE_SCRIPT, str(airflow.dags), DAG_ID],
            capture_output=True, text=True, timeout=600, cwd=airflow.home,
            env={**airflow.env, "PYTHONDONTWRITEBYTECODE": "1", "TAXI_OUTPUT_DIR": str(output),
                 "TAXI_METADATA_MYSQL": mysql},
        )
    assert result.returncode == 0, result.stderr[-3000:]
    parsed = json.loads(result.stdout.strip().splitlines()[-1])
    assert parsed["import_errors"] == [] and parsed["loaded"]
    watched = (str(DATA), str(DATA.resolve()), str(output))
    touched = [event for event in parsed["touched"] if str(event[1]).startswith(watched)
               or event[0] == "socket.connect"
               # Airflow Variables are read from Airflow's own database, the one it may open.
               or (event[0] == "sqlite3.connect" and event[1] != str(airflow.home / "airflow.db"))]
    assert touched == []
    assert not output.exists()


def test_a_malformed_setting_is_the_dags_import_error_naming_the_variable(airflow: Airflow):
    result = subprocess.run(
        [str(airflow.python), "-c", PARSE_SCRIPT, str(airflow.dags), DAG_ID],
        capture_output=True, text=True, timeout=600, cwd=airflow.home,
        env={**airflow.env, "TAXI_TRAIN_STEPS": "many"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    parsed = json.loads(result.stdout.strip().splitlines()[-1])
    assert not parsed["loaded"]
    (error,) = parsed["import_errors"]
    assert error.strip().splitlines()[-1] == (
        "ValueError: TAXI_TRAIN_STEPS: invalid int value: 'many'")


def test_the_first_tasks_check_the_input_and_fail_in_one_line(airflow: Airflow, tmp_path: Path):
    """Unusable data fails the DAG's first tasks with the local runner's message; the DAG
    itself still loads, and nothing downstream runs."""
    missing = tmp_path / "no-such-folder"
    run = airflow.dags_test("2024-02-01", TAXI_DATA_ROOT=str(missing))
    roots = {task for task, upstream in expected_tasks().items() if not upstream}
    assert {run.states[t] for t in roots} == {"failed"}, run.states
    assert {run.states[t] for t in set(run.states) - roots} == {"upstream_failed"}, run.states
    assert f"AirflowFailException: data folder not found: {missing}\n" in run.output, (
        run.output[-3000:])


@pytest.fixture(scope="module")
def two_runs(airflow: Airflow) -> tuple[DagRun, DagRun]:
    first = airflow.dags_test("2024-01-01")
    second = airflow.dags_test("2024-01-02")
    return first, second


def executions_by_run(output_dir: Path) -> dict[str, dict[str, str]]:
    """Airflow run id -> component -> state, as TFX's Airflow launcher records them in MLMD."""
    store = open_store(str(output_dir / "metadata.sqlite"))
    runs: dict[str, dict[str, str]] = defaultdict(dict)
    for execution in store.get_executions():
        properties = execution.properties
        if "run_id" in properties and "component_id" in properties:
            runs[properties["run_id"].string_value][properties["component_id"].string_value] = (
                names.STATE_NAMES[execution.last_known_state]
            )
    return runs


def test_every_task_succeeds_and_a_model_is_pushed(airflow: Airflow, two_runs):
    first, _ = two_runs
    assert set(first.states) == set(expected_tasks())
    assert set(first.states.values()) == {"success"}, first.states
    assert first.returncode == 0
    recorded = executions_by_run(airflow.output_dir)[first.run_id]
    assert set(recorded) == set(expected_tasks())
    assert set(recorded.values()) == {"ran"}, recorded
    pushed = [p for p in (airflow.output_dir / "serving_model" / DAG_ID).iterdir()
              if p.name.isdigit()]
    assert len(pushed) == 1 and (pushed[0] / "saved_model.pb").exists()


def test_the_second_run_is_cached(airflow: Airflow, two_runs):
    _, second = two_runs
    assert set(second.states.values()) == {"success"}, second.states
    recorded = executions_by_run(airflow.output_dir)[second.run_id]
    assert {recorded[c] for c in CACHEABLE} == {"cached"}, recorded


def test_review_tools_read_the_airflow_run(airflow: Airflow, two_runs):
    first, _ = two_runs
    (served,) = [p for p in (airflow.output_dir / "serving_model" / DAG_ID).iterdir()
                 if p.name.isdigit()]
    check_review_tools(airflow.output_dir, first.run_id, DATA, served)


def test_bad_data_fails_the_gate_and_nothing_downstream_runs(
    airflow: Airflow, two_runs, tmp_path: Path
):
    bad = write_bitcoin_data(tmp_path / "bad" / "data.csv").parent
    serving = airflow.output_dir / "serving_model" / DAG_ID
    before = sorted(p.name for p in serving.iterdir())

    run = airflow.dags_test("2024-01-03", TAXI_DATA_ROOT=str(bad))
    states = run.states

    assert states[GATE] == "failed"
    downstream = descendants(GATE)
    assert downstream and {states[t] for t in downstream} == {"upstream_failed"}, states
    assert sorted(p.name for p in serving.iterdir()) == before
    # `airflow dags test` streams every task's log to its own output; the
    # message is the gate's (pipeline/components/gate.py), naming the feature and value.
    failure = [line for line in run.output.splitlines() if "Data validation failed" in line]
    assert failure, run.output[-3000:]
    assert "payment_type" in run.output and "Bitcoin" in run.output


def descendants(task: str) -> set[str]:
    """Every task downstream of `task` in the pipeline's graph."""
    upstream = expected_tasks()
    found: set[str] = set()
    frontier = {task}
    while frontier:
        frontier = {t for t, ups in upstream.items() if frontier & set(ups)} - found
        found |= frontier
    return found
