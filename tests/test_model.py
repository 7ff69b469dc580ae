"""The Keras model and its exported signatures, on a real tf.Transform output."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft

from models import contract, features, signatures
from models.model import Hyperparameters, build_keras_model
from tests.tft_data import analyze_and_transform, csv_rows, to_example

# Trains a Keras model on a real tf.Transform output (Beam): the slow tier.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A model trained briefly on 400 real rows and exported with its signatures."""
    root = tmp_path_factory.mktemp("model")
    rows = csv_rows(400)
    transformed = analyze_and_transform(rows, str(root / "transform"))
    tf_transform_output = tft.TFTransformOutput(str(root / "transform"))
    model = build_keras_model(tf_transform_output, Hyperparameters(hidden_units=(16,)))
    x = {
        key: np.array([np.asarray(r[key]).item() for r in transformed])
        for key in model.input_names
    }
    y = np.array([np.asarray(r[features.LABEL_KEY]).item() for r in transformed])
    model.fit(x, y, batch_size=64, epochs=2, verbose=0)
    path = str(root / "saved_model")
    model.save(path, save_format="tf", signatures=signatures.signatures(model, tf_transform_output))
    return tf.saved_model.load(path), rows, tf_transform_output


def _serving_rows(rows):
    return [{k: v for k, v in row.items() if k != features.TIPS_KEY} for row in rows]


def test_model_inputs_follow_transform_outputs(exported):
    _, _, tf_transform_output = exported
    model = build_keras_model(tf_transform_output, Hyperparameters())
    expected = set(tf_transform_output.transformed_feature_spec()) - {features.LABEL_KEY}
    assert set(model.input_names) == expected


def test_serving_signature_answers_raw_examples_with_probabilities(exported):
    loaded, rows, _ = exported
    serve = loaded.signatures[contract.SIGNATURE_NAME]
    examples = tf.constant([to_example(r) for r in _serving_rows(rows[:50])])
    probability = serve(examples=examples)[contract.OUTPUT_KEY].numpy()
    assert probability.shape == (50,)
    assert np.all((probability >= 0) & (probability <= 1))
    assert probability.std() > 0  # it looks at the input


def test_any_feature_may_be_absent(exported):
    loaded, rows, _ = exported
    serve = loaded.signatures[contract.SIGNATURE_NAME]
    only_fare = {"fare": [12.5]}
    nothing = {}
    examples = tf.constant([to_example(only_fare), to_example(nothing)])
    probability = serve(examples=examples)[contract.OUTPUT_KEY].numpy()
    assert probability.shape == (2,)
    assert np.all(np.isfinite(probability))


def test_the_label_source_is_not_needed_and_does_not_change_the_answer(exported):
    loaded, rows, _ = exported
    serve = loaded.signatures[contract.SIGNATURE_NAME]
    with_tips = tf.constant([to_example(r) for r in rows[:20]])
    without = tf.constant([to_example(r) for r in _serving_rows(rows[:20])])
    np.testing.assert_allclose(
        serve(examples=with_tips)[contract.OUTPUT_KEY].numpy(),
        serve(examples=without)[contract.OUTPUT_KEY].numpy(),
    )


def test_a_float_where_the_schema_says_int_is_refused_naming_the_column(exported):
    loaded, rows, _ = exported
    serve = loaded.signatures[contract.SIGNATURE_NAME]
    bad = dict(_serving_rows(rows[:1])[0], trip_start_hour=[17.0])
    with pytest.raises(tf.errors.InvalidArgumentError, match="trip_start_hour"):
        serve(examples=tf.constant([to_example(bad)]))


def test_input_spec_states_what_the_model_expects(exported):
    _, _, tf_transform_output = exported
    spec = signatures.input_spec(tf_transform_output)
    assert spec["fare"] == "float_list"
    assert spec["trip_start_hour"] == "int64_list"
    assert spec["payment_type"] == "bytes_list"
    assert features.TIPS_KEY not in spec
    json.dumps(spec)


def test_transform_signature_yields_the_label_for_evaluation(exported):
    loaded, rows, _ = exported
    transform = loaded.signatures[contract.TRANSFORM_SIGNATURE_NAME]
    out = transform(examples=tf.constant([to_example(r) for r in rows[:10]]))
    expected = [
        int(r["tips"][0] > features.BIG_TIP_FRACTION * r["fare"][0]) for r in rows[:10]
    ]
    assert out[features.LABEL_KEY].numpy().reshape(-1).tolist() == expected
