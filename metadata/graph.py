"""A read-only view of ML Metadata: runs, executions by node, artifacts and provenance.

TFX records every execution under two contexts, its pipeline run and its node,
and links it to its input and output artifacts with events. `MetadataGraph`
answers the questions every reader asks of that graph (which runs, which
executions of a run and of which node, what an execution read and wrote, who
computed an artifact) so that the runner's summary, the report, the lineage
and the tests ask them the same way.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

from metadata import names
from metadata.store import Location, describe, open_store

_OUTPUT_EVENTS = (metadata_store_pb2.Event.OUTPUT,)
_INPUT_EVENTS = (metadata_store_pb2.Event.INPUT,)
# Artifact and execution properties worth showing (the rest is TFX bookkeeping).
_ARTIFACT_PROPERTIES = (
    "span", "version", "split_names", "input_fingerprint", "selected", names.BLESSED,
    names.PUSHED, names.PUSHED_VERSION, names.PUSHED_DESTINATION, names.BASELINE_URI,
    names.BASELINE_VERSION,
)
_EXECUTION_PROPERTIES = ("input_base", "schema_file", "train_args", "custom_config")


class NotRecordedError(LookupError):
    """What was asked for is not in ML Metadata; the message says what is."""


@dataclass
class ComponentRun:
    """One component's execution in one pipeline run."""

    component: str
    state: str
    seconds: float
    execution_id: int


@dataclass
class ArtifactInfo:
    """One artifact, with the properties a reader needs."""

    id: int
    type: str
    uri: str
    created: float  # seconds since the epoch
    properties: dict[str, object] = field(default_factory=dict)


@dataclass
class Step:
    """One execution, as plain values (lineage, the report)."""

    component: str
    execution_id: int
    state: str
    run_id: str
    started: float  # seconds since the epoch
    finished: float
    inputs: dict[str, list[ArtifactInfo]] = field(default_factory=dict)
    outputs: dict[str, list[ArtifactInfo]] = field(default_factory=dict)
    properties: dict[str, object] = field(default_factory=dict)
    role: str = "produced the model"  # or "checked the data", "evaluated", "pushed"

    @property
    def seconds(self) -> float:
        return self.finished - self.started


@dataclass
class Lineage:
    """A pushed model and the executions that led to it, oldest first (`review.lineage`)."""

    pushed: ArtifactInfo
    version: str
    destination: str
    steps: list[Step]
    # After the push: batch predictions and rollout changes that used this version.
    uses: list[dict] = field(default_factory=list)

    def step(self, component: str) -> Step | None:
        return next((s for s in self.steps if s.component == component), None)


def artifact_properties(artifact: metadata_store_pb2.Artifact) -> dict[str, object]:
    """Every property and custom property of an ML Metadata artifact, as plain values."""
    return {k: _value(v) for k, v in {**artifact.properties, **artifact.custom_properties}.items()}


def _value(value: metadata_store_pb2.Value) -> object:
    kind = value.WhichOneof("value")
    if kind == "struct_value":
        from google.protobuf import json_format

        return json_format.MessageToDict(value.struct_value)
    result = getattr(value, kind) if kind else None
    if isinstance(result, str) and result[:1] in ("{", "[", "n"):
        # TFX stores dict and list execution properties as JSON strings.
        try:
            return json.loads(result)
        except ValueError:
            return result
    return result


def int_property(artifact: metadata_store_pb2.Artifact, name: str) -> int:
    """An integer custom property, 0 when absent."""
    value = artifact.custom_properties.get(name)
    return value.int_value if value is not None else 0


def string_property(artifact: metadata_store_pb2.Artifact, name: str) -> str:
    """A string custom property, "" when absent."""
    value = artifact.custom_properties.get(name)
    return value.string_value if value is not None else ""


def sample_rates(artifact: metadata_store_pb2.Artifact) -> dict[str, float]:
    """{split: fraction read} of a statistics artifact; empty when not recorded."""
    value = artifact.custom_properties.get(names.SAMPLE_RATE_BY_SPLIT)
    if value is None:
        return {}
    recorded = _value(value)
    text = recorded.get("__value__") if isinstance(recorded, dict) else recorded
    return json.loads(text) if isinstance(text, str) else dict(recorded or {})


def is_pushed(artifact: metadata_store_pb2.Artifact) -> bool:
    """True when a PushedModel artifact records a push (not "nothing pushed")."""
    return bool(int_property(artifact, names.PUSHED))


def is_blessed(artifact: metadata_store_pb2.Artifact) -> bool | None:
    """A ModelBlessing's verdict, None when it records none."""
    if names.BLESSED not in artifact.custom_properties:
        return None
    return bool(int_property(artifact, names.BLESSED))


