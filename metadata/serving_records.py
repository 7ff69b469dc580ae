"""What happens to pushed versions after the pipeline: batch predictions and rollout changes.

Both are recorded in the pipeline's own ML Metadata store, next to the runs
that produced the models, as executions whose input is the `PushedModel`
artifact of the version they used. So `review.lineage` finds them by walking
from a pushed model to its consumers, the way it walks everything else, and
`serving.rollout status` reads the history back from the same place.

Neither belongs to a pipeline run: they get their own context type, so the
runs list (contexts of type `pipeline_run`) does not count them.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

from metadata import names
from metadata.store import Location, describe

BATCH_PREDICTION = "BatchPrediction"  # execution type
ROLLOUT_CHANGE = "RolloutChange"  # execution type
BATCH_INPUT = "BatchPredictionInput"  # artifact type: an input CSV file
BATCH_OUTPUT = "BatchPredictions"  # artifact type: the output file
SERVING_CONTEXT = "serving"  # context type; one context per model name
_Execution = metadata_store_pb2.Execution
_Event = metadata_store_pb2.Event


def open_writable(where: Location) -> metadata_store.MetadataStore:
    """The store at `where`, opened for writing (a SQLite file must exist already:
    a batch prediction or a rollout always follows a pipeline run)."""
    import os

    if isinstance(where, str):
        if not os.path.exists(where):
            raise FileNotFoundError(f"no ML Metadata store at {where} (run the pipeline first)")
        config = metadata_store_pb2.ConnectionConfig()
        config.sqlite.filename_uri = where
        config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE
        return metadata_store.MetadataStore(config)
    try:
        return metadata_store.MetadataStore(where)
    except RuntimeError as error:
        raise FileNotFoundError(f"cannot open ML Metadata at {describe(where)}: {error}") from None


def _type_id(store, kind: str, name: str) -> int:
    put = {"execution": (store.put_execution_type, metadata_store_pb2.ExecutionType),
           "artifact": (store.put_artifact_type, metadata_store_pb2.ArtifactType),
           "context": (store.put_context_type, metadata_store_pb2.ContextType)}[kind]
    return put[0](put[1](name=name), can_add_fields=True)


def _set(message, values: dict[str, object]) -> None:
    for key, value in values.items():
        target = message.custom_properties[key]
        if isinstance(value, bool) or isinstance(value, int):
            target.int_value = int(value)
        elif isinstance(value, float):
            target.double_value = value
        else:
            target.string_value = value if isinstance(value, str) else json.dumps(value)


def pushed_artifact(store, version: int | str) -> metadata_store_pb2.Artifact | None:
    """The PushedModel artifact of the push that created `version` (not a later
    run that found the same model already served), or None."""
    found = [a for a in store.get_artifacts_by_type(names.PUSHED_MODEL)
             if a.custom_properties.get(names.PUSHED_VERSION, None) is not None
             and a.custom_properties[names.PUSHED_VERSION].string_value == str(version)
             and a.custom_properties[names.PUSHED].int_value == 1]
    real = [a for a in found if '"unchanged": true' not in
            a.custom_properties[names.SERVING_CHECK].string_value]
    return min(real or found, key=lambda a: a.id) if found else None


def _context(store, model_name: str) -> metadata_store_pb2.Context:
    type_id = _type_id(store, "context", SERVING_CONTEXT)
    existing = store.get_context_by_type_and_name(SERVING_CONTEXT, model_name)
    if existing is not None:
        return existing
    context = metadata_store_pb2.Context(type_id=type_id, name=model_name)
    context.id = store.put_contexts([context])[0]
    return context


def _record(store, execution_type: str, properties: dict, model_name: str,
            inputs: list[tuple[str, metadata_store_pb2.Artifact]],
            outputs: list[tuple[str, metadata_store_pb2.Artifact]]) -> int:
    execution = _Execution(type_id=_type_id(store, "execution", execution_type),
                           last_known_state=_Execution.COMPLETE)
    _set(execution, properties)
    pairs = []
    for kind, items in ((_Event.INPUT, inputs), (_Event.OUTPUT, outputs)):
        for index, (key, artifact) in enumerate(items):
            event = _Event(type=kind)
            event.path.steps.add().key = key
            event.path.steps.add().index = index
            pairs.append((artifact, event))
    execution_id, _, _ = store.put_execution(execution, pairs, [_context(store, model_name)])
    return execution_id


def _new_artifact(store, type_name: str, uri: str, properties: dict) -> metadata_store_pb2.Artifact:
    artifact = metadata_store_pb2.Artifact(
        type_id=_type_id(store, "artifact", type_name), uri=uri,
        state=metadata_store_pb2.Artifact.LIVE)
    _set(artifact, properties)
    return artifact


@dataclass(frozen=True)
class BatchRun:
    """One batch prediction, as recorded."""

    inputs: list[str]
    output: str
    version: int
    rows: int
    skipped: int
    seconds: float


def record_batch_prediction(where: Location, model_name: str, run: BatchRun) -> int:
    """Record a finished batch prediction; its execution id."""
    store = open_writable(where)
    model = pushed_artifact(store, run.version)
    inputs = [("input", _new_artifact(store, BATCH_INPUT, path, {})) for path in run.inputs]
    if model is not None:
        inputs.append(("model", model))
    output = _new_artifact(store, BATCH_OUTPUT, run.output,
                           {"rows": run.rows, "skipped_rows": run.skipped,
                            "model_version": str(run.version)})
    return _record(store, BATCH_PREDICTION,
                   {"model_version": str(run.version), "rows": run.rows,
                    "skipped_rows": run.skipped, "seconds": round(run.seconds, 3),
                    "finished_at": time.time()},
                   model_name, inputs, [("predictions", output)])


def record_rollout(where: Location, model_name: str, verb: str, before: dict, after: dict,
                   versions: list[int]) -> int:
    """Record one rollout change (verb, labels before and after); its execution id."""
    store = open_writable(where)
    inputs = [("model", a) for a in (pushed_artifact(store, v) for v in versions) if a]
    return _record(store, ROLLOUT_CHANGE,
                   {"verb": verb, "labels_before": before, "labels_after": after,
                    "at": time.time()}, model_name, inputs, [])


def _properties(message) -> dict[str, object]:
    values = {}
    for key, value in message.custom_properties.items():
        kind = value.WhichOneof("value")
        values[key] = getattr(value, kind) if kind else None
    return values


def executions_of(store, type_name: str) -> list[dict[str, object]]:
    """Recorded executions of `type_name`, oldest first, as property dicts with their id."""
    try:
        executions = store.get_executions_by_type(type_name)
    except Exception:  # noqa: BLE001 - the type is not registered: nothing recorded yet
        return []
    return [{"id": e.id, **_properties(e)} for e in sorted(executions, key=lambda e: e.id)]


def uses_of(store, artifact_id: int) -> list[dict[str, object]]:
    """Batch predictions and rollout changes that used a PushedModel artifact, oldest first."""
    types = {t.id: t.name for t in store.get_execution_types()}
    events = store.get_events_by_artifact_ids([artifact_id])
    ids = sorted({e.execution_id for e in events if e.type == _Event.INPUT})
    uses = []
    for execution in store.get_executions_by_id(ids) if ids else []:
        kind = types.get(execution.type_id)
        if kind not in (BATCH_PREDICTION, ROLLOUT_CHANGE):
            continue
        out_ids = [e.artifact_id for e in store.get_events_by_execution_ids([execution.id])
                   if e.type == _Event.OUTPUT]
        outputs = [a.uri for a in store.get_artifacts_by_id(out_ids)] if out_ids else []
        uses.append({"type": kind, "id": execution.id, "outputs": outputs,
                     **_properties(execution)})
    return uses


def describe_use(use: dict[str, object]) -> str:
    """One line for a use: what was scored or which labels changed."""
    if use["type"] == BATCH_PREDICTION:
        return (f"batch prediction #{use['id']}: {use.get('rows')} rows scored "
                f"({use.get('skipped_rows')} skipped) -> {', '.join(use['outputs'])}")
    return (f"rollout #{use['id']} {use.get('verb')}: {use.get('labels_before')} -> "
            f"{use.get('labels_after')}")
