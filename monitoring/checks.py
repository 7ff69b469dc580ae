"""The checks of a window of served requests, on TFDV statistics.

Each check reuses the pipeline's own definitions, so a request window is
judged like a new span of training data: the curated schema in its SERVING
environment (types, domains, presence), training-serving skew (the schema's
`skew_comparator`s for categorical columns; the Kolmogorov-Smirnov distance
with its sampling-noise bar and the presence drop of
`pipeline/components/drift.py` for the rest), the gate's drift checks against
the previous window that passed, and the served probabilities against the
probabilities the same model gives the eval split. Findings are the gate's
dicts (feature, split, type, description); `benchmarks.monitoring` measures
their false alarms and detections.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import statistics_pb2

from pipeline.components import drift
from pipeline.components.gate import findings

SPLIT = "requests"
PROBABILITY = "probability"  # the served output, as a "feature" in findings
# Largest allowed gap between the cumulative distributions of served and eval
# probabilities (as NUMERIC_DRIFT for the inputs); sampling noise may raise it.
PROBABILITY_DRIFT = 0.05
SERVING = "SERVING"


def request_statistics(examples: Sequence[bytes]) -> statistics_pb2.DatasetFeatureStatisticsList:
    """TFDV statistics of serialized tf.Examples, with StatisticsGen's default options.

    Decoded without a schema, so a column the schema does not know is seen
    (and reported), and a column that stopped arriving is absent.
    """
    from tensorflow_data_validation.statistics import stats_impl
    from tfx_bsl.coders import example_coder

    batch = example_coder.ExamplesToRecordBatchDecoder().DecodeBatch(list(examples))
    return stats_impl.generate_statistics_in_memory(batch, tfdv.StatsOptions())


def _as_requests(found: list[dict], check: str) -> list[dict]:
    return [{**f, "split": SPLIT, "check": check} for f in found]


def schema_findings(requests, schema) -> list[dict]:
    """Anomalies of the requests against the schema's SERVING environment."""
    anomalies = tfdv.validate_statistics(requests, schema, environment=SERVING)
    return _as_requests(findings(anomalies, SPLIT), "schema")


def skew_findings(requests, training, schema) -> list[dict]:
    """Training-serving skew: requests against the training statistics of the served model."""
    anomalies = tfdv.validate_statistics(training, schema, serving_statistics=requests)
    categorical = [f for f in findings(anomalies, SPLIT) if f["type"].startswith("COMPARATOR_")]
    numeric = drift.numeric_findings(requests, training, against="training")
    presence = drift.presence_findings(requests, training, against="training")
    return _as_requests(categorical + numeric + presence, "skew")


def drift_findings(requests, previous, schema) -> list[dict]:
    """The gate's drift checks against the previous window that passed (none: no check)."""
    if previous is None:
        return []
    return _as_requests(drift.drift_findings(requests, previous, schema), "drift")


def ks_distance(a: np.ndarray, b: np.ndarray) -> float:
    """The largest gap between the empirical cumulative distributions of two samples
    (the two-sample Kolmogorov-Smirnov statistic, from scipy)."""
    from scipy.stats import ks_2samp

    return float(ks_2samp(np.asarray(a, float), np.asarray(b, float)).statistic)


def probability_findings(served: np.ndarray, reference: np.ndarray | None) -> list[dict]:
    """Served probabilities whose distribution moved away from the eval split's."""
    if reference is None or not len(served) or not len(reference):
        return []
    gap = ks_distance(served, reference)
    bar = max(PROBABILITY_DRIFT, drift.ks_noise(len(served), len(reference)))
    if gap <= bar:
        return []
    return [{
        "feature": PROBABILITY, "split": SPLIT, "check": "predictions",
        "type": "PREDICTION_DRIFT",
        "description": f"The share of served probabilities below some point moved by {gap:.3f} "
        f"(Kolmogorov-Smirnov distance between {len(served):,} served and {len(reference):,} "
        f"eval-split probabilities of the same model), above the allowed {bar:.3f} "
        f"(threshold {PROBABILITY_DRIFT}, or sampling noise if larger).",
    }]


def all_findings(requests, training, previous, schema, served=None, reference=None) -> list[dict]:
    """Every finding of a window: schema, skew, drift, probabilities."""
    return (schema_findings(requests, schema) + skew_findings(requests, training, schema)
            + drift_findings(requests, previous, schema)
            + probability_findings(np.asarray(served if served is not None else []), reference))
