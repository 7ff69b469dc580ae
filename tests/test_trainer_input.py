"""The Trainer's input: raw examples transformed in TensorFlow, as Transform would."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft

from models import features, split_reader, trainer
from tests.tft_data import analyze_and_transform, csv_rows, to_example

# A real tf.Transform run (Beam) and TensorFlow datasets: the slow tier.
pytestmark = pytest.mark.slow

ROWS = 300
SHUFFLED = split_reader.SplitLayout(shuffled=True, rows=ROWS)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """Real tf.Transform output for ROWS rows, those rows as a gzipped TFRecord,
    and the same rows sorted by label (as an unshuffled split may hold them)."""
    root = tmp_path_factory.mktemp("trainer_input")
    rows = csv_rows(ROWS)
    expected = analyze_and_transform(rows, str(root / "transform"))
    path, sorted_path = str(root / "examples.gz"), str(root / "sorted.gz")
    by_label = sorted(range(ROWS), key=lambda i: int(expected[i][features.LABEL_KEY]))
    options = tf.io.TFRecordOptions(compression_type="GZIP")
    with tf.io.TFRecordWriter(path, options) as writer, \
            tf.io.TFRecordWriter(sorted_path, options) as sorted_writer:
        for row in rows:
            writer.write(to_example(row))
        for i in by_label:
            sorted_writer.write(to_example(rows[i]))
    return path, sorted_path, tft.TFTransformOutput(str(root / "transform")), expected


def test_every_row_is_transformed_as_tf_transform_does(prepared):
    path, _, tf_transform_output, expected = prepared
    columns, labels = trainer._load([path], SHUFFLED, tf_transform_output)
    assert len(labels) == ROWS
    np.testing.assert_array_equal(labels, [int(r[features.LABEL_KEY]) for r in expected])
    assert 0 < labels.sum() < ROWS
    for key, values in columns.items():
        want = np.array([np.asarray(r[key]).item() for r in expected])
        np.testing.assert_allclose(values.reshape(-1), want, rtol=1e-5, err_msg=key)


def test_only_the_rows_training_visits_are_loaded(prepared):
    path, _, tf_transform_output, expected = prepared
    columns, labels = trainer._load([path], SHUFFLED, tf_transform_output, max_rows=70)
    assert len(labels) == 70
    assert all(len(values) == 70 for values in columns.values())
    np.testing.assert_array_equal(labels, [int(r[features.LABEL_KEY]) for r in expected[:70]])


def test_an_unshuffled_split_is_sampled_not_read_as_a_prefix(prepared):
    """Sorted by label, its first 100 rows are all 0: the sample must hold both
    labels in about their share of the split."""
    _, sorted_path, tf_transform_output, expected = prepared
    share = np.mean([int(r[features.LABEL_KEY]) for r in expected])
    assert share < 0.5  # so the first 100 sorted rows are all 0
    layout = split_reader.SplitLayout(shuffled=False, rows=ROWS)
    _, labels = trainer._load([sorted_path], layout, tf_transform_output, max_rows=100)
    assert 70 <= len(labels) <= 130
    assert abs(labels.mean() - share) < 0.15 and labels.min() == 0


def test_without_a_layout_the_trainer_assumes_no_order(prepared):
    """run_fn called without its executor's layouts (e.g. by TFX's own Trainer)."""
    _, sorted_path, tf_transform_output, _ = prepared
    layout = split_reader.layouts(None).get("train", split_reader.SplitLayout())
    _, labels = trainer._load([sorted_path], layout, tf_transform_output, max_rows=100)
    assert labels.max() == 1
