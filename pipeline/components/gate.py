"""The validation gate: bad data stops the run before Transform and Trainer.

TFX's ExampleValidator records anomalies but stops nothing. This step reads
what it recorded, adds drift against the last *accepted* data (the statistics a
previous run's gate let through), and fails the run, naming every feature and
what is wrong with it, unless the user explicitly allowed that anomaly
(`--allow-anomaly FEATURE[:TYPE]`).

On success it publishes `ValidatedStatistics` (a copy of the statistics it
accepted) and points `<pipeline_root>/baselines/accepted_statistics.json` at
it (pipeline/components/baseline.py): the baseline the next run's drift check compares
against. A failed gate publishes nothing, so drifted data never becomes the
new baseline. The gate reads that file itself rather than through a Resolver
node, which open-source Kubeflow Pipelines cannot run.
"""

import json
import os

import tensorflow as tf
import tensorflow_data_validation as tfdv
from tensorflow_data_validation.utils import anomalies_util
from tensorflow_metadata.proto.v0 import anomalies_pb2, statistics_pb2
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact_utils, standard_artifacts
from tfx.utils import io_utils

from artifact_types import ValidatedStatistics
from metadata import names
from metadata.artifacts import by_name, present_share, visible
from models import features
from pipeline.components import drift as drift_checks
from pipeline.components.baseline import read_accepted_statistics, record_accepted_statistics
from pipeline.components.csv_example_gen import SPLIT_ROWS_PROPERTY

REPORT_FILE = names.GATE_REPORT_FILE  # read back by local.summary and the report
_STATS_FILE = "FeatureStats.pb"
_ANOMALIES_FILE = "SchemaDiff.pb"
GATE_FIRST_LINE = names.GATE_FIRST_LINE


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

    "Has a value" is `metadata.artifacts.present_share` (an empty CSV cell is
    not a value), the same definition feature selection applies.
    """
    dataset = statistics.datasets[0]
    stats = by_name(dataset)
    result = []
    for feature in schema.feature:
        wanted = feature.presence.min_fraction
        if not wanted or feature.name not in stats or not dataset.num_examples:
            continue
        fraction = present_share(stats[feature.name], dataset.num_examples)
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


def finding_line(finding: dict) -> str:
    """One finding as the gate prints it (monitoring.check prints its findings the same way)."""
    return (f"  - {visible(finding['feature'])} ({finding['split']} split): "
            f"{finding['description']} [{finding['type']}]")


def failure_message(blocking: list[dict], compared: str = "") -> str:
    """What failed, per feature, what was compared, and what the user can do about it."""
    features = sorted({f["feature"] for f in blocking})
    lines = [
        f"{GATE_FIRST_LINE}: {len(features)} feature(s) break the schema or drifted; "
        "nothing was trained or pushed:"
    ]
    lines.extend(finding_line(f) for f in blocking)
    if compared:
        lines.append(f"Data checked: {compared}.")
    lines.extend(remedy_hint(blocking))
    return "\n".join(lines)


# The columns the label is computed from (big_tipper = tips > 0.2 x fare).
LABEL_SOURCES = (features.TIPS_KEY, features.FARE_KEY)


def remedy_hint(blocking: list[dict]) -> list[str]:
    """The closing lines of a gate failure: what the user can do.

    `--allow-anomaly` is suggested only for a feature it can sensibly let
    through. A schema anomaly of a label source (missing column, text in a
    number column, ...) means the label cannot be computed: letting it through
    would train without a label, so it is never suggested. Drift of a label
    source leaves the label computable, but is not offered as the example either.
    """
    broken = sorted({
        f["feature"] for f in blocking
        if f["feature"] in LABEL_SOURCES and not drift_checks.is_drift(f["type"])
    })
    lines = []
    if broken:
        lines.append(
            f"The label {features.LABEL_KEY} ({features.TIPS_KEY} > "
            f"{features.BIG_TIP_FRACTION:g} x {features.FARE_KEY}) cannot be computed from this "
            f"data: fix {' and '.join(broken)} in the data; --allow-anomaly cannot let the "
            "label's source through."
        )
    allowable = [f for f in blocking if f["feature"] not in LABEL_SOURCES]
    if allowable:
        example = allowable[0]
        lines.append(
            "Fix the data, update schema/schema.pbtxt if the change is expected, or proceed "
            "knowingly with --allow-anomaly FEATURE[:TYPE] (e.g. --allow-anomaly "
            f"{example['feature']}:{example['type']})."
        )
    elif not broken:
        lines.append(
            "Fix the data, or update schema/schema.pbtxt (its drift thresholds) if the "
            "change is expected."
        )
    return lines


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
    accepted_statistics_file: Parameter[str],
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
    current = _load_split_stats(statistics, "train")
    record = read_accepted_statistics(accepted_statistics_file)
    baseline, baseline_span = None, None
    if record is not None:
        baseline = _load_split_stats(_accepted_artifact(record), "train")
        baseline_span = record.get("span")
    drift = [] if baseline is None else drift_checks.drift_findings(current, baseline, curated)
    span = _span(examples) if examples is not None else statistics.span
    train_rows = _train_rows(examples)
    compared = drift_checks.comparison(
        span, current, baseline_span, baseline, train_rows,
        record.get("train_rows") if record else None)
    blocking, allowed = evaluate(schema_findings, drift, parse_allowed(allowed_anomalies))
    if blocking:
        raise DataValidationError(failure_message(blocking, compared))
    _publish(statistics, validated_statistics, allowed, record, compared)
    validated_statistics.span = span
    record_accepted_statistics(accepted_statistics_file, {
        "uri": validated_statistics.uri,
        "split_names": validated_statistics.split_names,
        "statistics_uri": statistics.uri,
        "span": span,
        "train_rows": train_rows,
    })


def _accepted_artifact(record: dict) -> ValidatedStatistics:
    """The ValidatedStatistics artifact a pointer record names."""
    artifact = ValidatedStatistics()
    artifact.uri = record["uri"]
    artifact.split_names = record["split_names"]
    return artifact


def _train_rows(examples) -> int | None:
    """The train split's rows, as the streaming ExampleGen recorded them (None: not recorded)."""
    if examples is None or not examples.has_custom_property(SPLIT_ROWS_PROPERTY):
        return None
    rows = (examples.get_json_value_custom_property(SPLIT_ROWS_PROPERTY) or {}).get("train")
    return None if rows is None else int(rows)


def _span(examples) -> int:
    """The span ExampleGen read. TFX 1.16 records it as a custom property of Examples,
    which StatisticsGen does not copy (its statistics say span 0)."""
    if examples.has_custom_property("span"):
        return examples.get_int_custom_property("span")
    return examples.span


def _publish(
    statistics, validated, allowed: list[dict], baseline: dict | None, compared: str
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
    report = {
        "allowed_anomalies": allowed,
        "drift_checked": baseline is not None,
        # Which accepted statistics the drift check compared against, and in words.
        "drift_baseline": baseline,
        "compared": compared,
    }
    io_utils.write_string_file(os.path.join(validated.uri, REPORT_FILE), json.dumps(report))


__all__ = ["DataValidationGate", "DataValidationError", "ValidatedStatistics"]
