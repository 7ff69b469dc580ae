"""The validation gate: bad data stops the run before Transform and Trainer.

TFX's ExampleValidator records anomalies but stops nothing. This step reads
what it recorded, adds drift against the last *accepted* data (the statistics a
previous run's gate let through), and fails the run, naming every feature and
what is wrong with it, unless the user explicitly allowed that anomaly
(`--allow-anomaly FEATURE[:TYPE]`).

On success it publishes `ValidatedStatistics` (a copy of the statistics it
accepted): the baseline that the next run's drift check compares against. A
failed gate publishes nothing, so drifted data never becomes the new baseline.
"""

import json
import os

import tensorflow as tf
import tensorflow_data_validation as tfdv
from tensorflow_data_validation.utils import anomalies_util
from tensorflow_metadata.proto.v0 import anomalies_pb2, statistics_pb2
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.dsl.input_resolution.strategies.latest_artifact_strategy import LatestArtifactStrategy
from tfx.types import artifact_utils, standard_artifacts
from tfx.utils import io_utils

from pipeline import drift as drift_checks

REPORT_FILE = "validation.json"
_STATS_FILE = "FeatureStats.pb"
_ANOMALIES_FILE = "SchemaDiff.pb"
GATE_FIRST_LINE = "Data validation failed"


class ValidatedStatistics(standard_artifacts.ExampleStatistics):
    """Statistics of data that passed the gate: the baseline for drift checks."""

    TYPE_NAME = "ValidatedStatistics"


class LatestIfAnyStrategy(LatestArtifactStrategy):
    """The latest artifact, or nothing on a first run (not a resolution failure).

    TFX's LatestArtifactStrategy reports an error, and records a FAILED
    resolver execution, whenever no artifact exists yet, which is every first
    run here. Kubeflow V2 only compiles TFX's own strategy classes, so
    `create_pipeline` uses this one for local runs only.
    """

    def resolve_artifacts(self, store, input_dict):
        return self._resolve(input_dict)


class DataValidationError(RuntimeError):
    """The data breaks the schema or drifted; the message says how, per feature."""


def _type_name(reason: anomalies_pb2.AnomalyInfo.Reason) -> str:
    return anomalies_pb2.AnomalyInfo.Type.Name(reason.type)


def findings(anomalies: anomalies_pb2.Anomalies, split: str) -> list[dict]:
    """One dict per (feature, reason) of an Anomalies proto."""
    result = []
    for feature, info in sorted(anomalies.anomaly_info.items()):
        for reason in info.reason:
            result.append(
                {
                    "feature": feature,
                    "split": split,
                    "type": _type_name(reason),
                    "description": reason.description or info.description,
                }
            )
    if anomalies.HasField("dataset_anomaly_info"):
        for reason in anomalies.dataset_anomaly_info.reason:
            result.append(
                {"feature": "(dataset)", "split": split, "type": _type_name(reason),
                 "description": reason.description}
            )
    return result


def is_allowed(finding: dict, allowed: list[str]) -> bool:
    """True when `allowed` names the finding's feature, or feature:TYPE."""
    return any(
        entry == finding["feature"] or entry == f"{finding['feature']}:{finding['type']}"
        for entry in allowed
    )


def parse_allowed(text: str) -> list[str]:
    return [entry.strip() for entry in text.split(",") if entry.strip()]


def presence_findings(
    statistics: statistics_pb2.DatasetFeatureStatisticsList, schema, split: str
) -> list[dict]:
    """Columns with a value in fewer rows than the schema's presence.min_fraction.

    An empty CSV cell reaches the statistics as a present feature with no
    values, so the fraction of rows with a value is total values / rows (each
    column holds at most one value per row).
    """
    dataset = statistics.datasets[0]
    stats = {f.path.step[0]: f for f in dataset.features}
    result = []
    for feature in schema.feature:
        wanted = feature.presence.min_fraction
        if not wanted or feature.name not in stats or not dataset.num_examples:
            continue
        kind = stats[feature.name]
        common = (kind.string_stats if kind.HasField("string_stats") else kind.num_stats)
        fraction = common.common_stats.tot_num_values / dataset.num_examples
        if fraction < wanted:
            result.append(
                {
                    "feature": feature.name,
                    "split": split,
                    "type": "LOW_PRESENCE",
                    "description": f"has a value in {fraction:.1%} of rows; "
                    f"the schema requires at least {wanted:.0%}",
                }
            )
    return result


