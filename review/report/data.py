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
from metadata.graph import MetadataGraph, is_pushed, is_unchanged_push, string_property
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
    return RunData(graph, run_id, graph.run_executions(run_id))


def load_selection(run: RunData) -> dict | None:
    """FeatureSelection's report (every decision, label counts), if it ran."""
    artifact = run.output("selection", names.SELECTION)
    return artifacts.read_json(artifact.uri if artifact else None, names.SELECTION_REPORT_FILE)


def load_history(run: RunData) -> dict | None:
    """The Trainer's Keras history, if it ran and wrote one."""
    artifact = run.output("model_run", names.MODEL_RUN)
    return artifacts.read_json(artifact.uri if artifact else None, names.HISTORY_FILE)


def data_checked(run: RunData) -> str | None:
    """The gate's drift comparison: which span it read, against which accepted data."""
    artifact = run.output("validated_statistics", names.VALIDATED_STATISTICS)
    report = artifacts.read_json(artifact.uri if artifact else None, names.GATE_REPORT_FILE)
    return (report or {}).get("compared")


def train_steps(run: RunData, trainer) -> int | None:
    if trainer is None:
        return None
    train_args = run.graph.step(trainer, "").properties.get("train_args")
    if not isinstance(train_args, dict):
        return None
    return int(train_args.get("num_steps", 0)) or None


def blessed(run: RunData) -> bool | None:
    """The run's blessing verdict, None when nothing was evaluated."""
    blessing = run.output("blessing", names.MODEL_BLESSING)
    if blessing is None or names.BLESSED not in blessing.custom_properties:
        return None
    return bool(blessing.custom_properties[names.BLESSED].int_value)


# -- a run stopped by the validation gate ---------------------------------------------------
def gate_refusal(run: RunData):
    """The gate's execution in this run if it refused the data, else None."""
    return next((e for e in run.executions if run.graph.component(e) == names.GATE
                 and e.last_known_state == e.FAILED), None)


def last_accepted_statistics(run: RunData, gate_execution):
    """The ValidatedStatistics the refused data was compared with, if any: the
    newest statistics an earlier gate accepted in this output folder (what
    `pipeline_root/baselines/accepted_statistics.json` pointed the gate at)."""
    accepted = [a for a in run.graph.store.get_artifacts_by_type(names.VALIDATED_STATISTICS)
                if a.state == a.LIVE
                and a.create_time_since_epoch < gate_execution.create_time_since_epoch]
    return max(accepted, key=lambda a: a.create_time_since_epoch, default=None)


def refusal_findings(run: RunData, gate_execution, accepted) -> list[dict]:
    """What the gate refused, recomputed with the gate's own functions from its inputs.

    A refusing gate publishes nothing, so its findings are not in ML Metadata;
    its inputs are, and the same functions give the same findings. This is the
    one place the report loads TFDV and the gate (TensorFlow): only for a
    refused run, and only inside this function.
    """
    import tensorflow_data_validation as tfdv
    from tensorflow_data_validation.utils import anomalies_util
    from tfx.utils import io_utils

    from pipeline.components import drift, gate

    inputs = run.graph.inputs(gate_execution.id)
    if not inputs.get("anomalies") or not inputs.get("statistics") or not inputs.get("schema"):
        return []
    schema = io_utils.SchemaReader().read(io_utils.get_only_uri_in_dir(inputs["schema"][0].uri))
    stats_uri, anomalies_uri = inputs["statistics"][0].uri, inputs["anomalies"][0].uri
    result = []
    for split in artifacts.anomalies_by_split(anomalies_uri):
        path = os.path.join(anomalies_uri, f"Split-{split}", artifacts.ANOMALIES_FILE)
        result += gate.findings(anomalies_util.load_anomalies_binary(path), split)
        stats = os.path.join(stats_uri, f"Split-{split}", artifacts.STATS_FILE)
        if os.path.exists(stats):
            result += gate.presence_findings(tfdv.load_stats_binary(stats), schema, split)
    if accepted is not None:
        current = os.path.join(stats_uri, "Split-train", artifacts.STATS_FILE)
        baseline = os.path.join(accepted.uri, "Split-train", artifacts.STATS_FILE)
        if os.path.exists(current) and os.path.exists(baseline):
            result += drift.drift_findings(tfdv.load_stats_binary(current),
                                           tfdv.load_stats_binary(baseline), schema)
    allowed = gate.parse_allowed(string_property(gate_execution, names.ALLOWED_ANOMALIES))
    return gate.evaluate(result, [], allowed)[0]


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
    verdict = blessed(run)
    pushed = run.output("pushed_model", names.PUSHED_MODEL)
    failed = [e for e in run.executions if e.last_known_state == e.FAILED]
    if gate_refusal(run) is not None:
        return ("The validation gate refused the data: nothing was trained or pushed, and the "
                "served model is unchanged (see Anomalies for why, next to the data last "
                "accepted).", verdict)
    if failed:
        components = ", ".join(run.graph.component(e) for e in failed)
        return f"The run FAILED in {components}.", verdict
    if pushed is not None and is_pushed(pushed):
        version = string_property(pushed, names.PUSHED_VERSION)
        pusher = run.execution_with_output("pushed_model", names.PUSHED_MODEL)
        if pusher is not None and pusher.last_known_state == pusher.CACHED:
            return (f"Nothing changed since version {version} was pushed by an earlier run: "
                    "this run reused the model, its evaluation and the push from the cache.",
                    verdict)
        if is_unchanged_push(pushed):
            return (f"Model blessed; it is the model already served as version {version}, "
                    "so nothing new was pushed.", verdict)
        return f"Model blessed and pushed as version {version}.", verdict
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
