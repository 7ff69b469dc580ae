"""The gate's drift checks (pipeline/components/drift.py) on real TFDV statistics.

Statistics come from TFDV in process, on record batches typed as our
CsvExampleGen types them (benchmarks/drift.py); `test_in_process_statistics_
match_statistics_gen` checks that those are the statistics StatisticsGen
computes in a pipeline run, so the benchmark measures what the gate sees.
"""

from __future__ import annotations

import glob
import os

import numpy as np
import pytest

from benchmarks import drift as bench
from pipeline.components import drift

SPAN_ROWS = 2_000  # the smallest span size measured in docs/drift.md


@pytest.fixture(scope="module")
def rows():
    return bench.load_rows()


@pytest.fixture(scope="module")
def schema():
    import tensorflow_data_validation as tfdv

    return tfdv.load_schema_text(str(bench.SCHEMA))


def _stats(frame, types):
    import tensorflow_data_validation as tfdv
    from tensorflow_data_validation.statistics import stats_impl

    return stats_impl.generate_statistics_in_memory(
        bench.to_record_batch(frame, types), tfdv.StatsOptions()
    )


@pytest.fixture(scope="module")
def two_drops(rows):
    """(baseline, new drop) statistics: disjoint random 2,000-row spans' train splits."""
    frame, types = rows
    rng = np.random.default_rng(1)
    order = rng.permutation(len(frame))
    count = bench.train_rows(SPAN_ROWS)
    base, new = frame.iloc[order[:count]], frame.iloc[order[count : 2 * count]]
    return base, new, _stats(base, types)


def test_a_same_distribution_drop_has_no_drift(rows, two_drops, schema):
    frame, types = rows
    _, new, baseline = two_drops
    assert drift.drift_findings(_stats(new, types), baseline, schema) == []


@pytest.mark.parametrize(
    "shift, feature, kind",
    [
        (bench.fares_up(1.2), "fare", "COMPARATOR_DISTRIBUTION_DRIFT"),
        (bench.hours_in_utc, "trip_start_hour", "COMPARATOR_DISTRIBUTION_DRIFT"),
        (bench.more_credit_cards, "payment_type", "COMPARATOR_L_INFTY_HIGH"),
        (bench.blanked("dropoff_census_tract", 0.3), "dropoff_census_tract", "PRESENCE_DRIFT"),
    ],
    ids=["fare-scale", "hour-window", "payment-mix", "column-emptying"],
)
def test_a_real_shift_is_named(rows, two_drops, schema, shift, feature, kind):
    frame, types = rows
    _, new, baseline = two_drops
    found = drift.drift_findings(_stats(shift(new, np.random.default_rng(2)), types), baseline,
                                 schema)
    assert [(f["feature"], f["type"]) for f in found] == [(feature, kind)], found


def test_the_noise_bar_rises_for_small_samples():
    # 100 values a side: a 0.2 CDF gap is within noise; at 40,000 a side it is not.
    assert drift.ks_noise(100, 100) > 0.2 > drift.ks_noise(40_000, 40_000)
    assert drift.proportion_noise(0.5, 100, 100) > 0.2 > drift.proportion_noise(0.5, 1e4, 1e4)


def test_an_outlier_does_not_move_the_distance(rows, two_drops, schema):
    """One fare of 3,000 (TFDV's old check read this as drift): the quantiles barely move."""
    frame, types = rows
    _, new, baseline = two_drops
    new = new.copy()
    new.iloc[0, new.columns.get_loc("fare")] = 3000.0
    assert drift.numeric_findings(_stats(new, types), baseline) == []


@pytest.mark.e2e
def test_in_process_statistics_match_statistics_gen(pipeline_run):
    """The benchmark's statistics are StatisticsGen's: same rows in, same quantiles out."""
    import tensorflow as tf
    import tensorflow_data_validation as tfdv
    from tensorflow_data_validation.statistics import stats_impl
    from tfx_bsl.coders import example_coder

    root = pipeline_run.output_dir / "pipeline_root"
    examples = glob.glob(str(root / "CsvExampleGen" / "examples" / "*" / "Split-train" / "*.gz"))
    produced = glob.glob(str(root / "StatisticsGen" / "statistics" / "*" / "Split-train"
                             / "FeatureStats.pb"))
    assert examples and len(produced) == 1
    records = list(tf.data.TFRecordDataset(examples, compression_type="GZIP").as_numpy_iterator())
    batch = example_coder.ExamplesToRecordBatchDecoder().DecodeBatch(records)
    ours = stats_impl.generate_statistics_in_memory(batch, tfdv.StatsOptions())
    theirs = tfdv.load_stats_binary(produced[0])
    assert ours.datasets[0].num_examples == theirs.datasets[0].num_examples
    for name in [*drift.NUMERIC_DRIFT, "payment_type", "company"]:
        a, b = (next(f for f in s.datasets[0].features if f.path.step[0] == name)
                for s in (ours, theirs))
        if name in drift.NUMERIC_DRIFT:
            mine, gens = drift._quantile_cdf(a.num_stats), drift._quantile_cdf(b.num_stats)
            assert np.allclose(mine[0], gens[0], rtol=1e-3), name
            assert np.allclose(mine[1], gens[1], atol=tfdv.StatsOptions().epsilon), name
        else:
            assert [(v.value, v.frequency) for v in a.string_stats.top_values] == [
                (v.value, v.frequency) for v in b.string_stats.top_values], name
    assert os.path.getsize(produced[0]) > 0
