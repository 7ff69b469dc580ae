"""The exported model's signatures.

`serving_default` is what TF Serving and every client call: a 1-D string tensor
`examples` of serialized `tf.Example`s holding raw taxi columns (no label; any
column may be absent) -> `probability` of a big tip, one float per example.
Feature types are the curated schema's: INT columns as `int64_list`, FLOAT
columns as `float_list`, text as `bytes_list` (see `input_spec()`).

`transform_features` is for the Evaluator: raw examples including `tips` ->
transformed features including the label, so TFMA scores exactly what Trainer saw.
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras

from models import contract, features

_KIND = {tf.int64: "int64_list", tf.float32: "float_list", tf.string: "bytes_list"}


def serving_feature_spec(tf_transform_output: tft.TFTransformOutput) -> dict:
    """Raw columns the model reads at serving time (label sources excluded)."""
    spec = dict(tf_transform_output.raw_feature_spec())
    spec.pop(features.TIPS_KEY, None)
    return spec


def input_spec(tf_transform_output: tft.TFTransformOutput) -> dict[str, str]:
    """Column -> tf.Example list kind expected by `serving_default`."""
    return {
        key: _KIND[spec.dtype]
        for key, spec in sorted(serving_feature_spec(tf_transform_output).items())
    }


def make_serving_fn(model: keras.Model, tf_transform_output: tft.TFTransformOutput):
    """serialized tf.Examples (no label) -> {'probability': [batch] float32}."""
    model.tft_layer = tf_transform_output.transform_features_layer()
    raw_spec = serving_feature_spec(tf_transform_output)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=contract.INPUT_KEY)])
    def serve(examples: tf.Tensor) -> dict:
        parsed = tf.io.parse_example(examples, raw_spec)
        transformed = model.tft_layer(parsed)
        transformed.pop(features.LABEL_KEY, None)
        return {contract.OUTPUT_KEY: model(transformed)}

    return serve


def make_transform_fn(model: keras.Model, tf_transform_output: tft.TFTransformOutput):
    """serialized tf.Examples (with tips) -> transformed features and label."""
    model.tft_layer_eval = tf_transform_output.transform_features_layer()
    raw_spec = tf_transform_output.raw_feature_spec()

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=contract.INPUT_KEY)])
    def transform_features(examples: tf.Tensor) -> dict:
        return model.tft_layer_eval(tf.io.parse_example(examples, raw_spec))

    return transform_features


def signatures(model: keras.Model, tf_transform_output: tft.TFTransformOutput) -> dict:
    return {
        contract.SIGNATURE_NAME: make_serving_fn(model, tf_transform_output),
        contract.TRANSFORM_SIGNATURE_NAME: make_transform_fn(model, tf_transform_output),
    }
