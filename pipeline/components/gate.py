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
node, which open-source Kubeflow Pipelines cannot run. A refusal records its
findings beside that file instead (`baseline.record_refusal`), for the report,
which so never recomputes them.
"""

import json
import os
from dataclasses import dataclass

import tensorflow as tf
import tensorflow_data_validation as tfdv
from tensorflow_data_validation.utils import anomalies_util
from tensorflow_metadata.proto.v0 import statistics_pb2
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact_utils, standard_artifacts
from tfx.utils import io_utils

from artifact_types import ValidatedStatistics
from metadata import names
from metadata.artifacts import by_name, present_share
from models import features
from pipeline.components import drift as drift_checks
from pipeline.components.baseline import (
    read_accepted_statistics,
    record_accepted_statistics,
    record_refusal,
)
from pipeline.components.csv_example_gen import SPLIT_ROWS_PROPERTY
from pipeline.components.findings import evaluate, finding_line, findings, parse_allowed

REPORT_FILE = names.GATE_REPORT_FILE  # read back by metadata.outcome (data_checked)
_STATS_FILE = "FeatureStats.pb"
_ANOMALIES_FILE = "SchemaDiff.pb"
GATE_FIRST_LINE = names.GATE_FIRST_LINE


class DataValidationError(RuntimeError):
    """The data breaks the schema or drifted; the message says how, per feature."""


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


def _load_split_stats(artifact, split: str) -> statistics_pb2.DatasetFeatureStatisticsList:
    return tfdv.load_stats_binary(
        os.path.join(artifact_utils.get_split_uri([artifact], split), _STATS_FILE)
    )


@dataclass
class GateFindings:
    """What the gate found in one drop of data, and what it compared it with."""

    blocking: list[dict]  # findings that stop the run
    allowed: list[dict]  # findings the user let through with --allow-anomaly
    compared: str  # what was read and compared, in words (drift.comparison)


def gate_findings(statistics, schema, anomalies, examples, record: dict | None,
                  allowed_anomalies: str) -> GateFindings:
    """Every finding of the gate: schema anomalies and presence per split, drift of the
    train split against the accepted statistics `record` points at (None: no drift check)."""
    found = []
    for split in artifact_utils.decode_split_names(anomalies.split_names):
        path = os.path.join(artifact_utils.get_split_uri([anomalies], split), _ANOMALIES_FILE)
        found += findings(anomalies_util.load_anomalies_binary(path), split)
        found += presence_findings(_load_split_stats(statistics, split), schema, split)
    current = _load_split_stats(statistics, "train")
    baseline = None if record is None else _load_split_stats(_accepted_artifact(record), "train")
    if baseline is not None:
        found += drift_checks.drift_findings(current, baseline, schema)
    compared = drift_checks.comparison(
        _span(examples) if examples is not None else statistics.span, current,
        record.get("span") if record else None, baseline, _train_rows(examples),
        record.get("train_rows") if record else None)
    blocking, allowed = evaluate(found, parse_allowed(allowed_anomalies))
    return GateFindings(blocking, allowed, compared)


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
    """Fail the run on schema anomalies or drift unless explicitly allowed.

    A refusal publishes nothing (TFX records a failed execution without
    outputs), so the findings are recorded beside the pointer file
    (`baseline.record_refusal`), where the report reads them.
    """
    curated = io_utils.SchemaReader().read(io_utils.get_only_uri_in_dir(schema.uri))
    record = read_accepted_statistics(accepted_statistics_file)
    found = gate_findings(statistics, curated, anomalies, examples, record, allowed_anomalies)
    if found.blocking:
        record_refusal(accepted_statistics_file, statistics.uri, {
            "findings": found.blocking, "allowed": found.allowed,
            "compared": found.compared, "baseline": record,
        })
        raise DataValidationError(failure_message(found.blocking, found.compared))
    span = _span(examples) if examples is not None else statistics.span
    _publish(statistics, validated_statistics, found.allowed, record, found.compared)
    validated_statistics.span = span
    record_accepted_statistics(accepted_statistics_file, {
        "uri": validated_statistics.uri,
        "split_names": validated_statistics.split_names,
        "statistics_uri": statistics.uri,
        "span": span,
        "train_rows": _train_rows(examples),
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


__all__ = ["DataValidationGate", "DataValidationError", "GateFindings", "ValidatedStatistics",
           "finding_line", "findings", "gate_findings", "parse_allowed"]
