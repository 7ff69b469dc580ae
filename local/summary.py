"""Read what a run did back out of ML Metadata: components, times, metrics, push.

The runner prints this at the end of a run; the benchmark and tests use the same
functions, so what a user reads is what was recorded. Every lookup goes through
the metadata layer (`metadata.graph`, `metadata.names`, `metadata.evaluation`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from metadata import artifacts, names
from metadata import evaluation as evaluation_files
from metadata.graph import ComponentRun, MetadataGraph, string_property
from metadata.store import Location
from models.features import LABEL_KEY

__all__ = ["ComponentRun", "RunSummary", "summarize", "to_json"]


@dataclass
class RunSummary:
    """What one pipeline run did, as recorded in ML Metadata."""

    run_id: str
    components: list[ComponentRun] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    blessed: bool | None = None
    not_blessed_because: list[str] = field(default_factory=list)
    pushed_path: str | None = None
    not_pushed_reason: str | None = None
    # (big tippers, other trips) per split: "eval" as the Evaluator counted it,
    # "train" as FeatureSelection counted it in the rows it measured.
    label_counts: dict[str, list[int]] = field(default_factory=dict)
    # What the validation gate read and compared it with (pipeline/components/drift.py).
    data_checked: str | None = None
    # Nodes a partial run (`--from` / `--to`) left out and took the outputs of from the
    # previous run; the runner that chose the slice fills it in.
    reused: list[str] = field(default_factory=list)

    @property
    def single_class(self) -> str | None:
        """Why AUC is undefined, when the eval split's label has one class; else None."""
        return single_class_text(self.label_counts)


def single_class_text(label_counts: dict[str, list[int]]) -> str | None:
    """`metadata.evaluation.single_class_text` for this pipeline's label."""
    return evaluation_files.single_class_text(label_counts, LABEL_KEY)


def data_checked(graph: MetadataGraph, run_id: str) -> str | None:
    """The gate's record of the span it read and the accepted data it compared with."""
    accepted = graph.node_outputs(run_id, names.GATE, names.VALIDATED_STATISTICS)
    report = artifacts.read_json(accepted[0].uri if accepted else None, names.GATE_REPORT_FILE)
    return (report or {}).get("compared")


def summarize(where: Location, run_id: str | None = None) -> RunSummary:
    """The summary of `run_id` (default: the latest run)."""
    graph = MetadataGraph(where)
    run_id = graph.latest_run_id(run_id)
    summary = RunSummary(run_id=run_id, components=graph.component_runs(run_id))
    summary.data_checked = data_checked(graph, run_id)
    evaluator = graph.component_execution(run_id, names.EVALUATOR)
    if evaluator is not None:
        evaluations = graph.outputs_of_type(evaluator.id, names.MODEL_EVALUATION)
        blessings = graph.outputs_of_type(evaluator.id, names.MODEL_BLESSING)
        if blessings:
            summary.blessed = bool(blessings[0].custom_properties.get(names.BLESSED)
                                   and blessings[0].custom_properties[names.BLESSED].int_value)
        if evaluations:
            uri = evaluations[0].uri
            summary.metrics = evaluation_files.overall_metrics(uri)
            counts = evaluation_files.eval_label_counts(uri)
            if counts:
                summary.label_counts["eval"] = counts
            if summary.blessed is False:
                validation = evaluation_files.load_validation(uri)
                summary.not_blessed_because = (
                    [f.text for f in evaluation_files.blessing_failures(validation)]
                    if validation is not None
                    else [f"the evaluation recorded no validation result under {uri}"])
    selections = graph.node_outputs(run_id, names.FEATURE_SELECTION, names.SELECTION)
    if selections:
        report = artifacts.read_json(selections[0].uri, names.SELECTION_REPORT_FILE)
        counts = evaluation_files.train_label_counts(report)
        if counts:
            summary.label_counts["train"] = counts
    if summary.single_class:
        # "auc 0.0000 (needs at least 0.92)" would blame the model for the data.
        summary.not_blessed_because = [
            reason for reason in summary.not_blessed_because if not reason.startswith("auc ")
        ] + ([summary.single_class] if summary.blessed is False else [])
    pushed = graph.node_outputs(run_id, names.PUSHER, names.PUSHED_MODEL)
    if pushed:
        properties = pushed[0].custom_properties
        if names.PUSHED in properties and properties[names.PUSHED].int_value:
            summary.pushed_path = string_property(pushed[0], names.PUSHED_DESTINATION)
        if names.NOT_PUSHED_REASON in properties:
            summary.not_pushed_reason = string_property(pushed[0], names.NOT_PUSHED_REASON)
    return summary


def to_json(summary: RunSummary) -> str:
    return json.dumps(asdict(summary), indent=2)
