"""The Keras network: transformed taxi features -> probability of a big tip.

It is built from whatever Transform produced (`transformed_feature_spec`), so it
follows the feature-selection decision without a second list of names: float
outputs (z-scores, missing flags) go in as they are, integer ids are embedded
(one-hot times a learned matrix, with the vocabulary sizes Transform computed).
Several small towers are trained independently and their probabilities
averaged. Only core TensorFlow ops (`one_hot`, `matmul`, ...) end up in the
graph, so stock TF Serving can load it.
"""

from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras

from models import contract, features


@dataclass(frozen=True)
class Hyperparameters:
    """Training settings; overridable through the Trainer's `custom_config`.

    Chosen by 5-fold cross-validation of the whole pipeline (`python -m
    benchmarks quality`; the variants tried are in docs/benchmarks.md). The
    data is small (about 10,000 training rows, a third of them non-cash), so
    what matters is capacity control: ids are embedded in `embedding_dim`
    numbers rather than one-hot into the first layer, the network is small,
    and `towers` independently initialised copies are averaged.
    """

    hidden_units: tuple[int, ...] = (64, 32)
    learning_rate: float = 2e-3
    batch_size: int = 256
    dropout: float = 0.2
    embedding_dim: int = 3
    towers: int = 3
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


def model_inputs(tf_transform_output: tft.TFTransformOutput) -> dict[str, keras.Input]:
    """One Keras input per transformed feature except the label (shared by the towers)."""
    spec = dict(tf_transform_output.transformed_feature_spec())
    spec.pop(features.LABEL_KEY, None)
    inputs = {}
    for key in sorted(spec):
        if spec[key].dtype == tf.string:
            raise ValueError(f"transformed feature {key!r} is a string; expected numbers")
        inputs[key] = keras.layers.Input(shape=(), name=key, dtype=spec[key].dtype)
    return inputs


def _compile(model: keras.Model, hparams: Hyperparameters) -> keras.Model:
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=hparams.learning_rate),
        loss=keras.losses.BinaryCrossentropy(),
        metrics=[keras.metrics.BinaryAccuracy(name="accuracy")],
        # Many small steps per graph call: the network is tiny, so per-step
        # Python overhead, not arithmetic, would otherwise dominate training time.
        steps_per_execution=100,
    )
    return model


def build_tower(
    inputs: dict[str, keras.Input],
    encoded: tuple[keras.KerasTensor, dict[str, tuple[keras.KerasTensor, int]]],
    hparams: Hyperparameters,
    name: str,
) -> keras.Model:
    """One compiled MLP: the float columns as they are, each id column embedded.

    An id arrives one-hot encoded and is multiplied by a learned matrix of
    `embedding_dim` columns (an embedding written with core ops only), so a
    column with hundreds of ids adds a few hundred weights, not a hundred
    times the first layer's width.
    """
    floats, one_hots = encoded
    embedded = [
        keras.layers.Dense(
            min(hparams.embedding_dim, depth), use_bias=False, name=f"{name}_{key}_embed"
        )(one_hot)
        for key, (one_hot, depth) in one_hots.items()
    ]
    parts = ([floats] if floats is not None else []) + embedded
    x = keras.layers.Concatenate(name=f"{name}_features")(parts) if len(parts) > 1 else parts[0]
    for units in hparams.hidden_units:
        x = keras.layers.Dense(units, activation="relu")(x)
        if hparams.dropout:
            x = keras.layers.Dropout(hparams.dropout)(x)
    probability = keras.layers.Dense(1, activation="sigmoid")(x)
    # One probability per example: shape [batch], as TF Serving clients expect.
    squeezed = keras.layers.Lambda(lambda t: tf.squeeze(t, axis=-1), name=f"{name}_probability")(
        probability
    )
    return _compile(keras.Model(inputs=inputs, outputs=squeezed, name=name), hparams)


def encode(
    tf_transform_output: tft.TFTransformOutput, inputs: dict[str, keras.Input]
) -> tuple[keras.KerasTensor | None, dict[str, tuple[keras.KerasTensor, int]]]:
    """What every tower reads: the float inputs stacked into one [batch, n]
    tensor, and each id input one-hot encoded (with its depth).

    Built once and shared: these layers have no weights, and fewer layers make
    the SavedModel export faster (Keras traces every layer).
    """
    float_keys = [key for key, t in inputs.items() if t.dtype != tf.int64]
    floats = None
    if float_keys:
        floats = keras.layers.Lambda(lambda ts: tf.stack(ts, axis=1), name="floats")(
            [inputs[key] for key in float_keys]
        )
    one_hots = {}
    for key, tensor in inputs.items():
        if tensor.dtype == tf.int64:
            depth = id_depth(tf_transform_output, key)
            one_hots[key] = (
                keras.layers.Lambda(lambda t, d=depth: tf.one_hot(t, d), name=f"{key}_onehot")(
                    tensor
                ),
                depth,
            )
    return floats, one_hots


def build_towers(
    tf_transform_output: tft.TFTransformOutput, hparams: Hyperparameters
) -> list[keras.Model]:
    """`hparams.towers` towers on the same inputs, each to be trained on its own."""
    inputs = model_inputs(tf_transform_output)
    encoded = encode(tf_transform_output, inputs)
    return [build_tower(inputs, encoded, hparams, f"tower_{n}") for n in range(hparams.towers)]


def average(towers: list[keras.Model], hparams: Hyperparameters) -> keras.Model:
    """The exported model: the mean of the towers' probabilities (named `probability`)."""
    outputs = [t.output for t in towers]
    mean = keras.layers.Average()(outputs) if len(outputs) > 1 else outputs[0]
    probability = keras.layers.Activation("linear", name=contract.OUTPUT_KEY)(mean)
    return _compile(keras.Model(inputs=towers[0].input, outputs=probability), hparams)


def build_keras_model(
    tf_transform_output: tft.TFTransformOutput, hparams: Hyperparameters
) -> keras.Model:
    """The towers averaged into one compiled model (trained jointly if fitted as is)."""
    return average(build_towers(tf_transform_output, hparams), hparams)
