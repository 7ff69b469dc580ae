"""Pusher for TF Serving: push only a blessed model that stock TF Serving can serve.

TFX's stock Pusher copies any blessed model into the serving folder. This one,
in the same place of the DAG (node id "Pusher"), adds what a model server needs:

1. Blessing: a model the Evaluator did not bless is not pushed. A blessed
   model that the newest pushed version already holds (same TensorFlow
   fingerprint, e.g. a re-run re-blessed it) is not copied again, which would
   only make TF Serving reload it: the artifact points at that version, as
   TFX's Pusher does when its destination exists.
2. Warm-up: `assets.extra/tf_serving_warmup_requests` is written into the
   pushed model: PredictionLog records built from real examples of the eval
   split with the label source `tips` removed (what clients send), one request
   per batch size 1, 2, 4, ... up to the batcher's max_batch_size. TF Serving
   replays them while loading a version, so the first real request does not
   pay the one-off cost of the first session run (docs/benchmarks.md).
3. Serving check: the model, warm-up file included, must load and answer in a
   separate process that imports only TensorFlow (`serving/model_check.py`),
   the way TF Serving loads it. A model needing an op from a Python library
   (tensorflow-text, tf.py_function, ...) loads here but not in TF Serving, so
   it is not pushed, and the reason is recorded on the artifact and logged.
4. Atomic push: TF Serving polls the base path every second and loads any new
   numeric folder at once. The version is copied into a hidden, non-numeric
   temporary folder of the base path (which TF Serving ignores), flushed to
   disk, then renamed to its version number: one atomic step on a local or
   mounted filesystem, so a server never sees a half-written version, and a
   push killed midway leaves only a hidden folder (cleaned up by a later
   push). Object stores (gs://, s3://) have no atomic rename; there the files
   are copied straight into the version folder with saved_model.pb last, as
   TFX's Pusher does.

5. Model card and label: `assets.extra/model_card.md` is written before the
   check (pipeline/components/model_card.py); after the push the version is
   labelled `stable` (or `canary`) in the live TF Serving config (serving/rollout.py).

The output is a standard `PushedModel` artifact with TFX Pusher's custom
properties (`pushed` 1/0, `pushed_destination`, `pushed_version`), which
`local/summary.py` reads, plus `not_pushed_reason` when nothing was pushed
and `serving_check` (the check's measurements, JSON) when something was.
"""

import importlib.util
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from absl import logging
from tfx.components.util import model_utils
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.dsl.io import fileio
from tfx.types import artifact_utils, standard_artifacts
from tfx.utils import io_utils, path_utils

from metadata.names import (
    NOT_PUSHED_REASON,
    PUSHED,
    PUSHED_DESTINATION,
    PUSHED_VERSION,
    SERVING_CHECK,
)
from models import contract, features
from pipeline.components import model_card
from pipeline.components.baseline import SAVED_MODEL_FILE, existing_versions
from pipeline.components.feature_selection import FeatureSelection as FeatureSelectionArtifact
from serving import rollout

# Batch sizes of the warm-up requests: every power of two up to max_batch_size.
WARMUP_BATCH_SIZES: tuple[int, ...] = tuple(
    2**i for i in range(contract.MAX_BATCH_SIZE.bit_length()) if 2**i <= contract.MAX_BATCH_SIZE
)
TEMP_PREFIX = ".incoming-"  # hidden and non-numeric: TF Serving never loads it
STALE_TEMP_SECONDS = 3600  # a temporary folder this old belongs to a killed push
CHECK_TIMEOUT_SECONDS = 300

# Custom properties of the PushedModel artifact: metadata/names.py, shared with the readers.


@dataclass(frozen=True)
class CheckResult:
    """What the isolated serving check said."""

    ok: bool
    reason: str
    details: dict


# --------------------------------------------------------------------------- warm-up


def read_examples(examples: standard_artifacts.Examples, split: str, limit: int) -> list[bytes]:
    """Up to `limit` serialized tf.Examples of `split`, in file order."""
    import tensorflow as tf

    split_dir = artifact_utils.get_split_uri([examples], split)
    files = sorted(fileio.glob(os.path.join(split_dir, "*")))
    records: list[bytes] = []
    for path in files:
        compression = "GZIP" if path.endswith(".gz") else ""
        for record in tf.data.TFRecordDataset(path, compression_type=compression):
            records.append(record.numpy())
            if len(records) >= limit:
                return records
    return records


