"""What one pipeline run did, worked out once from ML Metadata: `RunOutcome`.

The runner's summary (`local.summary`), the report (`review.report`) and the
runs list of `review.lineage` all render this record, so they cannot disagree.
The hard case is a re-run with nothing changed: its Pusher is *cached*, so its
PushedModel artifact is the one an earlier run wrote. That run pushed; this
one pushed nothing new. `Push.kind` says which of the four things happened and
`Push.pushed_by` names the run that really copied the version into serving.

Works for both layouts TFX records runs in (see `metadata.names`): every
lookup goes through `MetadataGraph`. Reading the evaluation's metrics needs
TFMA, imported inside `metadata.evaluation`'s functions, and only when
`details` is asked for, so the runs list stays light.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ml_metadata.proto import metadata_store_pb2

from metadata import artifacts, names
from metadata import evaluation as evaluation_files
from metadata.graph import (
    ComponentRun,
    MetadataGraph,
    is_blessed,
    is_pushed,
    is_unchanged_push,
    string_property,
)
from metadata.store import Location

# What a run's Pusher did (`Push.kind`).
PUSHED = "pushed"  # copied a new version into serving
KEPT = "kept"  # ran, and found this exact model already served: nothing new copied
CACHED = "cached"  # was cached: an earlier run's push answered, nothing new copied
NOT_PUSHED = "not pushed"  # ran and declined (not blessed, the model check failed, ...)

_Execution = metadata_store_pb2.Execution


@dataclass(frozen=True)
class Push:
    """What the run's Pusher recorded, and which run put that version into serving."""

    kind: str  # PUSHED, KEPT, CACHED or NOT_PUSHED
    version: str = ""  # the version folder the run's model is served as ("" if not pushed)
    destination: str = ""
    pushed_by: str = ""  # the run whose Pusher copied `version` into serving
    reason: str = ""  # NOT_PUSHED: the Pusher's reason, "" when it recorded none

    @property
    def new(self) -> bool:
        """True when this run copied a new version into serving."""
        return self.kind == PUSHED


@dataclass
class RunOutcome:
    """One pipeline run as ML Metadata recorded it."""

    run_id: str
    components: list[ComponentRun] = field(default_factory=list)
    started: float = 0.0  # seconds since the epoch
    finished: float = 0.0
    failed: list[str] = field(default_factory=list)  # components whose execution FAILED
    refused: bool = False  # the validation gate refused the data
    # What the validation gate read and compared it with (pipeline/components/drift.py).
    data_checked: str | None = None
    blessed: bool | None = None  # None: nothing was evaluated
    push: Push | None = None  # None: no Pusher execution recorded an outcome
    # Only with `details`: the candidate's overall metrics, every failed blessing rule
    # in words, and (big tippers, other trips) per split: "eval" as the Evaluator
    # counted it, "train" as FeatureSelection counted it in the rows it measured.
    metrics: dict[str, float] = field(default_factory=dict)
    not_blessed_because: list[str] = field(default_factory=list)
    label_counts: dict[str, list[int]] = field(default_factory=dict)

    @property
    def pushed_path(self) -> str | None:
        """The version folder this run pushed, None when it pushed nothing new."""
        return self.push.destination if self.push is not None and self.push.new else None

    @property
    def states(self) -> dict[str, int]:
        """How many of the run's executions ended in each state ("ran", "cached", ...)."""
        counts: dict[str, int] = {}
        for component in self.components:
            counts[component.state] = counts.get(component.state, 0) + 1
        return counts


def read_outcome(where: Location, run_id: str | None = None, details: bool = True) -> RunOutcome:
    """`run_outcome` of the store at `where` (default run: the latest)."""
    return run_outcome(MetadataGraph(where), run_id, details)


