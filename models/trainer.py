"""Trainer's `run_fn`: fit the Keras model on transformed examples and export it."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras
from absl import logging
from tfx.components.trainer.fn_args_utils import FnArgs

from metadata import names
from models import contract, features, signatures, split_reader
from models.model import Hyperparameters, build_keras_model

# Written next to the SavedModel so reports can show the training curve.
HISTORY_FILE = names.HISTORY_FILE  # the report reads it back
# Training is split into this many "epochs" of equal steps: points on the curve.
CURVE_POINTS = 10


def skip_autograph_for_tf_keras() -> None:
    """Let tf.function trace tf_keras' internals as plain Python, as it does for `keras`.

    AutoGraph leaves the `tensorflow` and `keras` packages alone but not
    `tf_keras` (Keras 2 moved there in TF 2.16), so the first `fit` spends
    seconds rewriting Keras' own train step, optimizer and metrics source
    (measured in docs/benchmarks.md). That code is written to run unconverted; our own
    functions are still converted as usual.
    """
    from tensorflow.python.autograph.core import config

    rule = config.DoNotConvert("tf_keras")
    if not any(getattr(r, "_prefix", None) == "tf_keras" for r in config.CONVERSION_RULES):
        config.CONVERSION_RULES = (rule, *config.CONVERSION_RULES)


def _load(
    files: list[str],
    layout: split_reader.SplitLayout,
    tf_transform_output: tft.TFTransformOutput,
    max_rows: int | None = None,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """A uniform sample of about `max_rows` raw examples of `files` (all of
    them without a limit), transformed, in memory as (features, label) arrays.

    `layout` says whether the split's rows are in random order, so that a
    prefix is such a sample (models/split_reader.py). Transform does not
    write transformed examples (materializing a million of them costs more
    than transforming them here): the transform graph runs on large batches
    inside tf.data, in one pass. The transformed features are a few floats
    and ids per row (~100 bytes), so even a million rows fit easily, and
    Keras then trains at the speed of the network alone.
    """
    raw_spec = tf_transform_output.raw_feature_spec()
    transform = tf_transform_output.transform_features_layer()
    dataset = (
        split_reader.sample_records(files, max_rows, layout)
        .batch(65536)
        .map(lambda batch: transform(tf.io.parse_example(batch, raw_spec)),
             num_parallel_calls=tf.data.AUTOTUNE)
    )
    batches = list(dataset.as_numpy_iterator())
    if not batches:
        raise ValueError(f"no examples in {files}")
    columns = {key: np.concatenate([b[key] for b in batches]) for key in batches[0]}
    labels = columns.pop(features.LABEL_KEY).reshape(-1)
    return columns, labels


def _shuffled_batches(
    x: dict[str, np.ndarray], y: np.ndarray, batch_size: int, seed: int
) -> tf.data.Dataset:
    """Endless, reshuffled batches of in-memory arrays.

    Shuffles row indices and gathers whole batches, which is several times
    faster than shuffling dicts of scalars element by element.
    """
    columns = {key: tf.constant(value) for key, value in x.items()}
    labels = tf.constant(y)

    def gather(indices: tf.Tensor):
        return {k: tf.gather(v, indices) for k, v in columns.items()}, tf.gather(labels, indices)

    return (
        tf.data.Dataset.range(len(y))
        .shuffle(len(y), seed=seed, reshuffle_each_iteration=True)
        .repeat()
        .batch(batch_size)
        .map(gather)
        .prefetch(tf.data.AUTOTUNE)
    )


def run_fn(fn_args: FnArgs) -> None:
    """Train for about `fn_args.train_steps` batches, then export the SavedModel."""
    skip_autograph_for_tf_keras()
    hparams = Hyperparameters.from_config(fn_args.custom_config)
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    # Training visits train_steps * batch_size rows; loading more than that
    # only costs parsing time (~20 us per raw example here): a uniform sample
    # of that many rows, read as a prefix only where ExampleGen wrote the split
    # in random order (split_reader.py).
    layouts = split_reader.layouts(fn_args.custom_config)
    unknown = split_reader.SplitLayout()
    train_rows = fn_args.train_steps * hparams.batch_size
    x_train, y_train = _load(fn_args.train_files, layouts.get("train", unknown),
                             tf_transform_output, train_rows)
    # The training curve scores `eval_steps` batches of the eval split per
    # point (the Evaluator later scores all of it).
    eval_rows = fn_args.eval_steps * hparams.batch_size if fn_args.eval_steps else None
    x_eval, y_eval = _load(fn_args.eval_files, layouts.get("eval", unknown),
                           tf_transform_output, eval_rows)
    keras.utils.set_random_seed(hparams.seed)
    model = build_keras_model(tf_transform_output, hparams)
    started = time.time()
    train = _shuffled_batches(x_train, y_train, hparams.batch_size, hparams.seed)
    epochs = min(CURVE_POINTS, fn_args.train_steps)
    history = model.fit(
        train,
        steps_per_epoch=max(1, fn_args.train_steps // epochs),
        epochs=epochs,
        validation_data=(x_eval, y_eval),
        validation_batch_size=4096,
        verbose=0,
    )
    logging.info("trained %d rows in %.1f s", len(y_train), time.time() - started)
    started = time.time()
    model.save(
        fn_args.serving_model_dir,
        save_format="tf",
        signatures=signatures.signatures(model, tf_transform_output),
    )
    logging.info("exported the SavedModel in %.1f s", time.time() - started)
    _write_extras(fn_args, history.history, tf_transform_output)
    _write_training_facts(fn_args, history.history, hparams.batch_size)


def _write_training_facts(fn_args: FnArgs, history: dict, batch_size: int) -> None:
    """How the model was trained, for the model card the Pusher writes."""
    facts = {"train_steps": fn_args.train_steps, "batch_size": batch_size,
             "eval_steps": fn_args.eval_steps,
             **{f"final_{k}": round(float(v[-1]), 4) for k, v in history.items() if v}}
    path = os.path.join(fn_args.model_run_dir, names.TRAINING_FACTS_FILE)
    with tf.io.gfile.GFile(path, "w") as f:
        json.dump(facts, f, indent=1)


def _write_extras(
    fn_args: FnArgs, history: dict, tf_transform_output: tft.TFTransformOutput
) -> None:
    """Training curve beside the model; the input contract inside it."""
    tf.io.gfile.makedirs(fn_args.model_run_dir)
    with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, HISTORY_FILE), "w") as f:
        json.dump({k: [float(v) for v in vals] for k, vals in history.items()}, f)
    spec_path = os.path.join(fn_args.serving_model_dir, contract.INPUT_SPEC_FILE)
    tf.io.gfile.makedirs(os.path.dirname(spec_path))
    with tf.io.gfile.GFile(spec_path, "w") as f:
        json.dump(
            {
                "signature": contract.SIGNATURE_NAME,
                "input": f"{contract.INPUT_KEY}: 1-D string tensor of serialized tf.Example",
                "output": f"{contract.OUTPUT_KEY}: float32 [batch], P(tips > 0.2 * fare)",
                "features": signatures.input_spec(tf_transform_output),
            },
            f,
            indent=2,
        )
