"""Read what a run did back out of ML Metadata: components, times, metrics, push.

The runner prints this at the end of a run; the benchmark and tests use the same
functions, so what a user reads is what was recorded.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

from metadata import store as pipeline_store
from metadata.store import Location, describe

STATE_NAMES = {
    metadata_store_pb2.Execution.COMPLETE: "ran",
    metadata_store_pb2.Execution.CACHED: "cached",
    metadata_store_pb2.Execution.FAILED: "FAILED",
    metadata_store_pb2.Execution.RUNNING: "running",
    metadata_store_pb2.Execution.NEW: "new",
    metadata_store_pb2.Execution.CANCELED: "canceled",
}


@dataclass
class ComponentRun:
    """One component's execution in one pipeline run."""

    component: str
    state: str
    seconds: float
    execution_id: int


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

    @property
    def single_class(self) -> str | None:
        """Why AUC is undefined, when the eval split's label has one class; else None."""
        return single_class_text(self.label_counts)
    # What the validation gate read and compared it with (pipeline/components/drift.py).
    data_checked: str | None = None


def open_store(where: Location) -> metadata_store.MetadataStore:
    """The run's ML Metadata (a SQLite path or a MySQL connection); see `metadata.store`."""
    return pipeline_store.open_store(where)


def run_ids(store: metadata_store.MetadataStore) -> list[str]:
    """Pipeline run ids, oldest first."""
    contexts = store.get_contexts_by_type("pipeline_run")
    return [c.name for c in sorted(contexts, key=lambda c: c.create_time_since_epoch)]


def _node_name(store: metadata_store.MetadataStore, execution_id: int) -> str:
    for context in store.get_contexts_by_execution(execution_id):
        if context.type == "node" or store.get_context_types_by_id([context.type_id])[
            0
        ].name == "node":
            return context.name.split(".", 1)[-1]
    return "?"


def component_runs(store: metadata_store.MetadataStore, run_id: str) -> list[ComponentRun]:
    """Every execution of `run_id`, in start order."""
    context = store.get_context_by_type_and_name("pipeline_run", run_id)
    if context is None:
        return []
    executions = sorted(
        store.get_executions_by_context(context.id), key=lambda e: e.create_time_since_epoch
    )
    return [
        ComponentRun(
            component=_node_name(store, e.id),
            state=STATE_NAMES.get(e.last_known_state, str(e.last_known_state)),
            seconds=(e.last_update_time_since_epoch - e.create_time_since_epoch) / 1000.0,
            execution_id=e.id,
        )
        for e in executions
    ]


def _outputs(store: metadata_store.MetadataStore, execution_id: int, type_name: str):
    events = store.get_events_by_execution_ids([execution_id])
    ids = [e.artifact_id for e in events if e.type == metadata_store_pb2.Event.OUTPUT]
    artifacts = store.get_artifacts_by_id(ids)
    types = {t.id: t.name for t in store.get_artifact_types_by_id({a.type_id for a in artifacts})}
    return [a for a in artifacts if types[a.type_id] == type_name]


def _latest_execution(store, run_id: str, component: str) -> ComponentRun | None:
    matches = [r for r in component_runs(store, run_id) if r.component == component]
    return matches[-1] if matches else None


def evaluation_metrics(evaluation_uri: str) -> dict[str, float]:
    """Overall-slice metrics of the candidate model in an Evaluator output.

    Reads only the metrics file (`tfma.load_metrics`); `load_eval_result` would
    also parse the plots, several MB, which the summary does not need.
    """
    import tensorflow_model_analysis as tfma

    metrics: dict[str, float] = {}
    for per_slice in tfma.load_metrics(evaluation_uri):
        if per_slice.slice_key.single_slice_keys:
            continue
        for entry in per_slice.metric_keys_and_values:
            key = entry.key
            if key.is_diff or key.model_name not in ("", "candidate") or key.HasField("sub_key"):
                continue
            if entry.value.HasField("double_value"):
                metrics[key.name] = entry.value.double_value.value
    return metrics


def eval_label_counts(evaluation_uri: str) -> list[int] | None:
    """[big tippers, other trips] in the eval split, from the Evaluator's own counts.

    Every confusion matrix of the overall slice has positives = TP + FN and
    negatives = FP + TN; the plots are read until the overall slice is found.
    """
    import tensorflow_model_analysis as tfma

    for per_slice in tfma.load_plots(evaluation_uri):
        if per_slice.slice_key.single_slice_keys:
            continue
        for plot in per_slice.plot_keys_and_values:
            key = plot.key
            if key.model_name not in ("", "candidate"):
                continue
            matrices = plot.value.confusion_matrix_at_thresholds.matrices
            if matrices:
                m = matrices[0]
                return [round(m.true_positives + m.false_negatives),
                        round(m.false_positives + m.true_negatives)]
    return None


