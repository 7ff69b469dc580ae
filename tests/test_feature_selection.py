"""The feature-selection rules on crafted statistics and rows."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2

from models import features
from pipeline.components import feature_selection as fs

N = 4000


def _stats(
    present: dict[str, int], constant: set[str] = frozenset()
) -> statistics_pb2.DatasetFeatureStatistics:
    """Statistics as TFDV computes them from our examples: every row holds a value
    list (an empty cell is an empty list, so `num_non_missing` is N), and `count`
    rows hold a value (`tot_num_values`); tests/test_presence.py checks this on
    statistics of real CSV rows."""
    stats = statistics_pb2.DatasetFeatureStatistics(num_examples=N)
    for name, count in present.items():
        feature = stats.features.add()
        feature.path.step.append(name)
        if name in ("payment_type", "company"):
            common = feature.string_stats.common_stats
            feature.string_stats.unique = 1 if name in constant else 5
        else:
            common = feature.num_stats.common_stats
            feature.num_stats.min = 0.0
            feature.num_stats.max = 0.0 if name in constant else 10.0
        common.num_non_missing, common.tot_num_values = N, count
    return stats


def _table(rng: np.random.Generator) -> pa.Table:
    """payment decides most of the label; fare decides the rest; hour is noise."""
    payment = rng.choice(["Cash", "Credit Card"], size=N)
    fare = rng.uniform(3, 50, size=N)
    card = payment == "Credit Card"
    tips = np.where(card & (fare < 40), 0.3 * fare, 0.05 * fare * card)
    hour = rng.integers(0, 24, size=N)
    return pa.table(
        {
            "payment_type": pa.array([[p] for p in payment], pa.list_(pa.binary())),
            "fare": pa.array([[f] for f in fare], pa.list_(pa.float32())),
            "tips": pa.array([[t] for t in tips], pa.list_(pa.float32())),
            "trip_start_hour": pa.array([[int(h)] for h in hour], pa.list_(pa.int64())),
            "trip_miles": pa.array([[1.0]] * N, pa.list_(pa.float32())),
            "pickup_census_tract": pa.array([[]] * N, pa.list_(pa.int64())),
        }
    )


@pytest.fixture(scope="module")
def decisions() -> dict[str, fs.Decision]:
    stats = _stats(
        {"payment_type": N, "fare": N, "trip_start_hour": N, "trip_miles": N,
         "pickup_census_tract": 1},
        constant={"trip_miles"},
    )
    table = _table(np.random.default_rng(0))
    result = fs.decide(stats, table, min_presence=0.05, min_information=0.008)
    return {d.feature: d for d in result}


def test_the_most_informative_column_anchors_the_selection(decisions):
    assert decisions["payment_type"].selected
    assert "most informative" in decisions["payment_type"].reason


def test_a_column_informative_beyond_the_anchor_is_kept(decisions):
    assert decisions["fare"].selected
    assert decisions["fare"].conditional_bits > 0.1


def test_noise_is_dropped(decisions):
    hour = decisions["trip_start_hour"]
    assert not hour.selected
    assert hour.conditional_bits < 0.008
    assert "beyond payment_type" in hour.reason


def test_rarely_present_and_constant_columns_are_dropped(decisions):
    assert not decisions["pickup_census_tract"].selected
    assert "present in 0.0% of rows" in decisions["pickup_census_tract"].reason
    assert not decisions["trip_miles"].selected
    assert decisions["trip_miles"].reason == "a single distinct value"


def test_columns_absent_from_the_data_are_not_selected(decisions):
    assert not decisions["company"].selected
    assert decisions["company"].reason == "absent from the data"
    assert set(decisions) == set(features.CANDIDATE_FEATURES)


def test_mutual_information_of_independent_columns_is_about_zero():
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 10, size=20000)
    label = rng.integers(0, 2, size=20000)
    assert fs.mutual_information_bits(codes, label) < 0.001
    assert fs.mutual_information_bits(label, label) == pytest.approx(1.0, abs=0.01)


def test_selected_schema_drops_unselected_columns_but_keeps_label_sources():
    schema = schema_pb2.Schema()
    for name in ("fare", "tips", "company", "payment_type", "trip_start_timestamp"):
        schema.feature.add(name=name)
    decisions = [
        fs.Decision("fare", False, "", 1.0, 2),
        fs.Decision("company", False, "", 1.0, 2),
        fs.Decision("payment_type", True, "", 1.0, 2),
    ]
    kept = [f.name for f in fs.selected_schema(schema, decisions).feature]
    assert kept == ["fare", "tips", "payment_type"]


def test_the_information_test_measures_what_chance_gives_a_many_valued_column():
    """A column of 500 random values on 1,600 rows: the plug-in estimate is far
    above zero, but no more than shuffled labels give it."""
    rng = np.random.default_rng(2)
    n = 1600
    anchor = rng.integers(0, 3, size=n)
    label = (rng.random(n) < np.where(anchor == 0, 0.05, 0.6)).astype(np.int64)
    test = fs.InformationTest(label, anchor, permutations=100)
    noise = test.measure(rng.integers(0, 500, size=n))
    assert noise.observed_bits > 0.1  # what a fixed bar on the plug-in value would see
    assert abs(noise.excess_bits) < 0.02 and noise.p_value > 0.05
    signal = test.measure(label * 2 + (rng.random(n) < 0.1))
    assert signal.excess_bits > 0.3 and signal.p_value == pytest.approx(1 / 101)


def test_a_small_span_does_not_select_a_census_tract(tmp_path):
    """6,000 train rows of the shipped data (about a half of it, as in the issue):
    the plug-in estimate puts dropoff_census_tract over 0.008 bits beyond the
    payment type, the rule sees that most of it is what chance gives."""
    from benchmarks.drift import load_rows
    from benchmarks.selection import decide_sample
    from pipeline.configs import FeatureSelectionSettings

    frame, types = load_rows()
    rows = np.random.default_rng(34).choice(len(frame), size=6000, replace=False)
    decisions = {d.feature: d for d in decide_sample(frame, types, rows,
                                                     FeatureSelectionSettings())}
    tract = decisions["dropoff_census_tract"]
    assert not tract.selected
    assert tract.conditional_bits + tract.chance_bits > 0.008  # the plug-in value
    assert tract.conditional_bits < 0.008 and "by chance" in tract.reason
    assert {"payment_type", "fare", "trip_seconds"} <= {
        name for name, d in decisions.items() if d.selected}

