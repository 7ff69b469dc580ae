"""The Trainer's input: raw examples transformed in TensorFlow, as Transform would."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
from tfx.components.trainer.fn_args_utils import DataAccessor, FnArgs
from tfx_bsl.public import tfxio

from models import features, trainer
from tests.tft_data import analyze_and_transform, csv_rows, to_example

ROWS = 300


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """Real tf.Transform output for ROWS rows, and those rows as a gzipped TFRecord."""
    root = tmp_path_factory.mktemp("trainer_input")
    rows = csv_rows(ROWS)
    expected = analyze_and_transform(rows, str(root / "transform"))
    path = str(root / "examples.gz")
    with tf.io.TFRecordWriter(path, tf.io.TFRecordOptions(compression_type="GZIP")) as writer:
        for row in rows:
            writer.write(to_example(row))

    def dataset_factory(files, options, schema):
        return tfxio.TFExampleRecord(file_pattern=files, schema=schema).TensorFlowDataset(options)

    fn_args = FnArgs(data_accessor=DataAccessor(dataset_factory, None, None))
    return fn_args, path, tft.TFTransformOutput(str(root / "transform")), expected


def test_every_row_is_transformed_as_tf_transform_does(prepared):
    fn_args, path, tf_transform_output, expected = prepared
    columns, labels = trainer._load(fn_args, [path], tf_transform_output)
    assert len(labels) == ROWS
    np.testing.assert_array_equal(labels, [int(r[features.LABEL_KEY]) for r in expected])
    assert 0 < labels.sum() < ROWS
    for key, values in columns.items():
        want = np.array([np.asarray(r[key]).item() for r in expected])
        np.testing.assert_allclose(values.reshape(-1), want, rtol=1e-5, err_msg=key)


def test_only_the_rows_training_visits_are_loaded(prepared):
    fn_args, path, tf_transform_output, expected = prepared
    columns, labels = trainer._load(fn_args, [path], tf_transform_output, max_rows=70)
    assert len(labels) == 70
    assert all(len(values) == 70 for values in columns.values())
    np.testing.assert_array_equal(labels, [int(r[features.LABEL_KEY]) for r in expected[:70]])


def test_the_training_curve_is_the_towers_mean_point_by_point():
    history = {"loss": [4.0, 1.3], "val_loss": [9.0, 9.0],  # sums over towers: not kept
               "t0_loss": [1.0, 0.5], "t1_loss": [3.0, 0.8],
               "val_t0_accuracy": [0.5, 0.9], "val_t1_accuracy": [0.7, 0.8]}
    mean = trainer.mean_history(history, ["t0", "t1"])
    assert mean == {"loss": pytest.approx([2.0, 0.65]),
                    "val_accuracy": pytest.approx([0.6, 0.85])}
    assert trainer.mean_history({"loss": [1.0]}, ["t0"]) == {"loss": [1.0]}


def test_towers_trained_side_by_side_learn_and_report_one_curve(prepared):
    """Each tower learns (beats the base rate) and the curve has the report's keys."""
    from models.model import Hyperparameters, build_towers

    fn_args, path, tf_transform_output, _ = prepared
    x, y = trainer._load(fn_args, [path], tf_transform_output)
    hparams = Hyperparameters(hidden_units=(16,), towers=2)
    towers = build_towers(tf_transform_output, hparams)
    history = trainer.fit_towers(towers, hparams, (x, y), (x, y), steps=200)
    assert set(history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(curve) == trainer.CURVE_POINTS for curve in history.values())
    base_rate = max(y.mean(), 1 - y.mean())
    for tower in towers:
        predicted = tower.predict(x, verbose=0) > 0.5
        assert (predicted == y.astype(bool)).mean() > base_rate