def run_outcome(graph: MetadataGraph, run_id: str | None = None,
                details: bool = True) -> RunOutcome:
    """What `run_id` (default: the latest run) did; NotRecordedError for an unknown run.

    `details` also reads the evaluation's metrics, class counts and failed
    rules from the artifacts (TFMA); without it only ML Metadata is read.
    """
    run_id = graph.latest_run_id(run_id)
    executions = graph.run_executions(run_id)
    failed = [graph.component(e) for e in executions if e.last_known_state == _Execution.FAILED]
    outcome = RunOutcome(
        run_id=run_id,
        components=graph.component_runs(run_id),
        started=min((e.create_time_since_epoch for e in executions), default=0) / 1000,
        finished=max((e.last_update_time_since_epoch for e in executions), default=0) / 1000,
        failed=failed,
        refused=names.GATE in failed,
        data_checked=data_checked(graph, run_id),
        blessed=_blessed(graph, run_id),
        push=run_push(graph, run_id),
    )
    if details:
        _add_details(graph, outcome)
    return outcome


def data_checked(graph: MetadataGraph, run_id: str) -> str | None:
    """The gate's record of the span it read and the accepted data it compared with."""
    accepted = graph.node_outputs(run_id, names.GATE, names.VALIDATED_STATISTICS)
    report = artifacts.read_json(accepted[0].uri if accepted else None, names.GATE_REPORT_FILE)
    return (report or {}).get("compared")


def _blessed(graph: MetadataGraph, run_id: str) -> bool | None:
    blessings = graph.node_outputs(run_id, names.EVALUATOR, names.MODEL_BLESSING)
    return is_blessed(blessings[0]) if blessings else None


def run_push(graph: MetadataGraph, run_id: str) -> Push | None:
    """What the run's Pusher recorded; None when no Pusher execution recorded anything."""
    pusher = graph.component_execution(run_id, names.PUSHER)
    recorded = graph.outputs_of_type(pusher.id, names.PUSHED_MODEL) if pusher else []
    if not recorded:
        return None
    artifact = recorded[0]
    if not is_pushed(artifact):
        return Push(NOT_PUSHED, reason=string_property(artifact, names.NOT_PUSHED_REASON))
    if pusher.last_known_state == _Execution.CACHED:
        kind = CACHED
    else:
        kind = KEPT if is_unchanged_push(artifact) else PUSHED
    origin = graph.producer(original_push(graph, artifact).id)
    return Push(kind, version=string_property(artifact, names.PUSHED_VERSION),
                destination=string_property(artifact, names.PUSHED_DESTINATION),
                pushed_by=graph.run_of(origin) if origin is not None else "")


def original_push(
    graph: MetadataGraph, artifact: metadata_store_pb2.Artifact
) -> metadata_store_pb2.Artifact:
    """The push that copied `artifact`'s version folder into serving.

    A Pusher that finds the identical model already served records that
    version again ("kept"); a cached Pusher re-links an earlier artifact. The
    copy was made by the earliest push of the same folder that was not a kept
    one; `artifact` itself when none is recorded.
    """
    destination = string_property(artifact, names.PUSHED_DESTINATION)
    copies = [a for a in graph.pushed_models()
              if string_property(a, names.PUSHED_DESTINATION) == destination
              and not is_unchanged_push(a)]
    return copies[0] if copies else artifact


def _add_details(graph: MetadataGraph, outcome: RunOutcome) -> None:
    """The evaluation's metrics, class counts and failed rules (reads TFMA's files)."""
    evaluations = graph.node_outputs(outcome.run_id, names.EVALUATOR, names.MODEL_EVALUATION)
    if evaluations:
        uri = evaluations[0].uri
        outcome.metrics = evaluation_files.overall_metrics(uri)
        counts = evaluation_files.eval_label_counts(uri)
        if counts:
            outcome.label_counts["eval"] = counts
        if outcome.blessed is False:
            validation = evaluation_files.load_validation(uri)
            outcome.not_blessed_because = (
                [f.text for f in evaluation_files.blessing_failures(validation)]
                if validation is not None
                else [f"the evaluation recorded no validation result under {uri}"])
    selections = graph.node_outputs(outcome.run_id, names.FEATURE_SELECTION, names.SELECTION)
    if selections:
        report = artifacts.read_json(selections[0].uri, names.SELECTION_REPORT_FILE)
        counts = evaluation_files.train_label_counts(report)
        if counts:
            outcome.label_counts["train"] = counts
