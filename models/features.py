"""Names and kinds of the Chicago Taxi columns.

This is the one place that says what each raw CSV column is. The Transform
`preprocessing_fn`, the feature-selection step and the serving signature all read
it, so adding or re-typing a column is a change here (and in `schema/schema.pbtxt`).
"""

from __future__ import annotations

# Label source: `tips` is used only to compute the label and is never a model input.
TIPS_KEY = "tips"
FARE_KEY = "fare"
LABEL_KEY = "big_tipper"
# A trip is a "big tipper" when the tip exceeds this fraction of the fare.
BIG_TIP_FRACTION = 0.2

# Continuous columns: log-scaled (when skewed) and standardized by Transform.
SKEWED_NUMERIC_FEATURES: tuple[str, ...] = ("fare", "trip_miles", "trip_seconds")
NUMERIC_FEATURES: tuple[str, ...] = (
    "pickup_latitude",
    "pickup_longitude",
    "dropoff_latitude",
    "dropoff_longitude",
)

# Numeric columns that also get quantile buckets (name -> number of buckets):
# riders tip round amounts, so whether a tip beats 20 % of the fare changes in
# steps along the fare that a one-hot of fine fare buckets captures directly.
BUCKETIZED_FEATURES: dict[str, int] = {"fare": 50}

# Integer columns with a small, known range: one-hot encoded directly.
# name -> number of buckets (values are clipped into [0, size)).
BOUNDED_INT_FEATURES: dict[str, int] = {
    "trip_start_hour": 24,
    "trip_start_day": 8,  # 1..7
    "trip_start_month": 13,  # 1..12
}

# Categorical columns whose vocabulary is learned from the training data.
# name -> maximum vocabulary size kept (rarer values share out-of-vocabulary buckets).
VOCAB_FEATURES: dict[str, int] = {
    "payment_type": 16,
    "company": 100,
    "pickup_community_area": 80,
    "dropoff_community_area": 80,
    "pickup_census_tract": 300,
    "dropoff_census_tract": 300,
}
OOV_BUCKETS = 1

# Columns in the data that are never candidate model inputs, and why.
EXCLUDED_FEATURES: dict[str, str] = {
    TIPS_KEY: "label source: the label is computed from it",
    "trip_start_timestamp": "an ID-like timestamp; hour, day and month carry its signal",
}

CANDIDATE_FEATURES: tuple[str, ...] = (
    *SKEWED_NUMERIC_FEATURES,
    *NUMERIC_FEATURES,
    *BOUNDED_INT_FEATURES,
    *VOCAB_FEATURES,
)

# Every column the raw CSV holds (and the serving tf.Example may hold).
RAW_COLUMNS: tuple[str, ...] = (*CANDIDATE_FEATURES, *EXCLUDED_FEATURES)


def transformed_name(key: str) -> str:
    """Name of a Transform output derived from raw column `key`."""
    return f"{key}_xf"


def bucket_name(key: str) -> str:
    """Name of the Transform output holding the quantile bucket of raw column `key`."""
    return f"{key}_bucket"


def missing_name(key: str) -> str:
    """Name of the Transform output flagging that raw column `key` was absent."""
    return f"{key}_missing"