def without_label(serialized: bytes) -> bytes:
    """The example as a client sends it: the label source `tips` removed."""
    from tensorflow.core.example import example_pb2

    example = example_pb2.Example.FromString(serialized)
    if features.TIPS_KEY in example.features.feature:
        del example.features.feature[features.TIPS_KEY]
    return example.SerializeToString()


def warmup_logs(examples: Sequence[bytes], batch_sizes: Sequence[int] = WARMUP_BATCH_SIZES):
    """One PredictionLog per batch size, filled with consecutive examples.

    Examples are reused from the start when there are fewer than the sizes
    add up to, so every batch size is still warmed up.
    """
    from tensorflow_serving.apis import prediction_log_pb2

    from serving import client

    if not examples:
        raise ValueError("no examples to build warm-up requests from")
    if len(batch_sizes) > contract.MAX_WARMUP_RECORDS:
        raise ValueError(f"TF Serving reads at most {contract.MAX_WARMUP_RECORDS} warm-up records")
    logs, position = [], 0
    for size in batch_sizes:
        batch = [examples[(position + i) % len(examples)] for i in range(size)]
        position += size
        request = client.predict_request(batch, contract.MODEL_NAME, contract.SIGNATURE_NAME)
        logs.append(
            prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
        )
    return logs


def write_warmup(model_dir: str, logs) -> str:
    """Write `logs` as the model's TFRecord warm-up file; its path."""
    import tensorflow as tf

    path = os.path.join(model_dir, contract.WARMUP_FILE)
    fileio.makedirs(os.path.dirname(path))
    with tf.io.TFRecordWriter(path) as writer:
        for log in logs:
            writer.write(log.SerializeToString())
    return path


# --------------------------------------------------------------------------- serving check


def run_serving_check(model_dir: str, timeout: int = CHECK_TIMEOUT_SECONDS) -> CheckResult:
    """Run serving/model_check.py on `model_dir` in a fresh TensorFlow-only process."""
    script = importlib.util.find_spec("serving.model_check").origin
    command = [
        sys.executable, script, model_dir,
        "--signature", contract.SIGNATURE_NAME,
        "--warmup", os.path.join(model_dir, contract.WARMUP_FILE),
        "--probability-output", contract.OUTPUT_KEY,
    ]
    # tensorflow-transform sets TF_USE_LEGACY_KERAS=1 in this process when
    # imported; inherited, it would make TensorFlow import tf_keras in the check.
    environment = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    environment["TF_CPP_MIN_LOG_LEVEL"] = "2"
    try:
        finished = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, env=environment
        )
    except subprocess.TimeoutExpired:
        return CheckResult(False, f"the serving check did not finish within {timeout} s", {})
    return parse_check_output(finished.returncode, finished.stdout, finished.stderr)


