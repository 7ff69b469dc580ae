"""Publish a model as a new version of a TF Serving base path, atomically.

TF Serving polls the base path every second and loads any new numeric folder
at once. The version is copied into a hidden, non-numeric temporary folder of
the base path (which TF Serving ignores), flushed to disk, then renamed to its
version number: one atomic step on a local or mounted filesystem, so a server
never sees a half-written version, and a push killed midway leaves only a
hidden folder (cleaned up by a later push). Object stores (gs://, s3://) have
no atomic rename; there the files are copied straight into the version folder
with saved_model.pb last, as TFX's Pusher does.

A model the newest version already holds (same TensorFlow fingerprint) is
not published again (`already_serving`): TF Serving would only reload it.
"""

import hashlib
import os
import time
import uuid

from absl import logging
from tfx.dsl.io import fileio
from tfx.utils import io_utils

from models.contract import SAVED_MODEL_FILE
from pipeline.components.baseline import existing_versions

TEMP_PREFIX = ".incoming-"  # hidden and non-numeric: TF Serving never loads it
STALE_TEMP_SECONDS = 3600  # a temporary folder this old belongs to a killed push


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