def is_unchanged_push(artifact: metadata_store_pb2.Artifact) -> bool:
    """True when the Pusher kept an already-served identical model instead of copying.

    `pipeline/components/pusher.py` then records the existing version with
    `serving_check` = {"unchanged": true}: nothing new reached TF Serving.
    """
    check = string_property(artifact, names.SERVING_CHECK)
    if not check:
        return False
    try:
        return bool(json.loads(check).get("unchanged"))
    except (ValueError, AttributeError):
        return False


class MetadataGraph:
    """A read-only view of an ML Metadata store as a provenance graph.

    `source` is a store location (see `metadata.store`) or a store already open.
    """

    def __init__(self, source: Location | metadata_store.MetadataStore) -> None:
        if isinstance(source, metadata_store.MetadataStore):
            self.path, self.store = "ML Metadata", source
        else:
            self.path, self.store = describe(source), open_store(source)
        self._artifact_types = {t.id: t.name for t in self.store.get_artifact_types()}
        self._context_types = {t.id: t.name for t in self.store.get_context_types()}
        self._events: dict[int, list[metadata_store_pb2.Event]] = {}

    # -- runs and executions ---------------------------------------------------
    def _run_contexts(self) -> dict[str, metadata_store_pb2.Context]:
        """Run id -> its context, for both layouts TFX records runs in (see names.py)."""
        runs = {c.name: c for c in self.store.get_contexts_by_type(names.RUN_CONTEXT)}
        for context in self.store.get_contexts_by_type(names.LEGACY_RUN_CONTEXT):
            value = context.properties.get(names.LEGACY_RUN_ID)
            runs.setdefault(value.string_value if value else context.name, context)
        return runs

    def run_ids(self) -> list[str]:
        """Pipeline run ids, oldest first, whichever runner recorded them."""
        contexts = self._run_contexts()
        return sorted(contexts, key=lambda r: (contexts[r].create_time_since_epoch,
                                               contexts[r].id))

    def latest_run_id(self, run_id: str | None = None) -> str:
        """`run_id`, or the latest run when None; NotRecordedError when nothing ran."""
        ids = self.run_ids()
        if not ids:
            raise NotRecordedError(f"no pipeline runs recorded in {self.path}")
        return run_id or ids[-1]

    def run_executions(self, run_id: str) -> list[metadata_store_pb2.Execution]:
        """The run's executions in start order; NotRecordedError for an unknown run."""
        context = self.store.get_context_by_type_and_name(names.RUN_CONTEXT, run_id)
        if context is None:
            context = self._run_contexts().get(run_id)
        if context is None:
            raise NotRecordedError(f"no run {run_id!r} in {self.path}; runs: {self.run_ids()}")
        executions = self.store.get_executions_by_context(context.id)
        return sorted(executions, key=lambda e: (e.create_time_since_epoch, e.id))

    def component_runs(self, run_id: str) -> list[ComponentRun]:
        """Every execution of `run_id`, in start order (none for an unknown run)."""
        try:
            executions = self.run_executions(run_id)
        except NotRecordedError:
            return []
        return [
            ComponentRun(
                component=self.component(e),
                state=names.state_name(e.last_known_state),
                seconds=(e.last_update_time_since_epoch - e.create_time_since_epoch) / 1000.0,
                execution_id=e.id,
            )
            for e in executions
        ]

    def component_execution(
        self, run_id: str, component: str
    ) -> metadata_store_pb2.Execution | None:
        """The (last) execution of node `component` in `run_id`."""
        matches = [e for e in self.run_executions(run_id) if self.component(e) == component]
        return matches[-1] if matches else None

    def _context_names(self, execution_id: int, type_name: str) -> list[str]:
        return [
            c.name
            for c in self.store.get_contexts_by_execution(execution_id)
            if self._context_types.get(c.type_id) == type_name
        ]

    def component(self, execution: metadata_store_pb2.Execution) -> str:
        """The pipeline node id ("Trainer", "FeatureSelection", ...)."""
        found = self._context_names(execution.id, names.NODE_CONTEXT)
        if found:
            return found[0].split(".", 1)[-1]
        legacy = execution.properties.get(names.LEGACY_COMPONENT_ID)
        return legacy.string_value if legacy is not None else "?"

    def run_of(self, execution: metadata_store_pb2.Execution) -> str:
        found = self._context_names(execution.id, names.RUN_CONTEXT)
        if found:
            return found[0]
        legacy = execution.properties.get(names.LEGACY_RUN_ID)
        return legacy.string_value if legacy is not None else "?"

    # -- events and artifacts ----------------------------------------------------
    def events(self, execution_id: int) -> list[metadata_store_pb2.Event]:
        if execution_id not in self._events:
            self._events[execution_id] = self.store.get_events_by_execution_ids([execution_id])
        return self._events[execution_id]

    def _linked(self, execution_id: int, kinds: Iterable[int]) -> dict[str, list[int]]:
        """Artifact ids by key ("examples", "model", ...) for events of `kinds`."""
        linked: dict[str, list[int]] = {}
        for event in self.events(execution_id):
            if event.type not in kinds:
                continue
            for step in event.path.steps:
                if step.HasField("key"):
                    linked.setdefault(step.key, []).append(event.artifact_id)
        return linked

    def input_ids(self, execution_id: int) -> dict[str, list[int]]:
        return self._linked(execution_id, _INPUT_EVENTS)

    def output_ids(self, execution_id: int) -> dict[str, list[int]]:
        return self._linked(execution_id, _OUTPUT_EVENTS)

    def artifacts(self, ids: Iterable[int]) -> list[metadata_store_pb2.Artifact]:
        ids = list(dict.fromkeys(ids))
        by_id = {a.id: a for a in self.store.get_artifacts_by_id(ids)} if ids else {}
        return [by_id[i] for i in ids if i in by_id]

    def artifact_type(self, artifact: metadata_store_pb2.Artifact) -> str:
        return self._artifact_types.get(artifact.type_id, "?")

    def outputs(self, execution_id: int) -> dict[str, list[metadata_store_pb2.Artifact]]:
        return {k: self.artifacts(v) for k, v in self.output_ids(execution_id).items()}

    def inputs(self, execution_id: int) -> dict[str, list[metadata_store_pb2.Artifact]]:
        return {k: self.artifacts(v) for k, v in self.input_ids(execution_id).items()}

    def outputs_of_type(self, execution_id: int, type_name: str) -> list:
        """The execution's output artifacts of type `type_name`, whatever their key."""
        ids = [i for v in self.output_ids(execution_id).values() for i in v]
        return [a for a in self.artifacts(ids) if self.artifact_type(a) == type_name]

    def node_outputs(self, run_id: str, node: str, type_name: str) -> list:
        """Outputs of type `type_name` of node `node`'s (last) execution in `run_id`."""
        execution = self.component_execution(run_id, node)
        return self.outputs_of_type(execution.id, type_name) if execution is not None else []

    def producer(self, artifact_id: int) -> metadata_store_pb2.Execution | None:
        """The execution that computed `artifact_id` (not one that reused it from cache)."""
        events = self.store.get_events_by_artifact_ids([artifact_id])
        ids = [e.execution_id for e in events if e.type in _OUTPUT_EVENTS]
        executions = self.store.get_executions_by_id(ids) if ids else []
        if not executions:
            return None
        complete = metadata_store_pb2.Execution.COMPLETE
        return min(
            executions,
            key=lambda e: (e.last_known_state != complete, e.create_time_since_epoch),
        )

    def consumers(self, artifact_id: int) -> list[metadata_store_pb2.Execution]:
        events = self.store.get_events_by_artifact_ids([artifact_id])
        ids = sorted({e.execution_id for e in events if e.type in _INPUT_EVENTS})
        return list(self.store.get_executions_by_id(ids)) if ids else []

    def pushed_models(self) -> list[metadata_store_pb2.Artifact]:
        """PushedModel artifacts that really pushed, oldest first."""
        pushed = [a for a in self.store.get_artifacts_by_type(names.PUSHED_MODEL) if is_pushed(a)]
        return sorted(pushed, key=lambda a: (a.create_time_since_epoch, a.id))

    # -- conversion to plain records ---------------------------------------------
    def artifact_info(self, artifact: metadata_store_pb2.Artifact) -> ArtifactInfo:
        props = {**artifact.properties, **artifact.custom_properties}
        return ArtifactInfo(
            id=artifact.id,
            type=self.artifact_type(artifact),
            uri=artifact.uri,
            created=artifact.create_time_since_epoch / 1000.0,
            properties={k: _value(props[k]) for k in _ARTIFACT_PROPERTIES if k in props},
        )

    def step(self, execution: metadata_store_pb2.Execution, role: str) -> Step:
        props = {**execution.properties, **execution.custom_properties}
        return Step(
            component=self.component(execution),
            execution_id=execution.id,
            state=names.state_name(execution.last_known_state),
            run_id=self.run_of(execution),
            started=execution.create_time_since_epoch / 1000.0,
            finished=execution.last_update_time_since_epoch / 1000.0,
            inputs={k: [self.artifact_info(a) for a in v]
                    for k, v in self.inputs(execution.id).items()},
            outputs={k: [self.artifact_info(a) for a in v]
                     for k, v in self.outputs(execution.id).items()},
            properties={k: _value(props[k]) for k in _EXECUTION_PROPERTIES if k in props},
            role=role,
        )

