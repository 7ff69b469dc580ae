"""Transform's `preprocessing_fn`: raw taxi columns -> model-ready tensors.

The same graph runs inside Transform (over the whole training split, where the
analyzers compute means, variances and vocabularies) and inside the exported
serving model, so training and serving can never disagree on preprocessing.

Only the raw columns present in the schema Transform receives are used: the
feature-selection step drops unselected columns from that schema, so a dropped
column never reaches the model. Every raw column may be absent in an example
(the data has empty cells); each used column therefore also yields a 0/1
`<name>_missing` indicator, and the value itself is filled with a neutral default.
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_transform as tft

from models import features


def _to_dense(x: tf.Tensor | tf.SparseTensor, default) -> tf.Tensor:
    """A 1-D dense tensor from a feature with at most one value per example."""
    if isinstance(x, tf.SparseTensor):
        x = tf.sparse.to_dense(
            tf.SparseTensor(x.indices, x.values, [x.dense_shape[0], 1]),
            default_value=default,
        )
    return tf.reshape(x, [-1])


def _missing(x: tf.Tensor | tf.SparseTensor) -> tf.Tensor:
    """1.0 where the example has no value for `x`, else 0.0 (shape [batch])."""
    if not isinstance(x, tf.SparseTensor):
        return tf.zeros_like(tf.reshape(x, [-1]), dtype=tf.float32)
    ones = tf.SparseTensor(x.indices, tf.ones_like(x.values, tf.float32), x.dense_shape)
    return 1.0 - _to_dense(ones, 0.0)


def _values(x: tf.Tensor | tf.SparseTensor) -> tf.Tensor:
    """The present values of `x`, flattened (what the analyzers should see)."""
    return x.values if isinstance(x, tf.SparseTensor) else tf.reshape(x, [-1])


def _standardized(x: tf.Tensor | tf.SparseTensor, log_scale: bool) -> tf.Tensor:
    """Z-score of `x` over the present training values; missing -> 0 (the mean)."""
    present = tf.cast(_values(x), tf.float32)
    if log_scale:
        present = tf.math.log1p(tf.maximum(present, 0.0))
    mean = tft.mean(present)
    std = tf.sqrt(tft.var(present))
    if isinstance(x, tf.SparseTensor):
        x = tf.SparseTensor(x.indices, present, x.dense_shape)
    else:
        x = present
    dense = _to_dense(x, mean)
    return tf.where(std > 0, (dense - mean) / tf.maximum(std, 1e-12), tf.zeros_like(dense))


def _bounded_int(x: tf.Tensor | tf.SparseTensor, size: int) -> tf.Tensor:
    """An id in [0, size] for an integer in a known range; `size` means missing."""
    dense = tf.cast(_to_dense(x, -1), tf.int64)
    clipped = tf.clip_by_value(dense, 0, size - 1)
    return tf.where(dense < 0, tf.constant(size, tf.int64), clipped)


def _as_string(x: tf.Tensor | tf.SparseTensor) -> tf.Tensor:
    """A 1-D string tensor; missing values become the empty string (a category)."""
    if x.dtype != tf.string:
        values = tf.strings.as_string(_values(x))
        x = tf.SparseTensor(x.indices, values, x.dense_shape) if isinstance(
            x, tf.SparseTensor
        ) else values
    return _to_dense(x, "")


def _label(inputs: dict) -> tf.Tensor:
    """big_tipper = tips > 0.2 * fare, as int64 0/1."""
    tips = tf.cast(_to_dense(inputs[features.TIPS_KEY], 0.0), tf.float32)
    fare = tf.cast(_to_dense(inputs[features.FARE_KEY], 0.0), tf.float32)
    return tf.cast(tips > features.BIG_TIP_FRACTION * fare, tf.int64)


def preprocessing_fn(inputs: dict) -> dict:
    """tf.Transform callback: every present candidate column -> model features.

    Outputs, per used raw column `c`: `c_xf` (float z-score or int64 id),
    `c_missing` (float 0/1) and, for bucketized columns, `c_bucket` (int64).
    Plus the label `big_tipper` when `tips` is present (training and
    evaluation; never at serving time).
    """
    outputs: dict[str, tf.Tensor] = {}
    used = [key for key in features.CANDIDATE_FEATURES if key in inputs]
    for key in used:
        raw = inputs[key]
        if key in features.SKEWED_NUMERIC_FEATURES or key in features.NUMERIC_FEATURES:
            outputs[features.transformed_name(key)] = _standardized(
                raw, log_scale=key in features.SKEWED_NUMERIC_FEATURES
            )
        elif key in features.BOUNDED_INT_FEATURES:
            outputs[features.transformed_name(key)] = _bounded_int(
                raw, features.BOUNDED_INT_FEATURES[key]
            )
        else:
            outputs[features.transformed_name(key)] = tft.compute_and_apply_vocabulary(
                _as_string(raw),
                top_k=features.VOCAB_FEATURES[key],
                num_oov_buckets=features.OOV_BUCKETS,
                vocab_filename=key,
            )
        if key in features.BUCKETIZED_FEATURES:
            outputs[features.bucket_name(key)] = tft.bucketize(
                tf.cast(_to_dense(raw, 0), tf.float32),
                num_buckets=features.BUCKETIZED_FEATURES[key],
            )
        outputs[features.missing_name(key)] = _missing(raw)
    if features.TIPS_KEY in inputs and features.FARE_KEY in inputs:
        outputs[features.LABEL_KEY] = _label(inputs)
    return outputs
