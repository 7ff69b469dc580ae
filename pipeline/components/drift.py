"""Drift of a new drop of data against the last accepted one, without crying wolf.

TFDV's approximate Jensen-Shannon divergence compares numeric features through
their 10 equal-width histogram buckets, which span [min, max]: one 700-dollar
fare in a drop moves every bucket boundary, and two random halves of the same
rows read 0.33 on `fare` (tensorflow/data-validation#216, #207). A check that
refuses same-distribution drops gets switched off, and then it catches nothing.
So the gate compares, per feature (docs/drift.md has the measurements):

* numeric features in `NUMERIC_DRIFT`: the largest gap between the two
  cumulative distributions (the Kolmogorov-Smirnov distance), read from the
  quantiles StatisticsGen already computes. It ignores the extremes, where a
  single outlier lives, and means the same at every sample size;
* categorical features with a `drift_comparator` in the schema: TFDV's own
  L-infinity distance between the value frequencies (it behaves: each
  frequency is a proportion, whose noise is small and known);
* every feature: the share of rows with a value (a column going empty).

A distance is a finding only if it is both larger than the configured
threshold (how much change matters) and larger than what sampling noise alone
produces at these two sample sizes with probability 1/1000 (so small drops are
not refused for noise, and large ones not for trivia).
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import statistics_pb2

from metadata.artifacts import present_share
from pipeline.components.findings import findings

# Numeric feature -> largest allowed distance between the baseline's and the new
# drop's cumulative distributions: 0.05 means no value may have 5 % more or fewer
# of the rows below it than before. trip_start_timestamp and trip_start_month
# are left out on purpose: every new span is later, and seasons change.
NUMERIC_DRIFT: dict[str, float] = {
    "fare": 0.05,
    "trip_miles": 0.05,
    "trip_seconds": 0.05,
    "trip_start_hour": 0.05,
}
# The share of rows with a value may fall by at most this much (absolute).
MAX_PRESENCE_DROP = 0.1
# Two-sample Kolmogorov-Smirnov critical value c(alpha) = sqrt(-ln(alpha / 2) / 2)
# and the normal quantile for a two-sided test, both at alpha = 0.001.
KS_C_ALPHA = math.sqrt(-math.log(0.001 / 2) / 2)
Z_ALPHA = 3.29

_DRIFT_TYPE = "COMPARATOR_DISTRIBUTION_DRIFT"  # numeric: not one of TFDV's comparator types
_PRESENCE_TYPE = "PRESENCE_DRIFT"


def _by_name(statistics: statistics_pb2.DatasetFeatureStatisticsList) -> dict:
    return {f.path.step[0]: f for f in statistics.datasets[0].features if f.path.step}


def _quantile_cdf(num_stats) -> tuple[np.ndarray, np.ndarray, float] | None:
    """(boundaries, share of values at or below each, number of values), from TFDV's quantiles."""
    histogram = next(
        (h for h in num_stats.histograms if h.type == statistics_pb2.Histogram.QUANTILES), None
    )
    if histogram is None or not histogram.buckets:
        return None
    counts = np.array([b.sample_count for b in histogram.buckets])
    total = counts.sum()
    if total <= 0:
        return None
    xs = np.array([histogram.buckets[0].low_value] + [b.high_value for b in histogram.buckets])
    cdf = np.concatenate([[0.0], np.cumsum(counts) / total])
    # Equal boundaries (a value held by many rows): the CDF takes its value after the jump.
    keep = np.append(xs[1:] != xs[:-1], True)
    return xs[keep], cdf[keep], float(total)


def cdf_distance(current_num_stats, baseline_num_stats) -> tuple[float, float, float] | None:
    """(largest CDF gap, values in current, values in baseline), or None without quantiles.

    The gap is read at each side's inner quantile boundaries, where one side's
    CDF is known; the other side's is interpolated between its own
    boundaries. The minimum and maximum are not compared: they are single
    rows.
    """
    current, baseline = _quantile_cdf(current_num_stats), _quantile_cdf(baseline_num_stats)
    if current is None or baseline is None:
        return None
    points = np.concatenate([current[0][1:-1], baseline[0][1:-1]])
    if not len(points):
        return 0.0, current[2], baseline[2]
    gaps = np.abs(
        np.interp(points, current[0], current[1], left=0.0, right=1.0)
        - np.interp(points, baseline[0], baseline[1], left=0.0, right=1.0)
    )
    return float(gaps.max()), current[2], baseline[2]


