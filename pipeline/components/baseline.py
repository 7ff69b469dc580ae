"""Where the pipeline's two baselines live, found from inside components.

* The Evaluator compares a candidate with **the model currently served**: the
  version labelled `stable` in the live TF Serving config (serving/rollout.py),
  else the newest numeric version folder under the serving base, the one TF
  Serving's default version policy serves.
* The validation gate checks drift against **the statistics it last accepted**:
  each time it lets data through, it records where those statistics are in a
  small JSON file at a fixed place under the pipeline root.

Both are looked up by the component that needs them, at run time, with
TensorFlow's file I/O (local folders, gs://). No ML Metadata query and no TFX
Resolver node is involved, so the same DAG runs under the local runner,
Airflow, Vertex AI Pipelines and open-source Kubeflow Pipelines, whose v2
backend implements only container and importer executors (no resolvers).
"""

from __future__ import annotations

import json
import os
import time
import uuid

from metadata.artifacts import refusal_file
from models.contract import SAVED_MODEL_FILE


def _fileio():
    """TFX's file I/O (local, gs://), imported on first use: it loads TensorFlow,
    which the read-only tools that import this module (lineage) do not need."""
    from tfx.dsl.io import fileio

    return fileio

# Under the pipeline root: <pipeline_root>/baselines/accepted_statistics.json
BASELINES_DIR = "baselines"
ACCEPTED_STATISTICS_FILE = "accepted_statistics.json"


def existing_versions(base_directory: str) -> list[int]:
    """The numeric version folders under a TF Serving base path, ascending."""
    if not _fileio().isdir(base_directory):
        return []
    return sorted(
        int(name.rstrip("/")) for name in _fileio().listdir(base_directory)
        if name.rstrip("/").isdigit()
    )


def stable_version(base_directory: str) -> int | None:
    """The version labelled `stable` in the live TF Serving config beside the
    base path (serving/rollout_config.py), or None when there is no such label."""
    from serving import rollout_config

    path = os.path.join(os.path.dirname(base_directory.rstrip("/")),
                        rollout_config.LIVE_CONFIG_NAME)
    if not _fileio().exists(path):
        return None
    with _fileio().open(path, "r") as f:
        return rollout_config.parse(f.read()).labels.get(rollout_config.STABLE)


def served_model(base_directory: str) -> tuple[int, str] | None:
    """(version, folder) of the model TF Serving serves from `base_directory`, or None.

    The version labelled `stable` (serving.rollout), so that a rollback also
    rolls back what the next candidate must beat; where no label exists, the
    highest version number, which TF Serving's default policy serves. A folder
    without saved_model.pb (never the case for what the Pusher publishes) is
    skipped, as TF Serving would fail to load it.
    """
    stable = stable_version(base_directory)
    if stable is not None:
        folder = os.path.join(base_directory, str(stable))
        if _fileio().exists(os.path.join(folder, SAVED_MODEL_FILE)):
            return stable, folder
    for version in reversed(existing_versions(base_directory)):
        folder = os.path.join(base_directory, str(version))
        if _fileio().exists(os.path.join(folder, SAVED_MODEL_FILE)):
            return version, folder
    return None


def accepted_statistics_file(pipeline_root: str) -> str:
    """The pointer file to the statistics the gate last accepted."""
    return os.path.join(pipeline_root, BASELINES_DIR, ACCEPTED_STATISTICS_FILE)


def read_accepted_statistics(pointer_file: str) -> dict | None:
    """What the gate last accepted ({"uri", "split_names", "span", ...}), or None."""
    if not _fileio().exists(pointer_file):
        return None
    with _fileio().open(pointer_file, "r") as f:
        record = json.loads(f.read())
    return record if isinstance(record, dict) and record.get("uri") else None


def record_accepted_statistics(pointer_file: str, record: dict) -> None:
    """Point the next drift check at `record["uri"]`, replacing the file in one step."""
    _write_whole(pointer_file, {**record, "accepted_at": time.time()})


def record_refusal(pointer_file: str, statistics_uri: str, record: dict) -> None:
    """Record why the gate refused the statistics at `statistics_uri`, for the report
    (`metadata.artifacts.read_refusal` reads it back)."""
    _write_whole(refusal_file(pointer_file, statistics_uri),
                 {**record, "statistics_uri": statistics_uri, "refused_at": time.time()})


def _write_whole(path: str, record: dict) -> None:
    """Write `record` as JSON to `path`, replacing the file in one step.

    Locally the file is written beside its final name and renamed over it, so
    a run killed midway leaves the previous file intact; object stores
    replace a whole object in one write.
    """
    _fileio().makedirs(os.path.dirname(path))
    text = json.dumps(record, indent=1, sort_keys=True)
    if "://" in path:
        with _fileio().open(path, "w") as f:
            f.write(text)
        return
    staged = f"{path}.{uuid.uuid4().hex}.tmp"
    with open(staged, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(staged, path)

