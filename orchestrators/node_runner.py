"""Run exactly one node of the compiled pipeline, the way TFX's own runners do.

`python -m orchestrators.node_runner --ir pipeline.pb --node Trainer --run-id R`

TFX's portable `Launcher` (the class `LocalDagRunner` builds for every node)
resolves the node's inputs from ML Metadata, looks up the cache, runs the
driver and executor, and publishes the outputs. Any task-graph engine can run
the pipeline by running this command once per node, in the pipeline's order,
with the same run id for every node of one run: a node finds its inputs
through the `pipeline_run` context of that id, so a node given another run id
would find nothing upstream and be skipped.

The launcher returns normally when it skips a node or records a failed input
resolution, so success is decided here, from ML Metadata: exit 0 only when the
node's execution for this run is recorded COMPLETE or CACHED; otherwise exit 1
with one line saying why (the validation gate's refusal keeps its per-feature
lines before it). Exit 2: the command itself cannot start (unreadable IR,
unknown node, unreachable store).

ML Metadata is the SQLite file under the output folder compiled into the IR,
or `--metadata-mysql HOST:PORT/DB` with the credentials and TLS CA from the
environment (`metadata.store`): nothing secret is read from or written to the
IR, a job file or the command line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from dataclasses import asdict, dataclass

from metadata import names, store
from metadata.graph import MetadataGraph, NotRecordedError
from options import declared as options_declared

OUTCOME_FILE = "outcome.json"
_OK_STATES = ("ran", "cached")


class NodeRunnerError(Exception):
    """The node cannot be started (exit 2); the message is one line."""


@dataclass
class NodeOutcome:
    """What ML Metadata recorded for one node in one run."""

    node: str
    run_id: str
    state: str  # "ran", "cached", "FAILED", ... or "skipped" when nothing was recorded
    execution_id: int | None = None
    reason: str = ""
    details: str = ""  # lines before the reason, e.g. the gate's refused features

    @property
    def ok(self) -> bool:
        return self.state in _OK_STATES

    def text(self) -> str:
        """One line when it worked; the details, then one `error:` line, when not."""
        if self.ok:
            return f"{self.node}: {self.state} (execution {self.execution_id}, run {self.run_id})"
        line = f"error: {self.node} {self.state} in run {self.run_id}: {self.reason}"
        return f"{self.details}\n{line}" if self.details else line


def output_dir_of(ir) -> str:
    """The output folder the pipeline was compiled for (the parent of its pipeline root)."""
    root = ir.runtime_spec.pipeline_root  # a runtime parameter, its default the compiled path
    path = root.field_value.string_value or root.runtime_parameter.default_value.string_value
    if not path:
        raise NodeRunnerError("the compiled pipeline names no pipeline root")
    return os.path.dirname(path.rstrip("/"))


def metadata_location(ir, mysql: str | None) -> store.Location:
    """The store this node records in: MySQL when given, else the compiled folder's SQLite."""
    try:
        return store.location(output_dir_of(ir), mysql)
    except ValueError as error:
        raise NodeRunnerError(str(error)) from None


def recorded_outcome(where: store.Location, run_id: str, node: str) -> NodeOutcome:
    """The node's outcome in `run_id` as ML Metadata records it (never what a launcher said)."""
    try:
        execution = MetadataGraph(where).component_execution(run_id, node)
    except (NotRecordedError, FileNotFoundError):
        execution = None
    if execution is None:
        return NodeOutcome(node, run_id, "skipped", None,
                           "no execution recorded: an input it needs was not produced in this run")
    state = names.state_name(execution.last_known_state)
    reason = "" if state in _OK_STATES else f"its execution {execution.id} is recorded {state}"
    return NodeOutcome(node, run_id, state, execution.id, reason)


def _node(ir, node_id: str):
    for node in ir.nodes:
        if node.pipeline_node.node_info.id == node_id:
            return node.pipeline_node
    known = ", ".join(n.pipeline_node.node_info.id for n in ir.nodes)
    raise NodeRunnerError(f"no node {node_id!r} in the compiled pipeline (nodes: {known})")


def launch(ir, node_id: str, run_id: str, where: store.Location) -> None:
    """Run `node_id` of `ir` for `run_id` through TFX's portable Launcher, in this process."""
    from tfx.dsl.compiler import constants
    from tfx.orchestration import metadata
    from tfx.orchestration.local import runner_utils
    from tfx.orchestration.portable import launcher, runtime_parameter_utils

    from pipeline.components import tfx_internals
    from pipeline.pipeline import sqlite_metadata

    runtime_parameter_utils.substitute_runtime_parameter(
        ir, {constants.PIPELINE_RUN_ID_PARAMETER_NAME: run_id}
    )
    pipeline_node = _node(ir, node_id)
    deployment = runner_utils.extract_local_deployment_config(ir)
    executor_spec = runner_utils.extract_executor_spec(deployment, node_id)
    connection = sqlite_metadata(where) if isinstance(where, str) else where
    with tfx_internals.no_tfx_sdist_for_local_beam():
        launcher.Launcher(
            pipeline_node=pipeline_node,
            mlmd_connection=metadata.Metadata(connection),
            pipeline_info=ir.pipeline_info,
            pipeline_runtime_spec=ir.runtime_spec,
            executor_spec=executor_spec,
            custom_driver_spec=runner_utils.extract_custom_driver_spec(deployment, node_id),
        ).launch()


