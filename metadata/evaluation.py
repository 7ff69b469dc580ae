"""The Evaluator's output, read back: metrics, class counts, and why a model was not blessed.

"Why not blessed" is built here once, from TFMA's validation result: the
runner's summary prints `BlessingFailure.text` ("auc 0.8448 (needs at least
0.92)"), the report tabulates the same failures per slice and counts them in
its verdict. TFMA (and with it TensorFlow) is imported inside the functions
that read its files, so importing this module stays light.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass

from metadata import names

# The file TFMA writes its ValidationResult to (tfma.constants.VALIDATIONS_KEY).
VALIDATIONS_FILE = "validations"


@dataclass(frozen=True)
class BlessingFailure:
    """One failed blessing rule on one slice."""

    slice: str  # "overall", or "payment_type=Cash"
    name: str  # the metric: "auc"
    is_diff: bool  # the rule is on the change against the baseline
    value: float
    rule: str  # the threshold in words: "needs at least 0.92"
    threshold: str  # TFMA's threshold proto, on one line

    @property
    def metric(self) -> str:
        """"auc", or "auc change vs baseline"."""
        return f"{self.name} change vs baseline" if self.is_diff else self.name

    @property
    def text(self) -> str:
        return f"{self.metric} {self.value:.4f} ({self.rule})"


def recorded_baseline(properties: dict) -> tuple[int, str] | None:
    """(version, folder) an evaluation was compared with, from plain property values.

    The Evaluator (pipeline/components/evaluator.py) records them on its
    blessing and evaluation; version 0 means no model was being served.
    """
    version = properties.get(names.BASELINE_VERSION)
    if not version:
        return None
    return int(version), str(properties.get(names.BASELINE_URI) or "")


def load_validation(uri: str):
    """TFMA's ValidationResult of the evaluation at `uri`; None when it recorded none.

    A validation file that exists but cannot be parsed raises: the page or
    summary must not read "0 rules failed" from an evaluation it could not read.
    """
    if not glob.glob(os.path.join(uri, VALIDATIONS_FILE + "*")):
        return None
    import tensorflow_model_analysis as tfma

    return tfma.load_validation_result(uri)


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


def _slice_value(key) -> object:
    kind = key.WhichOneof("kind")
    value = getattr(key, kind) if kind else ""
    return value.decode() if isinstance(value, bytes) else value


def blessing_failures(validation) -> list[BlessingFailure]:
    """Every failed blessing rule of a ValidationResult (None: nothing recorded), on any slice."""
    if validation is None:
        return []
    result = []
    for per_slice in validation.metric_validations_per_slice:
        where = ", ".join(f"{k.column}={_slice_value(k)}"
                          for k in per_slice.slice_key.single_slice_keys) or "overall"
        for failure in per_slice.failures:
            key = failure.metric_key
            result.append(BlessingFailure(
                slice=where,
                name=key.name,
                is_diff=key.is_diff,
                value=failure.metric_value.double_value.value,
                rule=_threshold_text(failure.metric_threshold),
                threshold=" ".join(str(failure.metric_threshold).split()),
            ))
    return result


def overall_metrics(evaluation_uri: str) -> dict[str, float]:
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


def train_label_counts(selection_report: dict | None) -> list[int] | None:
    """[big tippers, other trips] in the train rows FeatureSelection measured (its report)."""
    counts = (selection_report or {}).get("label_counts")
    return [counts["1"], counts["0"]] if counts else None


def single_class_text(label_counts: dict[str, list[int]], label: str) -> str | None:
    """"the label ... has a single class in the eval split (...)", or None.

    AUC needs both classes: TFMA reports 0.0 when one is absent, which reads
    as a terrible model instead of as "cannot be measured on this data".
    """
    eval_text = _one_class("eval", label_counts.get("eval"))
    if eval_text is None:
        return None
    train_text = _one_class("train", label_counts.get("train"))
    where = f"{eval_text} and in {train_text}" if train_text else eval_text
    return f"the label {label} has a single class in {where}: AUC is undefined"


def _one_class(split: str, counts: list[int] | None) -> str | None:
    if not counts or min(counts) > 0:
        return None
    what = "all big tippers" if counts[0] else "no big tipper"
    return f"the {split} split ({sum(counts):,} trips, {what})"
