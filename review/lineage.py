"""Which data, statistics, schema and code produced the model being served?

`python -m review.lineage [--output-dir DIR] [--version V] [--json]` lists
the pipeline runs recorded in ML Metadata and, for the latest pushed model
(or pushed version V), the chain of executions that produced it, read from
MLMD's provenance graph (events linking executions to their input and output
artifacts), each with its run and its start and end times.

How the chain is found, and why this way:
  * the PushedModel artifact -> the Pusher execution that wrote it -> its
    `model` and `model_blessing` inputs;
  * the blessing -> the Evaluator execution (metrics, and which baseline it
    was compared with; the baseline's own history is *not* followed: it did
    not produce this model);
  * the model -> every upstream execution, following input artifacts back to
    their producers (Trainer, Transform, FeatureSelection, StatisticsGen,
    ImportSchemaGen, CsvExampleGen, and whatever the pipeline gains later);
  * checks: executions that read only chain artifacts without feeding the
    model, such as ExampleValidator's anomalies on the chain's statistics.

A cached execution re-links the artifacts an earlier run produced, so each
artifact is attributed to the execution that really computed it (state
COMPLETE), which may belong to an earlier run than the push.

The runs list shows each run's `metadata.outcome.RunOutcome`, the record the
runner's summary and the report render too. The report (`review.report`)
reads MLMD through the same `MetadataGraph`; the text output is in
`review.lineage_text`, which imports nothing from here.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable
from dataclasses import asdict

from ml_metadata.proto import metadata_store_pb2

from metadata import names, outcome, serving_records
from metadata.graph import Lineage, MetadataGraph, string_property
from metadata.graph import NotRecordedError as LineageError
from metadata.outcome import RunOutcome
from metadata.store import MetadataConnectionError
from options import declared as options_declared
from review.lineage_text import format_lineage, format_runs

__all__ = ["LineageError", "MetadataGraph", "Lineage", "model_lineage", "list_runs", "main"]


# -- the chain behind a pushed model --------------------------------------------
def _pick_pushed(graph: MetadataGraph, version: str | None) -> metadata_store_pb2.Artifact:
    """The push that created `version` (default: the latest version).

    Later runs that found the same model already served record the same
    version again; the chain starts at the push that actually copied it.
    """
    pushed = graph.pushed_models()
    if not pushed:
        raise LineageError(f"no model has been pushed according to {graph.path}")
    versions = [string_property(a, names.PUSHED_VERSION) for a in pushed]
    wanted = versions[-1] if version is None else str(version)
    matches = [a for a, v in zip(pushed, versions, strict=True) if v == wanted]
    if not matches:
        known = ", ".join(dict.fromkeys(versions))
        raise LineageError(f"no pushed model version {version}; pushed versions: {known}")
    return outcome.original_push(graph, matches[0])


def _ancestors(
    graph: MetadataGraph, start_ids: Iterable[int]
) -> tuple[list[metadata_store_pb2.Execution], set[int]]:
    """Executions upstream of `start_ids` and every artifact on the way."""
    executions: dict[int, metadata_store_pb2.Execution] = {}
    seen: set[int] = set()
    queue = list(start_ids)
    while queue:
        artifact_id = queue.pop()
        if artifact_id in seen:
            continue
        seen.add(artifact_id)
        execution = graph.producer(artifact_id)
        if execution is None or execution.id in executions:
            continue
        executions[execution.id] = execution
        for ids in graph.input_ids(execution.id).values():
            queue.extend(ids)
    return list(executions.values()), seen


def _checks(
    graph: MetadataGraph, chain_artifacts: set[int], components: set[str], run_id: str
) -> list[metadata_store_pb2.Execution]:
    """Components outside the chain that read its data: ExampleValidator, the gate.

    They do not feed the model, but they vouched for its data. A check may
    appear in several runs over the same (cached) data; the one shown really
    ran (not cached), preferably in `run_id` (the run that trained the
    model), else the earliest.
    """
    found: dict[str, metadata_store_pb2.Execution] = {}
    complete = metadata_store_pb2.Execution.COMPLETE

    def rank(execution: metadata_store_pb2.Execution) -> tuple:
        return (execution.last_known_state != complete, graph.run_of(execution) != run_id,
                execution.create_time_since_epoch)

    for artifact_id in sorted(chain_artifacts):
        for execution in graph.consumers(artifact_id):
            name = graph.component(execution)
            if name in components:
                continue
            if name not in found or rank(execution) < rank(found[name]):
                found[name] = execution
    return list(found.values())


def model_lineage(graph: MetadataGraph, version: str | None = None) -> Lineage:
    """The chain behind pushed model `version` (default: the latest push)."""
    pushed = _pick_pushed(graph, version)
    pusher = graph.producer(pushed.id)
    if pusher is None:
        raise LineageError(f"pushed model #{pushed.id} has no producing execution")
    pusher_inputs = graph.input_ids(pusher.id)
    steps = [graph.step(pusher, "pushed the model")]
    blessing_ids = pusher_inputs.get("model_blessing", [])
    evaluator = graph.producer(blessing_ids[0]) if blessing_ids else None
    if evaluator is not None:
        steps.append(graph.step(evaluator, "evaluated and blessed the model"))
    upstream, chain_artifacts = _ancestors(graph, pusher_inputs.get("model", []))
    steps += [graph.step(e, "produced the model") for e in upstream]
    chain_artifacts -= set(pusher_inputs.get("model", []))
    components = {s.component for s in steps}
    trainer_run = next((s.run_id for s in steps if "model" in s.outputs), "")
    checks = _checks(graph, chain_artifacts, components, trainer_run)
    steps += [graph.step(e, "checked the data") for e in checks]
    steps.sort(key=lambda s: (s.started, s.execution_id))
    return Lineage(
        pushed=graph.artifact_info(pushed),
        version=string_property(pushed, names.PUSHED_VERSION),
        destination=string_property(pushed, names.PUSHED_DESTINATION),
        steps=steps,
        uses=serving_records.uses_of(graph.store, pushed.id),
    )


def list_runs(graph: MetadataGraph) -> list[RunOutcome]:
    """Every run, oldest first, with what it did: the outcome the summary and report show."""
    return [outcome.run_outcome(graph, run_id, details=False) for run_id in graph.run_ids()]


def run_json(run: RunOutcome) -> dict:
    """One run for `--json`: its outcome, and `pushed_version` (a version this run's own
    Pusher recorded, new or kept; None for a cached one) and `unchanged` (kept)."""
    push = run.push
    own = push is not None and push.kind in (outcome.PUSHED, outcome.KEPT)
    return {"run_id": run.run_id, "started": run.started, "finished": run.finished,
            "states": run.states, "blessed": run.blessed, "failed": run.failed,
            "refused": run.refused, "push": asdict(push) if push is not None else None,
            "pushed_version": push.version if own else None,
            "unchanged": bool(push is not None and push.kind == outcome.KEPT)}


# -- the command line ---------------------------------------------------------------
def _to_json(runs: list[RunOutcome], lineage: Lineage | None, error: str | None) -> str:
    return json.dumps(
        {
            "runs": [run_json(r) for r in runs],
            "lineage": asdict(lineage) if lineage else None,
            "error": error,
        },
        indent=2,
        default=str,
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m review.lineage",
        description="List pipeline runs and show which data and executions produced a "
        "pushed model, from ML Metadata.",
    )
    parser.add_argument("--output-dir", default="outputs",
                        help="the pipeline's --output-dir (default: %(default)s)")
    parser.add_argument("--version", default=None,
                        help="pushed model version (a folder name under serving_model/); "
                             "default: the latest push")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    options_declared.add_metadata_option(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        where = options_declared.metadata_location(args)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        graph = MetadataGraph(where)
        runs = list_runs(graph)
    except MetadataConnectionError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (FileNotFoundError, LineageError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    lineage, problem = None, None
    try:
        lineage = model_lineage(graph, args.version)
    except LineageError as error:
        problem = str(error)
    text = (_to_json(runs, lineage, problem) if args.json
            else "\n".join(format_runs(runs) + (format_lineage(lineage) if lineage else [])))
    try:
        print(text)
    except BrokenPipeError:  # `| head`: the reader has what it wanted
        sys.stdout = open(os.devnull, "w")  # silences the flush at exit
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
