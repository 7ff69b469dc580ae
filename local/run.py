"""Run the pipeline with TFX's LocalDagRunner and print what happened."""

from __future__ import annotations

import argparse
import contextlib
import sys
import time

from local import progress
from local.lock import RunLockedError, run_lock
from pipeline import preflight, run_config
from pipeline.components import tfx_internals


def failure_text(error: BaseException) -> str:
    """What to print when a run fails: the details a user can act on, then one line.

    A validation-gate failure lists every feature and what is wrong with it;
    a bad row found by ExampleGen is named as the preflight names one; anything
    else is reduced to its first line (the full traceback is in the log). The
    kind of failure is told by its type: TFX runs the executors of a local run
    in this process and lets their exceptions through unchanged.
    """
    from pipeline.components.csv_lines import BadLine

    if isinstance(error, SystemExit):
        return f"error: a component exited with status {error.code} (the log says why)"
    lines = str(error).strip().splitlines() or [""]
    if is_gate_refusal(error):
        return "\n".join([*lines[1:], f"error: {lines[0].rstrip(':')}"])
    if isinstance(error, BadLine):
        return f"error: {lines[0]}"
    return f"error: {type(error).__name__}: {lines[0]}"


def is_gate_refusal(error: BaseException) -> bool:
    """Whether the run stopped because the validation gate refused the data."""
    from pipeline.components.gate import DataValidationError  # loads TensorFlow

    return isinstance(error, DataValidationError)


def report_after_refusal(output_dir: str, log_path: str | None) -> None:
    """Write the report of a run the gate stopped: that is when a user needs it most.

    It shows the refused data next to the data last accepted; a report that
    cannot be drawn is a warning, the gate's refusal stays the run's outcome.
    """
    from review import report

    with progress.quiet_output(log_path):
        path, problem = report.try_write_report(output_dir)
    if path:
        print(f"Report: {path} (the refused data next to the data last accepted)",
              file=sys.stderr)
    else:
        print(f"warning: no report written: {problem}", file=sys.stderr)


def partial_run_nodes(components, start: str | None, end: str | None) -> list[str]:
    """The node ids `--from start --to end` runs, in pipeline order; InputError for a
    node the pipeline does not have or an empty slice."""
    ids = [c.id for c in components]
    for flag, node in (("--from", start), ("--to", end)):
        if node and node not in ids:
            raise preflight.InputError(f"{flag} {node}: no such node (nodes: {', '.join(ids)})")

    def closure(node: str, neighbours) -> set[str]:
        found, frontier = {node}, [node]
        by_id = {c.id: c for c in components}
        while frontier:
            for other in neighbours(by_id[frontier.pop()]):
                if other.id not in found:
                    found.add(other.id)
                    frontier.append(other.id)
        return found

    selected = set(ids)
    if start:
        selected &= closure(start, lambda c: c.downstream_nodes)
    if end:
        selected &= closure(end, lambda c: c.upstream_nodes)
    if not selected:
        raise preflight.InputError(f"nothing runs from {start} to {end}: {end} is upstream of "
                                   f"{start}")
    return [i for i in ids if i in selected]


def partial_run_options(args: argparse.Namespace):
    """TFX's RunOptions for `--from` / `--to`, None for a whole run.

    TFX's partial run (`partial_run_utils`) runs the nodes between the two
    and gives them the outputs the latest earlier run recorded for the nodes
    it leaves out (recorded as CACHED executions of the new run).
    """
    start, end = getattr(args, "from_node", None), getattr(args, "to_node", None)
    if not start and not end:
        return None
    from tfx.orchestration.pipeline import RunOptions

    return RunOptions(from_nodes=[start] if start else None, to_nodes=[end] if end else None)


def run_locally(args: argparse.Namespace, started: float) -> int:
    """Run the pipeline for `args`; 0 when the run completed, 1 otherwise."""
    log_path = config = None
    stack = contextlib.ExitStack()
    try:
        config = run_config.checked_config(args)
        stack.enter_context(run_lock(config.output_dir))
        if not args.verbose:
            log_path = progress.new_log_path(config.output_dir)
            print(f"TensorFlow, Beam and absl output goes to {log_path}")
        # Imports inside: TensorFlow logs to the terminal as soon as it loads.
        with progress.quiet_output(log_path) as console:
            from tfx.orchestration.local.local_dag_runner import LocalDagRunner

            from local import summary as run_summary
            from pipeline.pipeline import create_pipeline

            pipeline = create_pipeline(config)
            nodes = partial_run_nodes(pipeline.components, getattr(args, "from_node", None),
                                      getattr(args, "to_node", None))
            with (progress.track_components(console, config.metadata_location, nodes),
                  tfx_internals.no_tfx_sdist_for_local_beam()):
                LocalDagRunner().run(pipeline, run_options=partial_run_options(args))
            from metadata.outcome import read_outcome

            outcome = read_outcome(config.metadata_location)
            reused = [c.component for c in outcome.components
                      if c.component not in nodes and c.state == "cached"]
            from review import report

            report_path, report_problem = report.try_write_report(
                config.output_dir, outcome.run_id, config.metadata_location
            )
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except (preflight.InputError, RunLockedError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (Exception, SystemExit) as error:  # noqa: BLE001 - any failure becomes one line
        # SystemExit too: Beam exits the process on a flag it rejects.
        if log_path:  # before the reason, so the reason stays the last line
            print(f"Full log: {log_path}", file=sys.stderr)
        if config is not None and is_gate_refusal(error):
            report_after_refusal(config.output_dir, log_path)
        args.failure = failure_text(error)  # also for the runner's --notify-webhook
        print(args.failure, file=sys.stderr)
        return 1
    finally:
        stack.close()
    print(run_summary.format_summary(outcome, time.time() - started, reused))
    if report_path:
        print(f"Report: {report_path}")
    else:
        print(f"warning: no report written: {report_problem}", file=sys.stderr)
    return 0
