"""Which model the Evaluator compares a candidate with.

TFX's LatestBlessedModelStrategy returns the latest blessed model. When a run
changes nothing, the cached Trainer's candidate *is* that model, so the
Evaluator would get a new input (the candidate as its own baseline), run again,
and the Pusher after it: a re-run with nothing changed would never be fully
cached, and would spend most of its time comparing a model with itself.

This strategy runs after the Trainer. When the latest blessed model is this
run's candidate, it returns the baseline that candidate was blessed against
(recorded by the Evaluator on the blessing), so the Evaluator's inputs are
exactly those of the run that blessed it and its result is reused from cache.
Otherwise it is TFX's strategy unchanged. Kubeflow V2 compiles only TFX's own
strategies, so remote pipelines use LatestBlessedModelStrategy.
"""

from __future__ import annotations

from ml_metadata.proto import metadata_store_pb2
from tfx.components.evaluator import constants
from tfx.dsl.input_resolution.strategies.latest_blessed_model_strategy import (
    LatestBlessedModelStrategy,
)

MODEL_KEY = "model"
BLESSING_KEY = "model_blessing"
_DONE = {metadata_store_pb2.Execution.COMPLETE, metadata_store_pb2.Execution.CACHED}


class BaselineForCandidateStrategy(LatestBlessedModelStrategy):
    """The latest blessed model, unless that is the candidate itself (see module doc)."""

    def __init__(self, trainer_node: str):
        self._trainer_node = trainer_node  # ML Metadata node context: "<pipeline>.Trainer"

    def resolve_artifacts(self, store, input_dict):
        models = list(input_dict.get(MODEL_KEY, []))
        blessings = list(input_dict.get(BLESSING_KEY, []))
        result = super().resolve_artifacts(store, input_dict)
        if not result or not result[MODEL_KEY]:
            return result
        if result[MODEL_KEY][0].id != candidate_model_id(store, self._trainer_node):
            return result
        baseline_id = result[BLESSING_KEY][0].get_int_custom_property(
            constants.ARTIFACT_PROPERTY_BASELINE_MODEL_ID_KEY
        )
        return {
            MODEL_KEY: [m for m in models if m.id == baseline_id],
            BLESSING_KEY: blessing_of(blessings, baseline_id),
        }


def blessing_of(blessings: list, model_id: int) -> list:
    """The latest positive blessing of `model_id`, as a 0- or 1-element list."""
    matching = [
        b
        for b in blessings
        if b.get_int_custom_property(constants.ARTIFACT_PROPERTY_CURRENT_MODEL_ID_KEY) == model_id
        and b.get_int_custom_property(constants.ARTIFACT_PROPERTY_BLESSED_KEY) == 1
    ]
    return sorted(matching, key=lambda b: b.id)[-1:]


def _trainer_executions(store, trainer_node: str) -> list:
    """Executions of the Trainer node, in either layout TFX records.

    The local runner (TFX's IR-based launcher) puts them in a "node" context;
    TFX's Airflow runner uses the older launcher, which records the pipeline
    and component on each execution's properties instead.
    """
    context = store.get_context_by_type_and_name("node", trainer_node)
    if context is not None:
        return store.get_executions_by_context(context.id)
    pipeline_name, _, component_id = trainer_node.rpartition(".")
    return [
        e for e in store.get_executions()
        if "component_id" in e.properties and "pipeline_name" in e.properties
        and e.properties["component_id"].string_value == component_id
        and e.properties["pipeline_name"].string_value == pipeline_name
    ]


def candidate_model_id(store, trainer_node: str) -> int | None:
    """The model the latest finished Trainer execution output (ran or cached)."""
    executions = [
        e for e in _trainer_executions(store, trainer_node) if e.last_known_state in _DONE
    ]
    if not executions:
        return None
    latest = max(executions, key=lambda e: e.id)
    events = store.get_events_by_execution_ids([latest.id])
    outputs = [
        e for e in events
        if e.type == metadata_store_pb2.Event.OUTPUT and e.path.steps
        and e.path.steps[0].key == "model"
    ]
    return outputs[0].artifact_id if outputs else None
