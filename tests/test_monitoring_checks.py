"""monitoring's pieces on real statistics of the shipped rows, without a pipeline run."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks import drift as drift_bench
from benchmarks import monitoring as bench
from monitoring import checks, served, span


@pytest.fixture(scope="module")
def data():
    import tensorflow_data_validation as tfdv

    rows, types = drift_bench.load_rows()
    rng = np.random.default_rng(5)
    train = rows.iloc[rng.permutation(len(rows))[:12_000]]
    training = bench._statistics(drift_bench.to_record_batch(train, types))
    return rows, types, training, tfdv.load_schema_text(str(drift_bench.SCHEMA)), rng


def window(data, size=2000, shift=None):
    rows, types, _, _, rng = data
    frame = rows.iloc[rng.integers(0, len(rows), size)]
    return bench._statistics(bench.request_batch(shift(frame, rng) if shift else frame, types))


def test_a_same_distribution_window_has_no_finding(data):
    _, _, training, schema, _ = data
    first, second = window(data), window(data)
    assert checks.all_findings(second, training, first, schema) == []


@pytest.mark.parametrize("shift, feature, check", [
    (bench.fare_in_cents, "fare", "skew"),
    (bench.more_credit_cards, "payment_type", "skew"),
    (bench.trip_seconds_stops, "trip_seconds", "schema"),
])
def test_a_shift_is_found_by_its_check(data, shift, feature, check):
    _, _, training, schema, _ = data
    found = checks.all_findings(window(data, shift=shift), training, window(data), schema)
    assert (feature, check) in {(f["feature"], f["check"]) for f in found}, found
    assert {f["split"] for f in found} == {"requests"}


def test_served_probabilities_are_compared_with_the_eval_splits():
    rng = np.random.default_rng(1)
    reference = rng.beta(1, 3, 3000)
    assert checks.probability_findings(rng.beta(1, 3, 5000), reference) == []
    [finding] = checks.probability_findings(rng.beta(2, 3, 5000), reference)
    assert finding["feature"] == "probability" and finding["type"] == "PREDICTION_DRIFT"
    assert checks.ks_distance(np.array([0.0, 1.0]), np.array([2.0, 3.0])) == 1.0


def test_the_answering_version_is_the_logged_majority_or_the_given_one():
    assert served.answering_version([3, 3, 4, None], None) == (
        "3", "version 3, which answered 50% of the logged rows")
    assert served.answering_version([3], "7")[0] == "7"
    assert served.answering_version([None, None], None)[0] is None


def test_spans_are_numbered_after_the_newest_and_labels_need_their_columns(tmp_path):
    assert span.next_span(str(tmp_path)) == 1
    (tmp_path / "span-2").mkdir()
    (tmp_path / "span-10").mkdir()
    (tmp_path / "span-x").mkdir()
    assert span.next_span(str(tmp_path)) == 11
    labels = tmp_path / "labels.csv"
    labels.write_text("id,tip\n1,2.0\n")
    with pytest.raises(ValueError, match="has no column trip_id, tips"):
        span.read_labels(str(labels), "trip_id")
    labels.write_text("trip_id,tips\na,1.5\nb,\n")
    assert span.read_labels(str(labels), "trip_id") == {"a": "1.5"}
