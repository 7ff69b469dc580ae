"""ML Metadata on a real MariaDB server: the runner records there, caches, and the tools read it.

The `mariadb` fixture (tests/extras.py) starts a private server for the session.
Two runs of `local_runner.py --metadata-mysql` share one database, as runs on
different machines would.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from metadata import store
from metadata.graph import MetadataGraph
from metadata.outcome import read_outcome
from metadata.store import open_store
from tests.conftest import DATA, ROOT, PipelineRun, run_cli
from tests.extras import MariaDB, mariadb  # noqa: F401 - the fixture

# Components whose work a re-run with unchanged inputs takes from the cache.
CACHEABLE = {"CsvExampleGen", "StatisticsGen", "Transform", "Trainer", "Evaluator", "Pusher"}

# Every test here runs local_runner.py against a real MariaDB server.
pytestmark = pytest.mark.e2e


@dataclass
class MySQLRuns:
    spec: str
    env: dict[str, str]
    output_dir: Path
    first: subprocess.CompletedProcess
    second: subprocess.CompletedProcess

    @property
    def location(self):
        return store.mysql_connection_config(store.parse_mysql(self.spec), self.env)


@pytest.fixture(scope="module")
def mysql_runs(mariadb: MariaDB, tmp_path_factory) -> MySQLRuns:  # noqa: F811
    spec = mariadb.create_database("mlmd_runs")
    output_dir = tmp_path_factory.mktemp("mysql_run")
    args = ("--data-root", str(DATA), "--output-dir", str(output_dir), "--metadata-mysql", spec)
    first = run_cli(*args, env=mariadb.env, timeout=1800)
    assert first.returncode == 0, f"{first.stdout}\n{first.stderr[-5000:]}"
    second = run_cli(*args, env=mariadb.env, timeout=1800)
    assert second.returncode == 0, f"{second.stdout}\n{second.stderr[-5000:]}"
    return MySQLRuns(spec, mariadb.env, output_dir, first, second)


def test_runs_are_recorded_in_mysql_not_sqlite(mysql_runs: MySQLRuns):
    assert not (mysql_runs.output_dir / store.SQLITE_FILENAME).exists()
    mlmd = open_store(mysql_runs.location)
    assert len(MetadataGraph(mlmd).run_ids()) == 2
    first = read_outcome(mysql_runs.location, MetadataGraph(mlmd).run_ids()[0])
    assert first.pushed_path and Path(first.pushed_path).is_dir()
    assert {c.state for c in first.components} == {"ran"}


def test_same_components_as_a_sqlite_run(mysql_runs: MySQLRuns, pipeline_run: PipelineRun):
    mlmd = open_store(mysql_runs.location)
    on_mysql = MetadataGraph(mlmd).component_runs(MetadataGraph(mlmd).run_ids()[0])
    sqlite = open_store(str(pipeline_run.metadata_path))
    on_sqlite = MetadataGraph(sqlite).component_runs(MetadataGraph(sqlite).run_ids()[0])
    assert sorted(c.component for c in on_mysql) == sorted(c.component for c in on_sqlite)


def test_the_rerun_is_cached(mysql_runs: MySQLRuns):
    mlmd = open_store(mysql_runs.location)
    second = read_outcome(mysql_runs.location, MetadataGraph(mlmd).run_ids()[1])
    states = {c.component: c.state for c in second.components}
    assert {states[c] for c in CACHEABLE} == {"cached"}, states


def test_lineage_reads_the_mysql_store(mysql_runs: MySQLRuns):
    result = subprocess.run(
        [sys.executable, "-m", "review.lineage", "--output-dir", str(mysql_runs.output_dir),
         "--metadata-mysql", mysql_runs.spec],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, **mysql_runs.env},
    )
    assert result.returncode == 0, result.stderr
    # The newest run is the cached re-run: it pushed nothing new and serves the
    # version the first run pushed, as lineage must say.
    first_id, latest_id = MetadataGraph(open_store(mysql_runs.location)).run_ids()
    pushed = Path(read_outcome(mysql_runs.location, first_id).pushed_path).name
    latest = read_outcome(mysql_runs.location, latest_id)
    assert latest.push is not None and latest.push.version == pushed
    assert latest.push.pushed_by == first_id
    assert f"serving {pushed}, pushed by run {first_id}" in result.stdout
    for component in ("CsvExampleGen", "Trainer", "Evaluator", "Pusher"):
        assert component in result.stdout


def test_the_password_is_never_printed(mysql_runs: MySQLRuns):
    password = mysql_runs.env["MLMD_MYSQL_PASSWORD"]
    for run in (mysql_runs.first, mysql_runs.second):
        assert password not in run.stdout + run.stderr
    for log in (mysql_runs.output_dir / "logs").glob("*.log"):
        assert password not in log.read_text(errors="replace"), log


@pytest.mark.parametrize("problem", ["wrong password", "no server"])
def test_an_unusable_server_is_one_line_and_writes_nothing(
    problem: str, mariadb: MariaDB, tmp_path: Path  # noqa: F811
):
    spec = mariadb.create_database("mlmd_refused")
    env = mariadb.env
    if problem == "wrong password":
        env = {**env, "MLMD_MYSQL_PASSWORD": "not-the-password"}
    else:
        spec = f"127.0.0.1:{_closed_port()}/mlmd_refused"
    output_dir = tmp_path / "out"
    result = run_cli("--data-root", str(DATA), "--output-dir", str(output_dir),
                     "--metadata-mysql", spec, env=env, timeout=300)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot open ML Metadata at mysql://")
    assert env["MLMD_MYSQL_PASSWORD"] not in result.stderr + result.stdout
    assert not output_dir.exists()

    lineage = subprocess.run(
        [sys.executable, "-m", "review.lineage", "--output-dir", str(output_dir),
         "--metadata-mysql", spec],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, **env},
    )
    assert lineage.returncode == 2
    assert lineage.stderr.strip().splitlines() == lines


def test_a_malformed_spec_is_refused(tmp_path: Path):
    result = run_cli("--data-root", str(DATA), "--output-dir", str(tmp_path / "out"),
                     "--metadata-mysql", "localhost/mlmd", timeout=300)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: --metadata-mysql wants HOST:PORT/DATABASE, got 'localhost/mlmd'"
    )
    assert not (tmp_path / "out").exists()


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
