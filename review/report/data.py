"""What the report shows, read back from ML Metadata and the artifacts it points to.

Nothing here draws or formats: `RunData` finds a run's artifacts by output key
and type, `Evaluation` holds what the Evaluator wrote, and the functions below
answer the questions the sections ask (was the data refused and why, which
blessing rules passed, is AUC defined). All reads go through `metadata/`.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field

from metadata import artifacts, names
from metadata import evaluation as evaluation_files
from metadata import outcome as outcomes
from metadata.graph import MetadataGraph
from metadata.outcome import RunOutcome
from metadata.store import Location
from models.features import LABEL_KEY

METRICS = ("example_count", "auc", "binary_accuracy", "precision", "recall")
METRIC_LABELS = {
    "example_count": "examples", "auc": "AUC", "binary_accuracy": "accuracy",
    "precision": "precision", "recall": "recall",
}


# -- the run's artifacts --------------------------------------------------------------
@dataclass
class RunData:
    """The artifacts one run used or produced, looked up by output key."""

    graph: MetadataGraph
    run_id: str
    # What the run did (blessed, pushed, data checked): the record the runner's summary
    # and `review.lineage` show too (`metadata.outcome`).
    outcome: RunOutcome
    executions: list = field(default_factory=list)

    def _latest_output(self, key: str, type_name: str) -> tuple:
        """(execution, artifact) of the run's latest output `key` of type `type_name`."""
        for execution in reversed(self.executions):
            for artifact in self.graph.outputs(execution.id).get(key, []):
                if self.graph.artifact_type(artifact) == type_name:
                    return execution, artifact
        return None, None

    def output(self, key: str, type_name: str):
        """The artifact under output `key` of type `type_name` in this run, if any."""
        return self._latest_output(key, type_name)[1]

    def execution_with_output(self, key: str, type_name: str):
        """The execution that produced that artifact, if any."""
        return self._latest_output(key, type_name)[0]


def load_run(where: Location, run_id: str | None = None) -> RunData:
    graph = MetadataGraph(where)
    run_id = graph.latest_run_id(run_id)
    return RunData(graph, run_id, outcomes.run_outcome(graph, run_id, details=False),
                   graph.run_executions(run_id))


def load_selection(run: RunData) -> dict | None:
    """FeatureSelection's report (every decision, label counts), if it ran."""
    artifact = run.output("selection", names.SELECTION)
    return artifacts.read_json(artifact.uri if artifact else None, names.SELECTION_REPORT_FILE)


def load_history(run: RunData) -> dict | None:
    """The Trainer's Keras history, if it ran and wrote one."""
    artifact = run.output("model_run", names.MODEL_RUN)
    return artifacts.read_json(artifact.uri if artifact else None, names.HISTORY_FILE)


def train_steps(run: RunData, trainer) -> int | None:
    if trainer is None:
        return None
    train_args = run.graph.step(trainer, "").properties.get("train_args")
    if not isinstance(train_args, dict):
        return None
    return int(train_args.get("num_steps", 0)) or None


# -- a run stopped by the validation gate ---------------------------------------------------
def gate_refusal(run: RunData):
    """The gate's execution in this run if it refused the data, else None."""
    return next((e for e in run.executions if run.graph.component(e) == names.GATE
                 and e.last_known_state == e.FAILED), None)


def refusal_record(run: RunData, gate_execution) -> dict | None:
    """What the gate recorded when it refused this run's data: {"findings", "compared",
    "baseline" (the pointer record of the accepted data it compared with), ...}.

    A refusing gate publishes nothing, so it records its findings beside the
    pointer file it reads (`pipeline/components/gate.py`); the gate's
    execution in ML Metadata names that file and the refused statistics.
    None for a refusal recorded before the gate kept such records.
    """
    properties = {**gate_execution.properties, **gate_execution.custom_properties}
    pointer = properties.get(names.ACCEPTED_STATISTICS_FILE)
    statistics = run.graph.inputs(gate_execution.id).get("statistics", [])
    if pointer is None or not statistics:
        return None
    return artifacts.read_refusal(pointer.string_value, statistics[0].uri)


def accepted_by(run: RunData, statistics_uri: str) -> str:
    """The run whose gate accepted the statistics at `statistics_uri`."""
    found = run.graph.store.get_artifacts_by_uri(statistics_uri)
    producer = run.graph.producer(found[0].id) if found else None
    return run.graph.run_of(producer) if producer is not None else "an earlier run"


