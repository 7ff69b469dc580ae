"""The live TF Serving config: which versions are loaded and which version each label names.

Where it lives: `<output-dir>/serving_model/models.config`, beside the model's
base path, inside the folder compose and Kubernetes mount at /models, so the
server reads it as /models/models.config (`--model_config_file`) and re-reads
it every `CONFIG_POLL_SECONDS` (`--model_config_file_poll_wait_seconds`). The
Pusher writes it at each push and `serving.rollout` rewrites it;
`serving/models.config` in the repository stays the template it starts from.

What it says: TF Serving's `specific` version policy (exactly these versions
are loaded) and `version_labels` (`stable`, and `canary` during a canary).

The order TF Serving requires (tensorflow/serving,
tensorflow_serving/model_servers/server_core.cc, `ServerCore::ReloadConfig`
and `UpdateModelVersionLabelMap`): on every reload the label map is checked
*before* the new config's versions are loaded, and a label may only name a
version that is already AVAILABLE. The one exception, with
`--allow_version_labels_for_unavailable_models`, is a label that does not yet
name another version (the first config at start-up). Moving a label to a
version that is not loaded yet fails the reload, and since that reload then
never loads the version, every later poll fails the same way. So a change is
written in two steps (`plan`): first the new versions are added with the
labels unchanged; once the server has loaded them, the labels move and
versions no label names any more are dropped.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from serving import MODEL_BASE_PATH, MODEL_NAME

LIVE_CONFIG_NAME = "models.config"
TEMPLATE = Path(__file__).resolve().parent / "models.config"
STABLE, CANARY = "stable", "canary"
LABELS = (STABLE, CANARY)
# How often the server re-reads the config file (compose and k8s flag).
CONFIG_POLL_SECONDS = 5
HEADER = (
    "# TF Serving model server config (ModelServerConfig, protobuf text format), written\n"
    "# by the Pusher and `python -m serving.rollout`; do not edit while a rollout runs.\n"
    "# The server re-reads it every few seconds (--model_config_file_poll_wait_seconds).\n"
)


class RolloutError(Exception):
    """A rollout request that cannot be carried out; the message is one line."""


@dataclass(frozen=True)
class ServingState:
    """The versions TF Serving is told to load, and the label -> version map."""

    versions: tuple[int, ...] = ()
    labels: dict[str, int] = field(default_factory=dict)

    @staticmethod
    def of_labels(labels: dict[str, int]) -> ServingState:
        return ServingState(tuple(sorted(set(labels.values()))), dict(labels))


def live_config_path(serving_root: str | Path) -> Path:
    """The live config of the serving folder (`<output-dir>/serving_model`)."""
    return Path(serving_root) / LIVE_CONFIG_NAME


def to_proto(state: ServingState, base_path: str = MODEL_BASE_PATH):
    """The ModelServerConfig for `state` (no versions: TF Serving's `latest` default)."""
    from tensorflow_serving.config import model_server_config_pb2

    config = model_server_config_pb2.ModelServerConfig()
    model = config.model_config_list.config.add()
    model.name, model.base_path, model.model_platform = MODEL_NAME, base_path, "tensorflow"
    if state.versions:
        model.model_version_policy.specific.versions.extend(state.versions)
    else:
        model.model_version_policy.latest.num_versions = 1
    for label in sorted(state.labels):
        model.version_labels[label] = state.labels[label]
    return config


def render(state: ServingState, base_path: str = MODEL_BASE_PATH) -> str:
    from google.protobuf import text_format

    return HEADER + text_format.MessageToString(to_proto(state, base_path))


def parse(text: str) -> ServingState:
    """The state a config file states (the template's `latest` policy: no versions)."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    try:
        config = text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
    except text_format.ParseError as error:
        raise RolloutError(f"cannot parse the serving config: {error}") from None
    for model in config.model_config_list.config:
        if model.name == MODEL_NAME:
            policy = model.model_version_policy
            versions = tuple(policy.specific.versions) if policy.HasField("specific") else ()
            return ServingState(tuple(sorted(versions)), dict(model.version_labels))
    raise RolloutError(f"the serving config has no model named {MODEL_NAME}")


def read(serving_root: str | Path) -> ServingState:
    """The live state; the template's (nothing pinned) when no live config exists yet."""
    path = live_config_path(serving_root)
    return parse(path.read_text() if path.exists() else TEMPLATE.read_text())


def write(serving_root: str | Path, state: ServingState) -> Path:
    """Replace the live config in one rename: the server never reads half a file."""
    path = live_config_path(serving_root)
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    with open(staged, "w") as f:
        f.write(render(state))
        f.flush()
        os.fsync(f.fileno())
    os.replace(staged, path)
    return path


def plan(current: ServingState, labels: dict[str, int]) -> list[ServingState]:
    """The configs to write, in order, to go from `current` to `labels`.

    Step 1 (only when a version is new): load it beside what is served, labels
    unchanged. Step 2: move the labels, drop the versions no label names.
    """
    target = ServingState.of_labels(labels)
    steps = []
    new = set(target.versions) - set(current.versions)
    if new:
        steps.append(ServingState(tuple(sorted(set(current.versions) | new)), current.labels))
    if target != current:
        steps.append(target)
    return steps


def transition_problem(before: ServingState, after: ServingState) -> str | None:
    """Why TF Serving would refuse to go from `before` (all its versions loaded)
    to `after`, or None: a label may only move to a version already loaded."""
    for label, version in after.labels.items():
        moved = before.labels.get(label) not in (None, version)
        if moved and version not in before.versions:
            return f"label '{label}' moves to version {version}, which is not loaded yet"
        if version not in after.versions:
            return f"label '{label}' names version {version}, which the config does not load"
    return None


def moves_label_to(before: ServingState, after: ServingState, versions: list[int]) -> bool:
    """Whether `after` moves a label that names another version in `before` onto one
    of `versions`: only then must the server have loaded them first (a new label
    may name a version still loading, with --allow_version_labels_for_unavailable_models)."""
    return any(before.labels.get(label) not in (None, version) and version in versions
               for label, version in after.labels.items())
