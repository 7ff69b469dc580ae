"""preprocessing_fn through the real tf.Transform (Beam), on a few crafted rows."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models import features
from tests.tft_data import analyze_and_transform

# Real tf.Transform runs (Beam): the slow tier.
pytestmark = pytest.mark.slow


def _row(fare, tips, payment, company=None, hour=12, miles=1.0, dropoff_area=None) -> dict:
    return {
        "fare": [float(fare)],
        "tips": [float(tips)],
        "payment_type": [payment.encode()],
        "company": [company.encode()] if company else [],
        "trip_start_hour": [hour] if hour is not None else [],
        "trip_start_day": [3],
        "trip_start_month": [6],
        "trip_miles": [float(miles)],
        "trip_seconds": [600],
        "dropoff_community_area": [dropoff_area] if dropoff_area else [],
    }


ROWS = [
    _row(5.0, 2.0, "Credit Card", "Flash Cab", hour=1, dropoff_area=8),
    _row(10.0, 0.0, "Cash", None, hour=None, miles=3.0),
    _row(20.0, 4.0, "Credit Card", "Flash Cab", hour=30, dropoff_area=32),  # 4 == 0.2*20: not big
    _row(40.0, 9.0, "Credit Card", "Taxi Affiliation Services", miles=12.0, dropoff_area=8),
]


@pytest.fixture(scope="module")
def transformed() -> list[dict]:
    """Transformed rows, in the order of ROWS (fare_xf is increasing in fare)."""
    rows = analyze_and_transform(ROWS)
    return sorted(rows, key=lambda r: float(r[features.transformed_name("fare")]))


def _col(rows, key):
    return np.array([np.asarray(r[key]).item() for r in rows])


def test_label_is_tips_above_a_fifth_of_fare(transformed):
    assert _col(transformed, features.LABEL_KEY).tolist() == [1, 0, 0, 1]


def test_tips_never_becomes_a_feature(transformed):
    assert not any(key.startswith(features.TIPS_KEY) for key in transformed[0])


def test_skewed_numbers_are_log_scaled_then_standardized(transformed):
    fare = _col(transformed, features.transformed_name("fare"))
    logs = np.log1p([5.0, 10.0, 20.0, 40.0])
    expected = (logs - logs.mean()) / logs.std()
    np.testing.assert_allclose(fare, expected, rtol=1e-4)


def test_missing_values_are_flagged_and_filled_neutrally(transformed):
    missing_company = _col(transformed, features.missing_name("company"))
    assert missing_company.tolist() == [0.0, 1.0, 0.0, 0.0]
    missing_area = _col(transformed, features.missing_name("dropoff_community_area"))
    assert missing_area.tolist() == [0.0, 1.0, 0.0, 0.0]
    # An absent hour gets its own id, one past the valid range.
    hours = _col(transformed, features.transformed_name("trip_start_hour"))
    assert hours.tolist() == [1, features.BOUNDED_INT_FEATURES["trip_start_hour"], 23, 12]


def test_categories_get_vocabulary_ids_by_frequency(transformed):
    payment = _col(transformed, features.transformed_name("payment_type"))
    # "Credit Card" (3 rows) is the most frequent value: id 0; "Cash" id 1.
    assert payment.tolist() == [0, 1, 0, 0]
    company = _col(transformed, features.transformed_name("company"))
    assert company[0] == company[2] == 0  # "Flash Cab", twice
    assert len(set(company.tolist())) == 3  # Flash Cab, missing (""), Taxi Affiliation


def test_fare_gets_quantile_buckets(transformed):
    buckets = _col(transformed, features.bucket_name("fare"))
    assert list(buckets) == sorted(buckets) and buckets[0] < buckets[-1]
    assert all(0 <= b < features.BUCKETIZED_FEATURES["fare"] for b in buckets)


def test_columns_absent_from_the_schema_are_not_used():
    """Feature selection drops columns from Transform's schema: none may be required."""
    rows = [{k: v for k, v in row.items() if k != "company"} for row in ROWS]
    from tests import tft_data

    spec = tft_data.raw_feature_spec()
    spec.pop("company")
    original = tft_data.raw_feature_spec
    tft_data.raw_feature_spec = lambda: spec
    try:
        out = analyze_and_transform(rows)
    finally:
        tft_data.raw_feature_spec = original
    assert features.transformed_name("company") not in out[0]
    assert features.missing_name("company") not in out[0]
    assert not math.isnan(float(out[0][features.transformed_name("fare")]))