# -- evaluation -----------------------------------------------------------------------------
@dataclass
class Evaluation:
    """What the Evaluator wrote, for the candidate and (if any) the baseline."""

    uri: str
    config: dict
    candidate: dict  # slice key tuple -> {metric: value}
    baseline: dict
    plots: dict  # slice key tuple -> plot dict (candidate)
    baseline_plots: dict
    validation: object  # tfma ValidationResult, or None when the evaluation recorded none


def _metric_values(slice_metrics: dict) -> dict[str, float]:
    values = {}
    for by_output in slice_metrics.values():
        for name, value in by_output.get("", {}).items():
            raw = value.get("doubleValue") if isinstance(value, dict) else None
            if raw is not None:
                values[name] = float(raw)
    return values


def _load_result(uri: str, model_name: str | None) -> tuple[dict, dict]:
    import tensorflow_model_analysis as tfma

    result = tfma.load_eval_result(uri, model_name=model_name)
    metrics = {tuple(k): _metric_values(m) for k, m in result.slicing_metrics}
    plots = {tuple(k): p.get("", {}).get("", {}) for k, p in result.plots}
    return metrics, plots


def load_evaluation(uri: str) -> Evaluation:
    with open(os.path.join(uri, "eval_config.json")) as f:
        written = json.load(f)
    config = written["evalConfig"]
    specs = config.get("modelSpecs", [])
    candidate_name = next((s.get("name") for s in specs if not s.get("isBaseline")), None)
    baseline_name = next((s.get("name") for s in specs if s.get("isBaseline")), None)
    candidate, plots = _load_result(uri, candidate_name)
    baseline, baseline_plots = _load_result(uri, baseline_name) if baseline_name else ({}, {})
    return Evaluation(uri, config, candidate, baseline, plots, baseline_plots,
                      evaluation_files.load_validation(uri))


@dataclass
class Check:
    """One blessing rule and how the candidate fared."""

    metric: str
    rule: str
    value: float | None
    passed: bool | None  # None: not checked (e.g. no baseline for a change rule)


def threshold_checks(evaluation: Evaluation) -> list[Check]:
    """The eval config's overall-slice thresholds, with the validation outcome."""
    failures = {(f.name, f.is_diff)
                for f in evaluation_files.blessing_failures(evaluation.validation)
                if f.slice == "overall"}
    overall = evaluation.candidate.get((), {})
    has_baseline = bool(evaluation.baseline)
    checks = []
    for spec in evaluation.config.get("metricsSpecs", []):
        for metric in spec.get("metrics", []):
            for threshold in _thresholds(metric):
                name = _metric_name(metric["className"], overall)
                checks += _checks_for(name, threshold, overall, has_baseline, failures)
    return checks


def _thresholds(metric: dict) -> list[dict]:
    found = [metric["threshold"]] if "threshold" in metric else []
    for per_slice in metric.get("perSliceThresholds", []):
        if any(spec in ({}, None) for spec in per_slice.get("slicingSpecs", [{}])):
            found.append(per_slice["threshold"])
    return found


def _metric_name(class_name: str, overall: dict) -> str:
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", class_name).lower()
    return snake if snake in overall or not overall else next(
        (k for k in overall if k.replace("_", "") == class_name.lower()), snake)


def _checks_for(name, threshold, overall, has_baseline, failures) -> list[Check]:
    checks = []
    value = threshold.get("valueThreshold", {})
    if value:
        bounds = [f"≥ {value['lowerBound']}" if "lowerBound" in value else "",
                  f"≤ {value['upperBound']}" if "upperBound" in value else ""]
        checks.append(Check(name, " and ".join(b for b in bounds if b), overall.get(name),
                            (name, False) not in failures))
    change = threshold.get("changeThreshold", {})
    if change:
        limit = change.get("absolute", change.get("relative"))
        higher = change.get("direction") == "HIGHER_IS_BETTER"
        rule = f"change vs baseline ≥ {limit}" if higher else f"change vs baseline ≤ {limit}"
        checks.append(Check(name, rule, overall.get(f"{name}_diff"),
                            (name, True) not in failures if has_baseline else None))
    return checks


