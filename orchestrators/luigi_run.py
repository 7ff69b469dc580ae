"""The pipeline on Luigi: one Luigi task per TFX node, each running the node runner.

TFX has no Luigi orchestrator; its portable launcher is enough to build one
(`orchestrators/node_runner.py`). Here:

* `NodeTask(node, run_id, run_dir)` stands for one node of one pipeline run.
  `requires()` comes from the compiled pipeline's edges (`plan.json`);
  `complete()` is read from ML Metadata, since a Luigi task without outputs
  never counts as complete otherwise; `run()` starts the node runner in a
  subprocess, so no Luigi worker forks a process that has loaded TensorFlow
  or Beam (this process never loads them: the pipeline is compiled in a
  subprocess too).
* Every task of one run shares one run id: a node finds its inputs through it.
* The outcome is read from `luigi.build(..., detailed_summary=True).status`:
  `luigi.build` returns True even when tasks failed.
* SQLite takes one writer at a time, so more than one worker needs ML
  Metadata in MySQL (`--metadata-mysql`).

Everything else is the local run's: the same options, preflight, lock,
progress lines, summary and report (`local/`).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import subprocess
import sys
import time

import luigi
from luigi.execution_summary import LuigiStatusCode

from local import progress
from local.lock import RunLockedError, run_lock
from local.run import report_after_refusal
from local.summary import format_summary
from metadata import names, store
from metadata.errors import first_line
from orchestrators import ir as ir_file
from orchestrators.node_runner import recorded_outcome
from pipeline import preflight, run_config
from pipeline.configs import config_to_json

RUNS_DIR = "luigi"
SETTINGS_FILE = "settings.json"
FAILURES_DIR = "failures"
_SUCCESS = (LuigiStatusCode.SUCCESS, LuigiStatusCode.SUCCESS_WITH_RETRY)
# The progress printer of this run; forked workers inherit it.
_printer: progress.ProgressPrinter | None = None
_order: list[str] = []


def _settings(run_dir: str) -> dict:
    with open(os.path.join(run_dir, SETTINGS_FILE)) as f:
        return json.load(f)


class NodeTask(luigi.Task):
    """One TFX node of one pipeline run."""

    node = luigi.Parameter()
    run_id = luigi.Parameter()
    run_dir = luigi.Parameter()

    def requires(self) -> list[NodeTask]:
        plan = ir_file.load_plan(os.path.join(self.run_dir, ir_file.PLAN_FILE))
        return [NodeTask(node=up, run_id=self.run_id, run_dir=self.run_dir)
                for up in plan.nodes[self.node]]

    def _where(self) -> store.Location:
        settings = _settings(self.run_dir)
        return store.location(settings["output_dir"], settings.get("metadata_mysql"))

    def complete(self) -> bool:
        return recorded_outcome(self._where(), self.run_id, self.node).ok

    def run(self) -> None:
        settings = _settings(self.run_dir)
        command = [sys.executable, "-m", "orchestrators.node_runner",
                   "--ir", os.path.join(self.run_dir, ir_file.IR_FILE),
                   "--node", self.node, "--run-id", self.run_id]
        if settings.get("metadata_mysql"):
            command += ["--metadata-mysql", settings["metadata_mysql"]]
        if settings.get("log_path"):
            command += ["--log", settings["log_path"]]
        result = subprocess.run(command, capture_output=True, text=True, env=_child_env())
        if result.returncode != 0:
            text = (result.stderr.strip() or result.stdout.strip()
                    or f"the node runner exited with status {result.returncode}")
            failures = os.path.join(self.run_dir, FAILURES_DIR)
            os.makedirs(failures, exist_ok=True)
            with open(os.path.join(failures, f"{self.node}.txt"), "w") as f:
                f.write(text)
            raise RuntimeError(text.splitlines()[-1].removeprefix("error: "))


def _child_env() -> dict[str, str]:
    """The node runner imports this project from wherever this process does."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": root + (os.pathsep + path if path else "")}


@NodeTask.event_handler(luigi.Event.START)
def _started(task: NodeTask) -> None:
    task.started_at = time.monotonic()
    if _printer is not None:
        _printer.index = _order.index(task.node)  # workers are separate processes
        _printer.started(task.node)


@NodeTask.event_handler(luigi.Event.SUCCESS)
def _succeeded(task: NodeTask) -> None:
    if _printer is not None:
        _printer.index = _order.index(task.node) + 1
        outcome = recorded_outcome(task._where(), task.run_id, task.node)
        _printer.finished(task.node, outcome.state, time.monotonic() - task.started_at)


@NodeTask.event_handler(luigi.Event.FAILURE)
def _failed(task: NodeTask, error: BaseException) -> None:
    if _printer is not None:
        _printer.index = _order.index(task.node) + 1
        seconds = time.monotonic() - getattr(task, "started_at", time.monotonic())
        _printer.finished(task.node, "FAILED", seconds, str(error))