def failure_message(blocking: list[dict], compared: str = "") -> str:
    """What failed, per feature, what was compared, and what the user can do about it."""
    features = sorted({f["feature"] for f in blocking})
    lines = [
        f"{GATE_FIRST_LINE}: {len(features)} feature(s) break the schema or drifted; "
        "nothing was trained or pushed:"
    ]
    for f in blocking:
        lines.append(f"  - {f['feature']} ({f['split']} split): {f['description']} [{f['type']}]")
    if compared:
        lines.append(f"Data checked: {compared}.")
    lines.append(
        "Fix the data, update schema/schema.pbtxt if the change is expected, or proceed "
        "knowingly with --allow-anomaly FEATURE[:TYPE] (e.g. --allow-anomaly "
        f"{blocking[0]['feature']}:{blocking[0]['type']})."
    )
    return "\n".join(lines)


def evaluate(
    schema_findings: list[dict], drift: list[dict], allowed: list[str]
) -> tuple[list[dict], list[dict]]:
    """(blocking, allowed) findings."""
    everything = schema_findings + drift
    blocking = [f for f in everything if not is_allowed(f, allowed)]
    return blocking, [f for f in everything if is_allowed(f, allowed)]


def _load_split_stats(artifact, split: str) -> statistics_pb2.DatasetFeatureStatisticsList:
    return tfdv.load_stats_binary(
        os.path.join(artifact_utils.get_split_uri([artifact], split), _STATS_FILE)
    )


@component
def DataValidationGate(  # noqa: N802 - TFX components are named like classes
    statistics: InputArtifact[standard_artifacts.ExampleStatistics],
    schema: InputArtifact[standard_artifacts.Schema],
    anomalies: InputArtifact[standard_artifacts.ExampleAnomalies],
    validated_statistics: OutputArtifact[ValidatedStatistics],
    baseline_statistics: InputArtifact[ValidatedStatistics] = None,
    examples: InputArtifact[standard_artifacts.Examples] = None,
    allowed_anomalies: Parameter[str] = "",
) -> None:
    """Fail the run on schema anomalies or drift unless explicitly allowed."""
    curated = io_utils.SchemaReader().read(io_utils.get_only_uri_in_dir(schema.uri))
    schema_findings = []
    for split in artifact_utils.decode_split_names(anomalies.split_names):
        path = os.path.join(artifact_utils.get_split_uri([anomalies], split), _ANOMALIES_FILE)
        schema_findings += findings(anomalies_util.load_anomalies_binary(path), split)
        schema_findings += presence_findings(_load_split_stats(statistics, split), curated, split)
    current, baseline, baseline_span = _load_split_stats(statistics, "train"), None, None
    if baseline_statistics is not None:
        baseline = _load_split_stats(baseline_statistics, "train")
        baseline_span = baseline_statistics.span
    drift = [] if baseline is None else drift_checks.drift_findings(current, baseline, curated)
    span = _span(examples) if examples is not None else statistics.span
    compared = drift_checks.comparison(span, current, baseline_span, baseline)
    blocking, allowed = evaluate(schema_findings, drift, parse_allowed(allowed_anomalies))
    if blocking:
        raise DataValidationError(failure_message(blocking, compared))
    _publish(statistics, validated_statistics, allowed, baseline_statistics is not None, compared)
    validated_statistics.span = span


def _span(examples) -> int:
    """The span ExampleGen read. TFX 1.16 records it as a custom property of Examples,
    which StatisticsGen does not copy (its statistics say span 0)."""
    if examples.has_custom_property("span"):
        return examples.get_int_custom_property("span")
    return examples.span


def _publish(
    statistics, validated, allowed: list[dict], drift_checked: bool, compared: str
) -> None:
    """Copy the accepted statistics and record what was allowed through."""
    validated.split_names = statistics.split_names
    validated.span = statistics.span
    for split in artifact_utils.decode_split_names(statistics.split_names):
        source = os.path.join(artifact_utils.get_split_uri([statistics], split), _STATS_FILE)
        target_dir = artifact_utils.get_split_uri([validated], split)
        tf.io.gfile.makedirs(target_dir)
        if tf.io.gfile.exists(os.path.join(target_dir, _STATS_FILE)):
            tf.io.gfile.remove(os.path.join(target_dir, _STATS_FILE))
        tf.io.gfile.copy(source, os.path.join(target_dir, _STATS_FILE))
    report = {"allowed_anomalies": allowed, "drift_checked": drift_checked, "compared": compared}
    io_utils.write_string_file(os.path.join(validated.uri, REPORT_FILE), json.dumps(report))


__all__ = ["DataValidationGate", "DataValidationError", "ValidatedStatistics"]