def class_counts(plot: dict) -> tuple[float, float] | None:
    """(positives, negatives) of a slice, from its lowest-threshold confusion matrix."""
    matrices = plot.get("confusionMatrixAtThresholds", {}).get("matrices", [])
    if not matrices:
        return None
    m = matrices[0]
    return (m.get("truePositives", 0.0) + m.get("falseNegatives", 0.0),
            m.get("falsePositives", 0.0) + m.get("trueNegatives", 0.0))


def defined_metrics(metrics: dict, plot: dict) -> dict:
    """`metrics` with AUC blanked where it is undefined (one class only).

    TFMA reports AUC 0 on a slice without big tippers; shown as is, that reads
    as a terrible model rather than as "cannot be measured here".
    """
    counts = class_counts(plot)
    if counts is not None and min(counts) == 0 and "auc" in metrics:
        return {**metrics, "auc": float("nan")}
    return metrics


def undefined_metrics(metrics: dict) -> set[str]:
    return {m for m, v in metrics.items() if isinstance(v, float) and math.isnan(v)}


def single_class(evaluation: Evaluation | None, selection: dict | None) -> str | None:
    """Why AUC is undefined when the eval split's label has one class, else None.

    Eval counts are the Evaluator's (its overall confusion matrix); train counts
    are FeatureSelection's, over the train rows it measured.
    """
    counts = class_counts(evaluation.plots.get((), {})) if evaluation is not None else None
    label_counts = {"eval": [round(c) for c in counts]} if counts else {}
    train = evaluation_files.train_label_counts(selection)
    if train:
        label_counts["train"] = train
    return evaluation_files.single_class_text(label_counts, LABEL_KEY)


def slice_features(evaluation: Evaluation) -> list[str]:
    found = []
    for spec in evaluation.config.get("slicingSpecs", []):
        found += [k for k in spec.get("featureKeys", []) if k not in found]
    return found


def _sort_key(value):
    try:
        return (0, float(value), "")
    except (TypeError, ValueError):
        return (1, 0.0, str(value))


def slices_of(evaluation: Evaluation, feature: str) -> list[tuple[object, dict]]:
    """(value, metrics with undefined AUC blanked) per slice of `feature`, in value order."""
    found = sorted(((k[0][1], v) for k, v in evaluation.candidate.items()
                    if len(k) == 1 and k[0][0] == feature), key=lambda s: _sort_key(s[0]))
    return [(value, defined_metrics(m, evaluation.plots.get(((feature, value),), {})))
            for value, m in found]


# -- the outcome in one sentence ---------------------------------------------------------------
def verdict_line(run: RunData) -> tuple[str, bool | None]:
    """One sentence on the outcome, and whether the model was blessed."""
    outcome = run.outcome
    verdict, push = outcome.blessed, outcome.push
    if outcome.refused:
        return ("The validation gate refused the data: nothing was trained or pushed, and the "
                "served model is unchanged (see Anomalies for why, next to the data last "
                "accepted).", verdict)
    if outcome.failed:
        return f"The run FAILED in {', '.join(outcome.failed)}.", verdict
    if push is not None and push.kind == outcomes.CACHED:
        return (f"Nothing changed since version {push.version} was pushed by run "
                f"{push.pushed_by}: this run reused the model, its evaluation and the push "
                "from the cache; nothing new was pushed.", verdict)
    if push is not None and push.kind == outcomes.KEPT:
        return (f"Model blessed; it is the model already served as version {push.version} "
                f"(pushed by run {push.pushed_by}), so nothing new was pushed.", verdict)
    if push is not None and push.new:
        return f"Model blessed and pushed as version {push.version}.", verdict
    if verdict is False:
        return not_blessed_line(run), verdict
    return "The run finished; no model was pushed.", verdict


def not_blessed_line(run: RunData) -> str:
    """The verdict of a model that was not blessed, from the failures the Evaluator recorded."""
    evaluation = run.output("evaluation", names.MODEL_EVALUATION)
    validation = (evaluation_files.load_validation(evaluation.uri)
                  if evaluation is not None else None)
    if validation is None:
        return ("Model NOT blessed; the evaluation's validation result is missing, so which "
                "rules failed cannot be shown; nothing pushed.")
    failed = evaluation_files.blessing_failures(validation)
    return (f"Model NOT blessed: {len(failed)} blessing rule(s) failed (see Evaluation "
            "metrics); nothing pushed.")