def train_label_counts(selection_uri: str) -> list[int] | None:
    """[big tippers, other trips] in the train rows FeatureSelection measured."""
    from pipeline.components.feature_selection import REPORT_FILE

    path = os.path.join(selection_uri, REPORT_FILE)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        counts = json.load(f).get("label_counts")
    return [counts["1"], counts["0"]] if counts else None


def single_class_text(label_counts: dict[str, list[int]]) -> str | None:
    """"the label ... has a single class in the eval split (...)", or None.

    AUC needs both classes: TFMA reports 0.0 when one is absent, which reads
    as a terrible model instead of as "cannot be measured on this data".
    """
    from models.features import LABEL_KEY

    eval_text = _one_class("eval", label_counts.get("eval"))
    if eval_text is None:
        return None
    train_text = _one_class("train", label_counts.get("train"))
    where = f"{eval_text} and in {train_text}" if train_text else eval_text
    return f"the label {LABEL_KEY} has a single class in {where}: AUC is undefined"


def _one_class(split: str, counts: list[int] | None) -> str | None:
    if not counts or min(counts) > 0:
        return None
    what = "all big tippers" if counts[0] else "no big tipper"
    return f"the {split} split ({sum(counts):,} trips, {what})"


def _threshold_text(threshold) -> str:
    if threshold.HasField("value_threshold"):
        bound = threshold.value_threshold
        if bound.HasField("lower_bound"):
            return f"needs at least {bound.lower_bound.value:g}"
        return f"needs at most {bound.upper_bound.value:g}"
    change = threshold.change_threshold
    if change.HasField("absolute"):
        return f"may drop by at most {abs(change.absolute.value):g} against the baseline"
    return "change threshold against the baseline"


def blessing_failures(evaluation_uri: str) -> list[str]:
    """Why the Evaluator did not bless: one readable line per failed threshold."""
    import tensorflow_model_analysis as tfma

    result = tfma.load_validation_result(evaluation_uri)
    reasons = []
    for per_slice in result.metric_validations_per_slice:
        for failure in per_slice.failures:
            key = failure.metric_key
            name = f"{key.name} change vs baseline" if key.is_diff else key.name
            value = failure.metric_value.double_value.value
            reasons.append(f"{name} {value:.4f} ({_threshold_text(failure.metric_threshold)})")
    return reasons


def data_checked(store: metadata_store.MetadataStore, run_id: str) -> str | None:
    """The gate's record of the span it read and the accepted data it compared with."""
    from pipeline.components.gate import REPORT_FILE

    gate = _latest_execution(store, run_id, "DataValidationGate")
    accepted = _outputs(store, gate.execution_id, "ValidatedStatistics") if gate else []
    path = os.path.join(accepted[0].uri, REPORT_FILE) if accepted else ""
    if not path or not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f).get("compared")


def summarize(where: Location, run_id: str | None = None) -> RunSummary:
    """The summary of `run_id` (default: the latest run)."""
    store = open_store(where)
    ids = run_ids(store)
    if not ids:
        raise LookupError(f"no pipeline runs recorded in {describe(where)}")
    run_id = run_id or ids[-1]
    summary = RunSummary(run_id=run_id, components=component_runs(store, run_id))
    summary.data_checked = data_checked(store, run_id)
    evaluator = _latest_execution(store, run_id, "Evaluator")
    if evaluator is not None:
        evaluations = _outputs(store, evaluator.execution_id, "ModelEvaluation")
        if evaluations:
            summary.metrics = evaluation_metrics(evaluations[0].uri)
        blessings = _outputs(store, evaluator.execution_id, "ModelBlessing")
        if blessings:
            blessed = blessings[0].custom_properties.get("blessed")
            summary.blessed = bool(blessed and blessed.int_value)
        if evaluations:
            counts = eval_label_counts(evaluations[0].uri)
            if counts:
                summary.label_counts["eval"] = counts
        if evaluations and summary.blessed is False:
            summary.not_blessed_because = blessing_failures(evaluations[0].uri)
    selector = _latest_execution(store, run_id, "FeatureSelection")
    if selector is not None:
        selections = _outputs(store, selector.execution_id, "FeatureSelection")
        counts = train_label_counts(selections[0].uri) if selections else None
        if counts:
            summary.label_counts["train"] = counts
    if summary.single_class:
        # "auc 0.0000 (needs at least 0.945)" would blame the model for the data.
        summary.not_blessed_because = [
            reason for reason in summary.not_blessed_because if not reason.startswith("auc ")
        ] + ([summary.single_class] if summary.blessed is False else [])
    pusher = _latest_execution(store, run_id, "Pusher")
    if pusher is not None:
        pushed = _outputs(store, pusher.execution_id, "PushedModel")
        properties = pushed[0].custom_properties if pushed else {}
        if "pushed" in properties and properties["pushed"].int_value:
            summary.pushed_path = properties["pushed_destination"].string_value
        if "not_pushed_reason" in properties:
            summary.not_pushed_reason = properties["not_pushed_reason"].string_value
    return summary


def to_json(summary: RunSummary) -> str:
    from dataclasses import asdict

    return json.dumps(asdict(summary), indent=2)
