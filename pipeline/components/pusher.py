"""Pusher for TF Serving: push only a blessed model that stock TF Serving can serve.

TFX's stock Pusher copies any blessed model into the serving folder. This one,
in the same place of the DAG (node id "Pusher"), adds what a model server
needs; each step is a module of its own:

1. Blessing: a model the Evaluator did not bless is not pushed. A blessed
   model that the newest pushed version already holds (same TensorFlow
   fingerprint, e.g. a re-run re-blessed it) is not copied again, which would
   only make TF Serving reload it: the artifact points at that version, as
   TFX's Pusher does when its destination exists (`publish.already_serving`).
2. Warm-up: TF Serving's warm-up requests, built from real examples of the
   eval split, are written into the model (serving/warmup.py).
3. Serving check: the model, warm-up file included, must load and answer in a
   separate process that imports only TensorFlow, the way TF Serving loads it
   (serving/serving_check.py runs serving/model_check.py). A model needing an
   op from a Python library (tensorflow-text, tf.py_function, ...) loads here
   but not in TF Serving, so it is not pushed, and the reason is recorded on
   the artifact and logged.
4. Atomic push: the version appears under the base path in one rename, never
   half-written (pipeline/components/publish.py).
5. Model card and label: `assets.extra/model_card.md` is written before the
   check (pipeline/components/model_card.py); after the push the version is
   labelled `stable` (or `canary`) in the live TF Serving config (serving/rollout.py).

The output is a standard `PushedModel` artifact with TFX Pusher's custom
properties (`pushed` 1/0, `pushed_destination`, `pushed_version`), which
`local/summary.py` reads, plus `not_pushed_reason` when nothing was pushed
and `serving_check` (the check's measurements, JSON) when something was;
their names are in metadata/names.py, shared with the readers.
"""

import json

from absl import logging
from tfx.components.util import model_utils
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.dsl.io import fileio
from tfx.types import artifact_utils, standard_artifacts
from tfx.utils import path_utils

from metadata.names import (
    NOT_PUSHED_REASON,
    PUSHED,
    PUSHED_DESTINATION,
    PUSHED_VERSION,
    SERVING_CHECK,
)
from pipeline.components import model_card, publish
from pipeline.components.feature_selection import FeatureSelection as FeatureSelectionArtifact
from serving import rollout, warmup
from serving.examples import without_label
from serving.serving_check import CHECK_TIMEOUT_SECONDS, run_serving_check


def mark_pushed(pushed_model, destination: str, version: int, check: dict) -> None:
    """Record on the PushedModel what was pushed where, as TFX's Pusher does."""
    pushed_model.set_int_custom_property(PUSHED, 1)
    pushed_model.set_string_custom_property(PUSHED_DESTINATION, destination)
    pushed_model.set_string_custom_property(PUSHED_VERSION, str(version))
    pushed_model.set_string_custom_property(SERVING_CHECK, json.dumps(check))


def mark_not_pushed(pushed_model, reason: str) -> None:
    """Record on the PushedModel, and log, why nothing was pushed."""
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
    serving_now = publish.already_serving(model_dir, base_directory)
    if serving_now is not None:
        # As TFX's Pusher when the destination exists: report the version
        # that serves this model, archive it, and write nothing new.
        destination, version = serving_now
        publish.copy_model(destination, pushed_model.uri)
        mark_pushed(pushed_model, destination, version, {"unchanged": True})
        logging.info("Pusher: %s already serves this model; nothing new pushed", destination)
        return True
    staged = pushed_model.uri
    publish.copy_model(model_dir, staged)
    split_dir = artifact_utils.get_split_uri([examples], warmup_split)
    raw = warmup.read_records(split_dir, sum(warmup.WARMUP_BATCH_SIZES))
    warmup.write_warmup(staged, warmup.warmup_logs([without_label(r) for r in raw]))
    if card_inputs is not None:  # before the check: what is checked is what is pushed
        model_card.write_card(staged, model_card.card_facts(
            staged, examples, blessing=model_blessing, **card_inputs))
    check = run_serving_check(staged, check_timeout_seconds)
    if not check.ok:
        clear_dir(staged)
        mark_not_pushed(pushed_model, f"it failed the TF Serving check: {check.reason}")
        return False
    destination, version = publish.publish(staged, base_directory)
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