def new_run_id() -> str:
    return "luigi-" + datetime.datetime.now().isoformat(timespec="microseconds")


def compile_run(config, run_dir: str, log_path: str | None) -> ir_file.Plan:
    """Compile the pipeline into `run_dir` in a subprocess (this process stays TensorFlow-free)."""
    os.makedirs(run_dir, exist_ok=True)
    config_path = os.path.join(run_dir, "config.json")
    with open(config_path, "w") as f:
        f.write(config_to_json(config))
    if log_path:
        os.makedirs(os.path.dirname(log_path), exist_ok=True)
    with open(log_path, "ab") if log_path else contextlib.nullcontext() as log:
        result = subprocess.run(
            [sys.executable, "-m", "orchestrators.ir", config_path, run_dir],
            stdout=log, stderr=subprocess.STDOUT if log else subprocess.PIPE, env=_child_env(),
        )
    if result.returncode != 0:
        raise RuntimeError(f"compiling the pipeline failed (exit {result.returncode}); "
                           "the log says why")
    return ir_file.load_plan(os.path.join(run_dir, ir_file.PLAN_FILE))


def _failures(run_dir: str) -> list[str]:
    folder = os.path.join(run_dir, FAILURES_DIR)
    if not os.path.isdir(folder):
        return []
    return [open(os.path.join(folder, name)).read().strip() for name in sorted(os.listdir(folder))]


def build(plan: ir_file.Plan, run_id: str, run_dir: str, args: argparse.Namespace):
    """Run every node with Luigi; the detailed result (`.status`, `.summary_text`)."""
    tasks = [NodeTask(node=n, run_id=run_id, run_dir=run_dir) for n in plan.sinks]
    scheduler = ({"scheduler_url": args.scheduler_url} if args.scheduler_url
                 else {"local_scheduler": True})
    return luigi.build(tasks, workers=args.workers, detailed_summary=True, **scheduler)


def run_with_luigi(args: argparse.Namespace, started: float) -> int:
    """The pipeline for `args` on Luigi; 0 when it completed, 1 when a task failed, 2 bad input."""
    global _printer, _order
    log_path = None
    try:
        config = run_config.checked_config(args)
        if args.workers > 1 and not config.metadata_mysql:
            raise preflight.InputError(
                f"--workers {args.workers} needs --metadata-mysql: ML Metadata in SQLite "
                "takes one writer at a time, so Luigi may run one worker on it")
        if args.workers < 1:
            raise preflight.InputError("--workers must be at least 1")
        with run_lock(config.output_dir):
            run_id = new_run_id()
            run_dir = os.path.join(config.output_dir, RUNS_DIR, run_id)
            if not args.verbose:
                log_path = progress.new_log_path(config.output_dir)
                print(f"TensorFlow, Beam, absl and Luigi output goes to {log_path}")
            plan = compile_run(config, run_dir, log_path)
            with open(os.path.join(run_dir, SETTINGS_FILE), "w") as f:
                json.dump({"output_dir": config.output_dir, "metadata_mysql": config.metadata_mysql,
                           "log_path": log_path}, f)
            print(f"Luigi run {run_id}: {len(plan.nodes)} tasks, {args.workers} worker(s), "
                  f"{args.scheduler_url or 'local scheduler'}")
            with progress.quiet_output(log_path) as console:
                width = max([30, *(len(n) + 1 for n in plan.order)])
                _printer, _order = progress.ProgressPrinter(console, len(plan.order),
                                                            width=width), plan.order
                result = build(plan, run_id, run_dir, args)
                _printer = None
                if result.status in _SUCCESS:
                    from metadata.outcome import read_outcome
                    from review import report

                    outcome = read_outcome(config.metadata_location, run_id)
                    report_path, problem = report.try_write_report(
                        config.output_dir, run_id, config.metadata_location)
            if result.status not in _SUCCESS:
                args.failure = "\n".join(_failures(run_dir))  # for --notify-webhook
                return _report_failure(config, run_dir, result, log_path)
    except (preflight.InputError, RunLockedError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - any other failure becomes one line
        print(f"error: {first_line(error, with_type=True)}", file=sys.stderr)
        return 1
    print(format_summary(outcome, time.time() - started))
    print(f"Report: {report_path}" if report_path else f"warning: no report written: {problem}")
    return 0


def _report_failure(config, run_dir: str, result, log_path: str | None) -> int:
    """Print why the run stopped: each failed node's own words, the gate's report path."""
    if log_path:
        print(f"Full log: {log_path}", file=sys.stderr)
    failures = _failures(run_dir)
    if any(names.GATE_FIRST_LINE in text for text in failures):
        report_after_refusal(config.output_dir, log_path)
    for text in failures:
        print(text, file=sys.stderr)
    if not failures:
        first = result.summary_text.strip().splitlines()
        print(f"error: Luigi: {result.status.name.lower()}: {first[-1] if first else ''}",
              file=sys.stderr)
    return 1