def ks_noise(n: float, m: float) -> float:
    """The CDF gap two samples of one distribution exceed with probability 1/1000.

    The asymptotic two-sample Kolmogorov-Smirnov bound, for a gap looked for
    everywhere; read at ~20 quantile boundaries only, the gap is smaller, so
    this errs on the side of not refusing. TFDV's quantiles sketch may misplace
    a boundary by 1 % of the rows (StatsOptions.epsilon); that matters only at
    sizes where the thresholds in NUMERIC_DRIFT (0.05) are the larger bar.
    """
    return KS_C_ALPHA * math.sqrt((n + m) / (n * m))


def proportion_noise(p: float, n: float, m: float) -> float:
    """The change in a share that sampling noise exceeds with probability 1/1000."""
    return Z_ALPHA * math.sqrt(max(p * (1 - p), 1e-12) * (1 / n + 1 / m))


def _finding(feature: str, kind: str, description: str) -> dict:
    return {"feature": feature, "split": "train", "type": kind, "description": description}


def numeric_findings(current, baseline, against: str = "previous") -> list[dict]:
    """NUMERIC_DRIFT features whose distribution moved more than allowed and than noise.

    `against` names the baseline in the messages (monitoring.check: "training")."""
    result = []
    now, before = _by_name(current), _by_name(baseline)
    for feature, threshold in NUMERIC_DRIFT.items():
        if feature not in now or feature not in before:
            continue
        measured = cdf_distance(now[feature].num_stats, before[feature].num_stats)
        if measured is None:
            continue
        gap, n, m = measured
        bar = max(threshold, ks_noise(n, m))
        if gap > bar:
            result.append(_finding(
                feature, _DRIFT_TYPE,
                f"The share of values below some point moved by {gap:.3f} (Kolmogorov-Smirnov "
                f"distance between current and {against}, {n:,.0f} vs {m:,.0f} values), above "
                f"the allowed {bar:.3f} (threshold {threshold}, or sampling noise if larger).",
            ))
    return result


def presence_findings(current, baseline, against: str = "previous") -> list[dict]:
    """Features whose share of rows with a value fell by more than MAX_PRESENCE_DROP and noise."""
    result = []
    now, before = _by_name(current), _by_name(baseline)
    n, m = current.datasets[0].num_examples, baseline.datasets[0].num_examples
    if not n or not m:
        return result
    for feature in sorted(set(now) & set(before)):
        share, previous = present_share(now[feature], n), present_share(before[feature], m)
        pooled = (share * n + previous * m) / (n + m)
        drop = previous - share
        if drop > max(MAX_PRESENCE_DROP, proportion_noise(pooled, n, m)):
            result.append(_finding(
                feature, _PRESENCE_TYPE,
                f"has a value in {share:.1%} of rows, down from {previous:.1%} in the {against} "
                f"data (more than {MAX_PRESENCE_DROP:.0%} fewer).",
            ))
    return result


def categorical_findings(current, baseline, schema) -> list[dict]:
    """TFDV's comparators from the schema (L-infinity on value frequencies)."""
    anomalies = tfdv.validate_statistics(current, schema, previous_statistics=baseline)
    return [f for f in findings(anomalies, "train") if f["type"].startswith("COMPARATOR_")]


def drift_findings(
    current: statistics_pb2.DatasetFeatureStatisticsList,
    baseline: statistics_pb2.DatasetFeatureStatisticsList,
    schema,
) -> list[dict]:
    """Every drift finding of the new drop's train split against the accepted baseline."""
    return (
        categorical_findings(current, baseline, schema)
        + numeric_findings(current, baseline)
        + presence_findings(current, baseline)
    )


def _data(span: int | None, statistics, train_rows: int | None = None) -> str:
    """`train_rows`: the split's size when the statistics describe a sample of it."""
    described = int(statistics.datasets[0].num_examples)
    rows = f"{described:,} train rows"
    if train_rows and train_rows > described:
        rows = f"{train_rows:,} train rows, statistics of a uniform sample of {described:,}"
    return f"span {span} ({rows})" if span else f"the input files ({rows})"


def comparison(
    span: int | None,
    current,
    baseline_span: int | None,
    baseline,
    train_rows: int | None = None,
    baseline_train_rows: int | None = None,
) -> str:
    """What the gate read and what it compared it with, for the run summary and report."""
    read = _data(span, current, train_rows)
    if baseline is None:
        return f"read {read}; no data accepted before, so no drift check"
    return f"read {read}, compared with the last accepted data, " + _data(
        baseline_span, baseline, baseline_train_rows
    )


def is_drift(finding_type: str) -> bool:
    """True for the finding types these checks (and TFDV's comparators) report."""
    return finding_type.startswith("COMPARATOR_") or finding_type == _PRESENCE_TYPE
