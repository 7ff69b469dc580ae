"""The Keras network: transformed taxi features -> probability of a big tip.

It is built from whatever Transform produced (`transformed_feature_spec`), so it
follows the feature-selection decision without a second list of names: float
outputs (z-scores, missing flags) go in as they are, integer ids are one-hot
encoded with the vocabulary sizes Transform computed. Only core TensorFlow ops
(`one_hot`, `matmul`, ...) end up in the graph, so stock TF Serving can load it.
"""

from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras

from models import contract, features


@dataclass(frozen=True)
class Hyperparameters:
    """Training settings; overridable through the Trainer's `custom_config`."""

    hidden_units: tuple[int, ...] = (128, 64)
    learning_rate: float = 2e-3
    batch_size: int = 256
    dropout: float = 0.1
    seed: int = 42

    @classmethod
    def from_config(cls, config: dict | None) -> Hyperparameters:
        config = dict(config or {})
        if "hidden_units" in config:
            config["hidden_units"] = tuple(int(u) for u in config["hidden_units"])
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in config.items() if k in known})


def id_depth(tf_transform_output: tft.TFTransformOutput, transformed_key: str) -> int:
    """Number of distinct ids a transformed integer feature can take."""
    if transformed_key.endswith("_bucket"):
        return features.BUCKETIZED_FEATURES[transformed_key.removesuffix("_bucket")]
    raw_key = transformed_key.removesuffix("_xf")
    if raw_key in features.BOUNDED_INT_FEATURES:
        return features.BOUNDED_INT_FEATURES[raw_key] + 1  # + the "missing" id
    return tf_transform_output.vocabulary_size_by_name(raw_key) + features.OOV_BUCKETS


def build_keras_model(
    tf_transform_output: tft.TFTransformOutput, hparams: Hyperparameters
) -> keras.Model:
    """A compiled MLP over every transformed feature except the label."""
    spec = dict(tf_transform_output.transformed_feature_spec())
    spec.pop(features.LABEL_KEY, None)
    inputs, encoded = {}, []
    for key in sorted(spec):
        if spec[key].dtype == tf.string:
            raise ValueError(f"transformed feature {key!r} is a string; expected numbers")
        is_id = spec[key].dtype == tf.int64
        inputs[key] = keras.layers.Input(shape=(), name=key, dtype=spec[key].dtype)
        if is_id:
            depth = id_depth(tf_transform_output, key)
            encoded.append(
                keras.layers.Lambda(lambda t, d=depth: tf.one_hot(t, d), name=f"{key}_onehot")(
                    inputs[key]
                )
            )
        else:
            encoded.append(keras.layers.Reshape((1,), name=f"{key}_col")(inputs[key]))
    x = keras.layers.Concatenate()(encoded)
    for units in hparams.hidden_units:
        x = keras.layers.Dense(units, activation="relu")(x)
        if hparams.dropout:
            x = keras.layers.Dropout(hparams.dropout)(x)
    logits = keras.layers.Dense(1)(x)
    # One probability per example: shape [batch], as TF Serving clients expect.
    squeezed = keras.layers.Lambda(lambda t: tf.squeeze(t, axis=-1), name="squeeze")(logits)
    probability = keras.layers.Activation("sigmoid", name=contract.OUTPUT_KEY)(squeezed)
    model = keras.Model(inputs=inputs, outputs=probability)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=hparams.learning_rate),
        loss=keras.losses.BinaryCrossentropy(),
        metrics=[keras.metrics.BinaryAccuracy(name="accuracy")],
        # Many small steps per graph call: the network is tiny, so per-step
        # Python overhead, not arithmetic, would otherwise dominate training time.
        steps_per_execution=100,
    )
    return model
