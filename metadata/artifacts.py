"""The files inside artifacts, read without TensorFlow: statistics, anomalies, JSON reports.

Also the one definition of "a row has a value" (`present_share`), which the
gate's presence rule, its presence-drift check, feature selection and the
report all use. Our CsvExampleGen writes an empty CSV cell as a feature with an
empty value list, and TFDV counts such a row in `num_non_missing` (the list
exists) but adds nothing to `tot_num_values`; every column holds at most one
value per row, so values / rows is the share of rows with a value.
tests/test_presence.py checks this on statistics TFDV computes from real CSV
rows written by the executor.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os

from metadata import names

STATS_FILE = "FeatureStats.pb"
ANOMALIES_FILE = "SchemaDiff.pb"


def feature_name(feature) -> str:
    """A FeatureNameStatistics' column name (its path, or the legacy `name`)."""
    return feature.path.step[0] if feature.path.step else feature.name


def by_name(dataset) -> dict:
    """Column name -> FeatureNameStatistics of one DatasetFeatureStatistics."""
    return {feature_name(f): f for f in dataset.features}


def common_stats(feature):
    """The CommonStatistics of a numeric or string feature."""
    kind = feature.string_stats if feature.HasField("string_stats") else feature.num_stats
    return kind.common_stats


def present_share(feature, rows: int) -> float:
    """Share of `rows` in which the column has a value (an empty cell has none)."""
    return min(1.0, common_stats(feature).tot_num_values / rows) if rows else 0.0


def visible(name: str) -> str:
    """A column name as printed: escaped when it holds invisible characters.

    A byte-order mark glued to the first header name makes `\ufeffpickup_...`
    print exactly like `pickup_...`; escaped, the two findings can be told apart.
    The gate's messages and the report both print names this way.
    """
    return name if name.isprintable() else ascii(name)


def _split_files(uri: str, file_name: str) -> dict[str, str]:
    """Split name -> path of `file_name` in each `Split-*` folder of an artifact."""
    paths = sorted(glob.glob(os.path.join(uri, "Split-*", file_name)))
    return {os.path.basename(os.path.dirname(p)).removeprefix("Split-"): p for p in paths}


def load_statistics(uri: str) -> dict:
    """Split name -> DatasetFeatureStatistics of a StatisticsGen (or gate) output."""
    from tensorflow_metadata.proto.v0 import statistics_pb2

    result = {}
    for split, path in _split_files(uri, STATS_FILE).items():
        stats = statistics_pb2.DatasetFeatureStatisticsList()
        with open(path, "rb") as f:
            stats.ParseFromString(f.read())
        result[split] = stats.datasets[0]
    return result


def anomalies_by_split(uri: str) -> dict[str, object]:
    """ExampleAnomalies payload: split name -> tensorflow_metadata `Anomalies`."""
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    result = {}
    for split, path in _split_files(uri, ANOMALIES_FILE).items():
        anomalies = anomalies_pb2.Anomalies()
        with open(path, "rb") as f:
            anomalies.ParseFromString(f.read())
        result[split] = anomalies
    return result


def read_json(uri: str | None, file_name: str) -> dict | None:
    """The JSON file `file_name` a component wrote into artifact folder `uri`, if any."""
    path = os.path.join(uri, file_name) if uri else ""
    if not path or not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def refusal_file(pointer_file: str, statistics_uri: str) -> str:
    """Where the gate records why it refused the statistics at `statistics_uri`.

    A failed TFX execution publishes no output, so the gate writes its
    findings into the folder of the pointer to the statistics it last
    accepted (`<pipeline_root>/baselines/`), named by a digest of the refused
    statistics' uri, which ML Metadata records as the gate's input.
    """
    digest = hashlib.sha256(statistics_uri.encode()).hexdigest()[:16]
    return os.path.join(os.path.dirname(pointer_file), names.GATE_REFUSALS_DIR,
                        f"{digest}.json")


def read_refusal(pointer_file: str, statistics_uri: str) -> dict | None:
    """The gate's refusal record for those statistics: {"findings", "allowed", "compared",
    "baseline"} (`baseline`: the pointer record it compared with, or None); None when the
    gate recorded none (it accepted them, or ran before it recorded refusals)."""
    path = refusal_file(pointer_file, statistics_uri)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)