def parse_check_output(returncode: int, stdout: str, stderr: str) -> CheckResult:
    """The check's verdict from its last stdout line, or why it gave none."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    try:
        result = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        result = None
    if not isinstance(result, dict) or "ok" not in result:
        tail = [line for line in stderr.splitlines() if line.strip()][-1:] or ["no output"]
        return CheckResult(
            False, f"the serving check crashed (exit code {returncode}): {tail[0]}", {}
        )
    details = {k: v for k, v in result.items() if k not in ("ok", "reason")}
    return CheckResult(bool(result["ok"]) and returncode == 0, result.get("reason", ""), details)


# --------------------------------------------------------------------------- push


def is_local(path: str) -> bool:
    return "://" not in path


def next_version(base_directory: str, now: float | None = None) -> int:
    """The current Unix time (as TFX's Pusher), but always above every existing version.

    TF Serving serves the highest number, so a clock running behind must not
    give a new model a number that hides it behind an older one.
    """
    versions = existing_versions(base_directory)
    return max(int(now if now is not None else time.time()), (versions[-1] + 1) if versions else 0)


def model_identity(model_dir: str) -> bytes:
    """What makes two SavedModels the same model: TensorFlow's fingerprint.pb
    (hashes of graph, signatures and checkpoint), else the bytes of the graph
    and variables. Extra assets such as the warm-up file do not count."""
    import hashlib

    fingerprint = os.path.join(model_dir, "fingerprint.pb")
    if fileio.exists(fingerprint):
        with fileio.open(fingerprint, "rb") as f:
            return f.read()
    digest = hashlib.sha256()
    paths = [os.path.join(model_dir, SAVED_MODEL_FILE)] + sorted(
        fileio.glob(os.path.join(model_dir, "variables", "*"))
    )
    for path in paths:
        with fileio.open(path, "rb") as f:
            digest.update(f.read())
    return digest.digest()


def already_serving(model_dir: str, base_directory: str) -> tuple[str, int] | None:
    """(path, version) of the newest pushed version when it is this very model.

    Re-pushing it would only make TF Serving load the same model again, e.g.
    when a re-run re-blesses the model it had already pushed.
    """
    versions = existing_versions(base_directory)
    if not versions:
        return None
    newest = os.path.join(base_directory, str(versions[-1]))
    try:
        same = model_identity(newest) == model_identity(model_dir)
    except (OSError, tf_errors()) as error:
        logging.warning("Pusher: cannot compare with %s: %s", newest, error)
        return None
    return (newest, versions[-1]) if same else None


def tf_errors() -> type[Exception]:
    """TensorFlow's I/O error class (raised by fileio on missing files)."""
    import tensorflow as tf

    return tf.errors.OpError


def copy_model(source: str, destination: str) -> None:
    """Copy a SavedModel with saved_model.pb last (readers take it as "complete")."""
    io_utils.copy_dir(source, destination, deny_regex_patterns=[r"/saved_model\.pb$"])
    io_utils.copy_file(
        os.path.join(source, SAVED_MODEL_FILE), os.path.join(destination, SAVED_MODEL_FILE)
    )


def fsync_dir(directory: str) -> None:
    """Flush a folder's entries (new names, a rename) to disk."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def fsync_tree(path: str) -> None:
    """Flush every file and folder under `path` to disk, so that the rename
    publishing it cannot reach the disk before its content does."""
    for directory, _, files in os.walk(path):
        for name in files:
            with open(os.path.join(directory, name), "rb") as f:
                os.fsync(f.fileno())
        fsync_dir(directory)


def remove_stale_temp_dirs(base_directory: str, now: float | None = None) -> list[str]:
    """Delete hidden temporary folders left behind by pushes that were killed."""
    now = now if now is not None else time.time()
    removed = []
    for name in os.listdir(base_directory):
        path = os.path.join(base_directory, name)
        if name.startswith(TEMP_PREFIX) and now - os.path.getmtime(path) > STALE_TEMP_SECONDS:
            fileio.rmtree(path)
            removed.append(path)
    return removed


def publish(staged_dir: str, base_directory: str, now: float | None = None) -> tuple[str, int]:
    """Make `staged_dir` the newest version under `base_directory`: (path, version)."""
    fileio.makedirs(base_directory)
    version = next_version(base_directory, now)
    if not is_local(base_directory):
        destination = os.path.join(base_directory, str(version))
        copy_model(staged_dir, destination)
        return destination, version
    remove_stale_temp_dirs(base_directory)
    temp = os.path.join(base_directory, f"{TEMP_PREFIX}{version}-{uuid.uuid4().hex[:8]}")
    copy_model(staged_dir, temp)
    fsync_tree(temp)
    while os.path.exists(os.path.join(base_directory, str(version))):
        version += 1  # another push took this number meanwhile
    destination = os.path.join(base_directory, str(version))
    os.rename(temp, destination)
    fsync_dir(base_directory)
    return destination, version


# --------------------------------------------------------------------------- artifact


def mark_pushed(pushed_model, destination: str, version: int, check: dict) -> None:
    pushed_model.set_int_custom_property(PUSHED, 1)
    pushed_model.set_string_custom_property(PUSHED_DESTINATION, destination)
    pushed_model.set_string_custom_property(PUSHED_VERSION, str(version))
    pushed_model.set_string_custom_property(SERVING_CHECK, json.dumps(check))


def mark_not_pushed(pushed_model, reason: str) -> None:
    pushed_model.set_int_custom_property(PUSHED, 0)
    pushed_model.set_string_custom_property(NOT_PUSHED_REASON, reason)
    logging.error("Pusher: model not pushed: %s", reason)


def clear_dir(path: str) -> None:
    """Empty an artifact folder: a PushedModel that was not pushed holds no model."""
    if fileio.exists(path):
        fileio.rmtree(path)
    fileio.makedirs(path)


def push(
    model: standard_artifacts.Model,
    model_blessing: standard_artifacts.ModelBlessing,
    examples: standard_artifacts.Examples,
    pushed_model: standard_artifacts.PushedModel,
    base_directory: str,
    warmup_split: str = "eval",
    check_timeout_seconds: int = CHECK_TIMEOUT_SECONDS,
    push_as: str = "stable",
    settle_seconds: float = 0,
    card_inputs: dict | None = None,
) -> bool:
    """Everything the component does; True when a version was pushed."""
    if not model_utils.is_model_blessed(model_blessing):
        mark_not_pushed(pushed_model, "the model was not blessed by the Evaluator")
        return False
    model_dir = path_utils.serving_model_path(model.uri, path_utils.is_old_model_artifact(model))
    serving_now = already_serving(model_dir, base_directory)
    if serving_now is not None:
        # As TFX's Pusher when the destination exists: report the version
        # that serves this model, archive it, and write nothing new.
        destination, version = serving_now
        copy_model(destination, pushed_model.uri)
        mark_pushed(pushed_model, destination, version, {"unchanged": True})
        logging.info("Pusher: %s already serves this model; nothing new pushed", destination)
        return True
    staged = pushed_model.uri
    copy_model(model_dir, staged)
    raw = read_examples(examples, warmup_split, sum(WARMUP_BATCH_SIZES))
    logs = warmup_logs([without_label(r) for r in raw])
    write_warmup(staged, logs)
    if card_inputs is not None:  # before the check: what is checked is what is pushed
        model_card.write_card(staged, model_card.card_facts(
            staged, examples, blessing=model_blessing, **card_inputs))
    check = run_serving_check(staged, check_timeout_seconds)
    if not check.ok:
        clear_dir(staged)
        mark_not_pushed(pushed_model, f"it failed the TF Serving check: {check.reason}")
        return False
    destination, version = publish(staged, base_directory)
    mark_pushed(pushed_model, destination, version, check.details)
    logging.info("Pusher: pushed version %d to %s (%s)", version, destination, check.details)
    if rollout.label_after_push(base_directory, version, push_as, settle_seconds):
        logging.info("Pusher: version %d labelled %s", version, push_as)
    return True


@component
def ServingPusher(  # noqa: N802 - TFX components are named like classes
    model: InputArtifact[standard_artifacts.Model],
    model_blessing: InputArtifact[standard_artifacts.ModelBlessing],
    examples: InputArtifact[standard_artifacts.Examples],
    statistics: InputArtifact[standard_artifacts.ExampleStatistics],
    selection: InputArtifact[FeatureSelectionArtifact],
    evaluation: InputArtifact[standard_artifacts.ModelEvaluation],
    model_run: InputArtifact[standard_artifacts.ModelRun],
    pushed_model: OutputArtifact[standard_artifacts.PushedModel],
    base_directory: Parameter[str],
    warmup_split: Parameter[str] = "eval",
    check_timeout_seconds: Parameter[int] = CHECK_TIMEOUT_SECONDS,
    push_as: Parameter[str] = "stable",
    settle_seconds: Parameter[int] = 0,
) -> None:
    """Push a blessed model that passes the TF Serving check, with warm-up, atomically."""
    push(
        model, model_blessing, examples, pushed_model, base_directory,
        warmup_split, check_timeout_seconds, push_as, settle_seconds,
        card_inputs={"statistics": statistics, "selection": selection,
                     "evaluation": evaluation, "model_run": model_run},
    )
