"""Quiet progress: one line per component start and end, the noise in a log file."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

from local import progress
from metadata.graph import MetadataGraph
from metadata.store import open_store
from tests.conftest import DATA, ROOT, run_cli
from tests.three_runs import CACHED_IN_SECOND_RUN, ThreeRuns, three_runs

# "[ 3/12] Transform   ran   15.8 s" (and "running..." lines when not on a terminal).
FINISHED = re.compile(r"^\[\s*(\d+)/(\d+)\] (\S+)\s+(ran|cached|FAILED|skipped)\s+([\d.]+) s")
STARTED = re.compile(r"^\[\s*(\d+)/(\d+)\] (\S+)\s+running\.\.\.$")
NOISE = ("WARNING:", "tensorflow/core", "oneDNN", "FutureWarning", "Traceback")


def finished_lines(stdout: str) -> list[tuple[str, str, float]]:
    """(component, outcome, seconds) of every finish line, in printed order."""
    found = [FINISHED.match(line) for line in stdout.splitlines()]
    return [(m.group(3), m.group(4), float(m.group(5))) for m in found if m]


def log_path(stdout: str) -> Path:
    match = re.search(r"output goes to (\S+\.log)", stdout)
    assert match, f"no log path printed:\n{stdout}"
    return Path(match.group(1))


# -- the printer ----------------------------------------------------------------------------
def test_printer_writes_a_start_and_an_end_line_off_a_terminal():
    out = io.StringIO()
    printer = progress.ProgressPrinter(out, total=12, rewrite=False)
    printer.started("Transform")
    printer.finished("Transform", "cached", 0.04)
    printer.started("Trainer")
    printer.finished("Trainer", "FAILED", 9.87, "ValueError: no rows")
    lines = out.getvalue().splitlines()
    assert [bool(STARTED.match(line)) for line in lines] == [True, False, True, False]
    assert lines[1].startswith("[ 1/12] Transform") and lines[1].endswith("cached      0.0 s")
    assert lines[3].startswith("[ 2/12] Trainer")
    assert lines[3].endswith("FAILED      9.9 s  ValueError: no rows")


def test_printer_rewrites_the_running_line_on_a_terminal():
    out = io.StringIO()
    printer = progress.ProgressPrinter(out, total=3, rewrite=True)
    printer.started("Pusher")
    assert out.getvalue() == f"[1/3] {'Pusher':<30} running..."
    printer.finished("Pusher", "ran", 1.25)
    assert out.getvalue().endswith(f"\r\x1b[K[1/3] {'Pusher':<30} ran         1.2 s\n")
    assert out.getvalue().count("\n") == 1


# -- the hook on TFX's Launcher ------------------------------------------------------------------
def _store_with_execution(path: Path, state: int) -> int:
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = str(path)
    store = metadata_store.MetadataStore(config)
    type_id = store.put_execution_type(metadata_store_pb2.ExecutionType(name="Fake"))
    execution = metadata_store_pb2.Execution(type_id=type_id, last_known_state=state)
    return store.put_executions([execution])[0]


class _Info:
    def __init__(self, execution_id):
        self.execution_id = execution_id


class _Node:
    class node_info:  # noqa: N801 - mimics the proto's attribute
        id = "FakeComponent"


def test_hook_reports_what_ml_metadata_recorded(tmp_path, monkeypatch):
    from tfx.orchestration.portable import launcher

    metadata_path = tmp_path / "metadata.sqlite"
    cached_id = _store_with_execution(metadata_path, metadata_store_pb2.Execution.CACHED)
    outcomes = [_Info(cached_id), _Info(None), ValueError("bad input\nmore detail")]

    class FakeLauncher:
        def __init__(self, *, pipeline_node, mlmd_connection=None):
            self.pipeline_node = pipeline_node

        def launch(self):
            result = outcomes.pop(0)
            if isinstance(result, Exception):
                raise result
            return result

    monkeypatch.setattr(launcher, "Launcher", FakeLauncher)
    out = io.StringIO()
    with progress.track_components(out, str(metadata_path), 3):
        assert launcher.Launcher is not FakeLauncher
        launcher.Launcher(pipeline_node=_Node(), mlmd_connection=None).launch()
        launcher.Launcher(pipeline_node=_Node()).launch()
        with pytest.raises(ValueError, match="bad input"):
            launcher.Launcher(pipeline_node=_Node()).launch()
    assert launcher.Launcher is FakeLauncher, "the hook must be removed after the run"
    outcomes_printed = [m.group(4) for m in map(FINISHED.match, out.getvalue().splitlines()) if m]
    assert outcomes_printed == ["cached", "skipped", "FAILED"]
    assert out.getvalue().rstrip().endswith("ValueError: bad input")


def test_columns_fit_the_longest_node_id(tmp_path, monkeypatch):
    from tfx.orchestration.portable import launcher

    class QuietLauncher:
        def __init__(self, *, pipeline_node):
            pass

        def launch(self):
            return _Info(None)

    def node(name: str):
        return type("Node", (), {"node_info": type("Info", (), {"id": name})})()

    names = ["Pusher", "latest_validated_statistics_resolver_with_a_long_id"]
    monkeypatch.setattr(launcher, "Launcher", QuietLauncher)
    out = io.StringIO()
    with progress.track_components(out, str(tmp_path / "unused.sqlite"), names):
        for name in names:
            launcher.Launcher(pipeline_node=node(name)).launch()
    finished = [line for line in out.getvalue().splitlines() if "skipped" in line]
    assert len(finished) == 2
    assert len({line.index("skipped") for line in finished}) == 1, finished
    assert finished[1].startswith("[2/2] latest_validated_statistics_resolver_with_a_long_id ")


def test_local_dag_runner_still_builds_launchers_through_the_module():
    """The hook swaps `launcher.Launcher`; LocalDagRunner must look it up there."""
    import inspect

    from tfx.orchestration.local import local_dag_runner

    source = inspect.getsource(local_dag_runner.LocalDagRunner.run_with_ir)
    assert "launcher.Launcher(" in source
    assert local_dag_runner.launcher.__name__ == "tfx.orchestration.portable.launcher"


# -- the redirection ---------------------------------------------------------------------------
_REDIRECT_SCRIPT = textwrap.dedent(
    """
    import os, subprocess, sys
    from local.progress import quiet_output
    log = sys.argv[1] if sys.argv[1] != "-" else None
    with quiet_output(log) as console:
        os.write(1, b"fd1 from C\\n")
        os.write(2, b"fd2 from C\\n")
        print("python stdout")
        print("python stderr", file=sys.stderr)
        subprocess.run([sys.executable, "-c", "print('child process')"], check=True)
        print("progress line", file=console)
    print("after the block")
    """
)


def _run_redirect(tmp_path: Path, log: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", _REDIRECT_SCRIPT, log],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )


def test_quiet_output_sends_every_fd_write_to_the_log(tmp_path):
    log = tmp_path / "logs" / "run.log"
    result = _run_redirect(tmp_path, str(log))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "progress line\nafter the block\n"
    assert result.stderr == ""
    text = log.read_text()
    for line in ("fd1 from C", "fd2 from C", "python stdout", "python stderr", "child process"):
        assert line in text


def test_verbose_leaves_output_on_the_terminal(tmp_path):
    result = _run_redirect(tmp_path, "-")
    assert result.returncode == 0, result.stderr
    for line in ("fd1 from C", "python stdout", "child process", "progress line"):
        assert line in result.stdout
    assert "fd2 from C" in result.stderr and "python stderr" in result.stderr


def test_log_files_are_per_run_under_the_output_dir():
    import datetime

    path = progress.new_log_path("/out", datetime.datetime(2026, 1, 2, 3, 4, 5))
    assert path == "/out/logs/run-20260102-030405.log"


# -- real runs -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> ThreeRuns:
    return three_runs(tmp_path_factory)


@pytest.mark.e2e
@pytest.mark.parametrize("which", [0, 1, 2], ids=["first", "retrained", "repeated"])
def test_run_prints_a_start_and_end_line_per_component(runs: ThreeRuns, which: int):
    run = (runs.first, runs.second, runs.repeat)[which]
    store = open_store(str(run.metadata_path))
    recorded = MetadataGraph(store).component_runs(MetadataGraph(store).run_ids()[which])
    printed = finished_lines(run.stdout)
    assert [(c, o) for c, o, _ in printed] == [(r.component, r.state) for r in recorded]
    started = [m.group(3) for m in map(STARTED.match, run.stdout.splitlines()) if m]
    assert started == [r.component for r in recorded]
    counters = [m.group(1, 2) for m in map(FINISHED.match, run.stdout.splitlines()) if m]
    assert counters == [(str(i), str(len(recorded))) for i in range(1, len(recorded) + 1)]


@pytest.mark.e2e
def test_elapsed_time_is_the_components_own(runs: ThreeRuns):
    first = dict((c, s) for c, _, s in finished_lines(runs.first.stdout))
    second = dict((c, s) for c, _, s in finished_lines(runs.second.stdout))
    assert first["Transform"] > 1.0 and second["Transform"] < 1.0, (first, second)
    assert second["Trainer"] > 1.0, "the second run trains again"


@pytest.mark.e2e
def test_run_keeps_tensorflow_and_beam_output_in_the_log(runs: ThreeRuns):
    for stream in (runs.first.stdout, runs.first.stderr):
        for noise in NOISE:
            assert noise not in stream, f"{noise!r} reached the terminal"
    log = log_path(runs.first.stdout)
    assert log.parent == runs.output_dir / "logs"
    assert "tensorflow" in log.read_text().lower()
    assert log_path(runs.second.stdout) != log, "one log file per run"


@pytest.mark.e2e
def test_cached_components_say_cached(runs: ThreeRuns):
    outcomes = {c: o for c, o, _ in finished_lines(runs.second.stdout)}
    for component in CACHED_IN_SECOND_RUN:
        assert outcomes[component] == "cached", runs.second.stdout
    assert outcomes["Trainer"] == "ran", runs.second.stdout
    repeated = {c: o for c, o, _ in finished_lines(runs.repeat.stdout)}
    for component in (*CACHED_IN_SECOND_RUN, "Trainer", "Evaluator", "Pusher"):
        assert repeated[component] == "cached", runs.repeat.stdout


@pytest.mark.e2e
def test_a_failing_component_shows_its_reason(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(DATA / "data.csv", data / "data.csv")
    schema = tmp_path / "broken.pbtxt"  # passes the preflight checks, fails the first reader
    schema.write_text('feature { name: "fare" type: NOT_A_TYPE }\n')
    result = run_cli("--data-root", str(data), "--schema", str(schema),
                     "--output-dir", str(tmp_path / "out"))
    assert result.returncode == 1
    failed = [m for m in map(FINISHED.match, result.stdout.splitlines()) if m]
    # CsvExampleGen is the first component to read the schema (its column types win).
    assert failed[-1].group(3, 4) == ("CsvExampleGen", "FAILED"), result.stdout
    assert "NOT_A_TYPE" in result.stdout.splitlines()[-1]
    assert "NOT_A_TYPE" in result.stderr and "Traceback" not in result.stderr
    assert "Traceback" in log_path(result.stdout).read_text(), "the log keeps the details"
