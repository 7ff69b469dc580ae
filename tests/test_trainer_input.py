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

# A real tf.Transform run (Beam) and TensorFlow datasets: the slow tier.
pytestmark = pytest.mark.slow

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
