"""Trainer's `run_fn`: fit the Keras model on Transform's output and export it."""

from __future__ import annotations

import json
import os

import tensorflow as tf
import tensorflow_transform as tft
from tfx import v1 as tfx
from tfx_bsl.public import tfxio

from models import features, signatures
from models.model import Hyperparameters, build_keras_model

# Written next to the SavedModel so reports can show the training curve.
HISTORY_FILE = "training_history.json"


def _dataset(
    fn_args: tfx.components.FnArgs,
    files: list[str],
    tf_transform_output: tft.TFTransformOutput,
    batch_size: int,
    shuffle: bool,
) -> tf.data.Dataset:
    """(features, label) batches of transformed examples, repeated forever."""
    return fn_args.data_accessor.tf_dataset_factory(
        files,
        tfxio.TensorFlowDatasetOptions(
            batch_size=batch_size, label_key=features.LABEL_KEY, shuffle=shuffle
        ),
        tf_transform_output.transformed_metadata.schema,
    )


def run_fn(fn_args: tfx.components.FnArgs) -> None:
    """Train for `fn_args.train_steps`, then export the SavedModel with signatures."""
    hparams = Hyperparameters.from_config(fn_args.custom_config)
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    train = _dataset(fn_args, fn_args.train_files, tf_transform_output, hparams.batch_size, True)
    evaluation = _dataset(
        fn_args, fn_args.eval_files, tf_transform_output, hparams.batch_size, False
    )
    tf.keras.utils.set_random_seed(42)
    model = build_keras_model(tf_transform_output, hparams)
    epochs = max(1, min(10, fn_args.train_steps // 100))
    history = model.fit(
        train,
        steps_per_epoch=max(1, fn_args.train_steps // epochs),
        epochs=epochs,
        validation_data=evaluation,
        validation_steps=max(1, fn_args.eval_steps),
        verbose=0,
    )
    model.save(
        fn_args.serving_model_dir,
        save_format="tf",
        signatures=signatures.signatures(model, tf_transform_output),
    )
    _write_extras(fn_args, history.history, tf_transform_output)


def _write_extras(
    fn_args: tfx.components.FnArgs, history: dict, tf_transform_output: tft.TFTransformOutput
) -> None:
    """Training curve beside the model; the input contract inside it."""
    with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, HISTORY_FILE), "w") as f:
        json.dump({k: [float(v) for v in vals] for k, vals in history.items()}, f)
    extra = os.path.join(fn_args.serving_model_dir, "assets.extra")
    tf.io.gfile.makedirs(extra)
    with tf.io.gfile.GFile(os.path.join(extra, "input_spec.json"), "w") as f:
        json.dump(
            {
                "signature": "serving_default",
                "input": "examples: 1-D string tensor of serialized tf.Example",
                "output": "probability: float32 [batch], P(tips > 0.2 * fare)",
                "features": signatures.input_spec(tf_transform_output),
            },
            f,
            indent=2,
        )