def run_node(ir, node_id: str, run_id: str, where: store.Location) -> NodeOutcome:
    """Launch the node, then read back what ML Metadata recorded for it."""
    from local.run import failure_text  # the same words a local run prints

    _node(ir, node_id)
    try:
        launch(ir, node_id, run_id, where)
    except (Exception, SystemExit) as error:  # noqa: BLE001 - the outcome is read from MLMD
        outcome = recorded_outcome(where, run_id, node_id)
        text = failure_text(error)
        details, last = text.rsplit("\n", 1) if "\n" in text else ("", text)
        outcome.reason, outcome.details = last.removeprefix("error: "), details
        if outcome.ok:  # a failure after publishing; trust the exception
            outcome.state = "FAILED"
        return outcome
    outcome = recorded_outcome(where, run_id, node_id)
    if outcome.state == "FAILED":  # the launcher returns normally on unresolved inputs
        outcome.reason = (f"its inputs were not found in run {run_id}: every upstream node "
                          "must complete first, with the same run id")
    return outcome


def run_id_from(args: argparse.Namespace) -> str:
    if args.run_id:
        return args.run_id
    value = os.environ.get(args.run_id_env or "", "")
    if not value:
        raise NodeRunnerError(f"no run id: ${args.run_id_env} is empty or unset")
    return value


def check_after(folders: list[str]) -> None:
    """Refuse to start when an upstream task's outcome file says it did not complete."""
    for folder in folders:
        path = os.path.join(folder, OUTCOME_FILE)
        if not os.path.exists(path):
            raise NodeRunnerError(f"upstream outcome {path} is missing")
        with open(path) as f:
            upstream = json.load(f)
        if upstream.get("state") not in _OK_STATES:
            raise NodeRunnerError(f"upstream {upstream.get('node')} ended {upstream.get('state')}")


def write_outcome(folder: str, outcome: NodeOutcome) -> None:
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, OUTCOME_FILE)
    with open(path + ".tmp", "w") as f:
        json.dump(asdict(outcome), f)
    os.replace(path + ".tmp", path)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Run one node of the compiled Chicago Taxi pipeline (TFX's portable launcher)."
    )
    parser.add_argument("--ir", required=True, help="the compiled pipeline (orchestrators/ir.py)")
    parser.add_argument("--node", required=True, help="the node id, e.g. Trainer")
    run_id = parser.add_mutually_exclusive_group(required=True)
    run_id.add_argument("--run-id", help="the pipeline run id, the same for every node of a run")
    run_id.add_argument("--run-id-env", metavar="VAR",
                        help="read the run id from this environment variable (e.g. Azure ML's "
                             "AZUREML_ROOT_RUN_ID, the pipeline job's id)")
    options_declared.add_metadata_option(parser)
    parser.add_argument("--artifacts-mount", metavar="PATH",
                        help="where this task's orchestrator mounted the artifact folder; "
                             "linked at the output folder the pipeline was compiled for, so "
                             "artifact URIs in ML Metadata are the same in every task")
    parser.add_argument("--after", action="append", default=[], metavar="FOLDER",
                        help="an upstream task's --outcome-dir: refuse to start unless it "
                             "completed (repeatable)")
    parser.add_argument("--outcome-dir", metavar="FOLDER",
                        help=f"write {OUTCOME_FILE} (node, run, state) here")
    parser.add_argument("--log", metavar="FILE",
                        help="send TensorFlow, Beam and absl output to FILE (default: here)")
    return parser


def link_mount(ir, mount: str | None) -> None:
    """Make the compiled output folder lead to `mount` (a symlink), or fail in one line.

    Orchestrators such as Azure ML mount a task's storage where they choose; the
    artifact URIs ML Metadata records must not depend on it.
    """
    if not mount:
        return
    stable = output_dir_of(ir)
    if os.path.realpath(mount) == os.path.realpath(stable):
        return
    if os.path.exists(stable) and not os.path.islink(stable):
        raise NodeRunnerError(
            f"the artifact folder is mounted at {mount}, but the pipeline was compiled for "
            f"{stable}, which is a real folder here: artifact URIs would differ between tasks"
        )
    os.makedirs(os.path.dirname(stable) or ".", exist_ok=True)
    link = f"{stable}.{os.getpid()}.link"
    os.symlink(os.path.abspath(mount), link)
    os.replace(link, stable)  # atomic, also over a stale link of an earlier task


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from local import progress  # quiet_output only; loads no TensorFlow

    try:
        from orchestrators import ir as ir_file

        ir = ir_file.load(args.ir)
        _node(ir, args.node)
        link_mount(ir, args.artifacts_mount)
        check_after(args.after)
        run_id = run_id_from(args)
        where = metadata_location(ir, args.metadata_mysql)
        store.check_reachable(where)
    except (NodeRunnerError, ValueError, OSError, store.MetadataConnectionError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    with progress.quiet_output(args.log) if args.log else contextlib.nullcontext(sys.stdout):
        outcome = run_node(ir, args.node, run_id, where)
    if args.outcome_dir:
        write_outcome(args.outcome_dir, outcome)
    print(outcome.text(), file=sys.stdout if outcome.ok else sys.stderr)
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    sys.exit(main())
