"""metadata.outcome on a real ML Metadata store, recorded the way TFX records runs.

Every kind of push (new, kept, cached, declined), a cached re-run of a kept push,
and a refused run, in both layouts `metadata.graph` reads: the IR-based runners'
(`pipeline_run` and `node` contexts) and the older launcher's that Airflow uses
(a `run` context, node and run ids as execution properties). The runner's
summary, the report's verdict and the lineage's runs list render the same
outcome; the whole-pipeline version of this check is in tests/test_lineage.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2 as mlmd

from local import summary
from metadata import names, outcome
from metadata.graph import MetadataGraph
from review.lineage import list_runs
from review.lineage_text import push_text
from review.report import data

PIPELINE = "chicago_taxi"
COMPLETE, CACHED, FAILED = mlmd.Execution.COMPLETE, mlmd.Execution.CACHED, mlmd.Execution.FAILED


class Recorder:
    """Writes runs into a SQLite ML Metadata store as TFX's launchers lay them out."""

    def __init__(self, path: Path, legacy: bool) -> None:
        config = mlmd.ConnectionConfig()
        config.sqlite.filename_uri = str(path)
        config.sqlite.connection_mode = mlmd.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
        self.store, self.legacy, self.path = metadata_store.MetadataStore(config), legacy, path
        self.types: dict[str, int] = {}

    def _type(self, kind: str, name: str, properties: dict | None = None) -> int:
        if (kind, name) not in self.types:
            proto = {"artifact": mlmd.ArtifactType, "execution": mlmd.ExecutionType,
                     "context": mlmd.ContextType}[kind](name=name)
            for key, value in (properties or {}).items():
                proto.properties[key] = value
            put = getattr(self.store, f"put_{kind}_type")
            self.types[(kind, name)] = put(proto)
        return self.types[(kind, name)]

    def _context(self, type_name: str, name: str, properties: dict | None = None):
        type_id = self._type("context", type_name, {k: mlmd.STRING for k in properties or {}})
        found = self.store.get_context_by_type_and_name(type_name, name)
        if found is not None:
            return found
        context = mlmd.Context(type_id=type_id, name=name)
        for key, value in (properties or {}).items():
            context.properties[key].string_value = value
        context.id = self.store.put_contexts([context])[0]
        return context

    def artifact(self, type_name: str, **properties) -> mlmd.Artifact:
        artifact = mlmd.Artifact(type_id=self._type("artifact", type_name),
                                 uri=f"/pipeline_root/{type_name}/{len(self.types)}")
        for key, value in properties.items():
            if isinstance(value, int):
                artifact.custom_properties[key].int_value = value
            else:
                artifact.custom_properties[key].string_value = value
        return artifact

    def execute(self, run_id: str, node: str, state: int, outputs: dict | None = None) -> None:
        """One execution of `node` in `run_id`; `outputs`: key -> new or recorded artifact."""
        if self.legacy:
            type_id = self._type("execution", node, {
                names.LEGACY_RUN_ID: mlmd.STRING, names.LEGACY_COMPONENT_ID: mlmd.STRING})
            execution = mlmd.Execution(type_id=type_id, last_known_state=state)
            execution.properties[names.LEGACY_RUN_ID].string_value = run_id
            execution.properties[names.LEGACY_COMPONENT_ID].string_value = node
            contexts = [self._context(names.LEGACY_RUN_CONTEXT, f"{PIPELINE}.{run_id}",
                                      {names.LEGACY_RUN_ID: run_id})]
        else:
            execution = mlmd.Execution(type_id=self._type("execution", node),
                                       last_known_state=state)
            contexts = [self._context(names.RUN_CONTEXT, run_id),
                        self._context(names.NODE_CONTEXT, f"{PIPELINE}.{node}")]
        pairs = []
        for key, artifact in (outputs or {}).items():
            event = mlmd.Event(type=mlmd.Event.OUTPUT)
            event.path.steps.add().key = key
            pairs.append((artifact, event))
        _, ids, _ = self.store.put_execution(execution, pairs, contexts)
        for (artifact, _), artifact_id in zip(pairs, ids, strict=True):
            artifact.id = artifact_id

    def pushed(self, version: str, unchanged: bool = False) -> mlmd.Artifact:
        check = {names.SERVING_CHECK: json.dumps({"unchanged": True})} if unchanged else {}
        return self.artifact(names.PUSHED_MODEL, **{
            names.PUSHED: 1, names.PUSHED_VERSION: version,
            names.PUSHED_DESTINATION: f"/serving/{version}", **check})


@pytest.fixture(params=[False, True], ids=["ir-layout", "airflow-layout"])
def store(request, tmp_path: Path) -> Recorder:
    """r1 pushes 1; r2 is cached end to end; r3 trains the identical model again (kept);
    r4's model is not blessed; r5 repeats r3 from the cache; r6's data is refused."""
    rec = Recorder(tmp_path / "metadata.sqlite", legacy=request.param)
    blessed = rec.artifact(names.MODEL_BLESSING, **{names.BLESSED: 1})
    first = rec.pushed("1")
    rec.execute("r1", names.EVALUATOR, COMPLETE, {"blessing": blessed})
    rec.execute("r1", names.PUSHER, COMPLETE, {"pushed_model": first})
    rec.execute("r2", names.EVALUATOR, CACHED, {"blessing": blessed})
    rec.execute("r2", names.PUSHER, CACHED, {"pushed_model": first})
    again = rec.artifact(names.MODEL_BLESSING, **{names.BLESSED: 1})
    kept = rec.pushed("1", unchanged=True)
    rec.execute("r3", names.EVALUATOR, COMPLETE, {"blessing": again})
    rec.execute("r3", names.PUSHER, COMPLETE, {"pushed_model": kept})
    rec.execute("r4", names.EVALUATOR, COMPLETE, {
        "blessing": rec.artifact(names.MODEL_BLESSING, **{names.BLESSED: 0})})
    rec.execute("r4", names.PUSHER, COMPLETE, {"pushed_model": rec.artifact(
        names.PUSHED_MODEL, **{names.PUSHED: 0,
                               names.NOT_PUSHED_REASON: "the model was not blessed"})})
    rec.execute("r5", names.EVALUATOR, CACHED, {"blessing": again})
    rec.execute("r5", names.PUSHER, CACHED, {"pushed_model": kept})
    rec.execute("r6", names.GATE, FAILED)
    return rec


def _outcomes(rec: Recorder) -> dict[str, outcome.RunOutcome]:
    graph = MetadataGraph(str(rec.path))
    return {run_id: outcome.run_outcome(graph, run_id, details=False)
            for run_id in graph.run_ids()}


def test_each_kind_of_push_and_the_run_that_really_pushed(store: Recorder):
    found = _outcomes(store)
    served = {"version": "1", "destination": "/serving/1", "pushed_by": "r1"}
    assert list(found) == ["r1", "r2", "r3", "r4", "r5", "r6"]
    assert found["r1"].push == outcome.Push(outcome.PUSHED, **served)
    assert found["r2"].push == outcome.Push(outcome.CACHED, **served)
    assert found["r3"].push == outcome.Push(outcome.KEPT, **served)
    assert found["r4"].push == outcome.Push(outcome.NOT_PUSHED,
                                            reason="the model was not blessed")
    assert found["r5"].push == outcome.Push(outcome.CACHED, **served)
    assert [found[r].blessed for r in found] == [True, True, True, False, True, None]
    assert [found[r].pushed_path for r in found] == ["/serving/1"] + [None] * 5
    assert found["r6"].refused and found["r6"].failed == [names.GATE]
    assert found["r6"].push is None


CACHED_TOLD = (
    "Pushed: nothing new; serving version 1, pushed by run r1 (the Pusher was cached: nothing "
    "changed since that push): /serving/1",
    "nothing new pushed; serving 1, pushed by run r1",
    "Nothing changed since version 1 was pushed by run r1: this run reused the model, its "
    "evaluation and the push from the cache; nothing new was pushed.",
)
# run -> (the summary's "Pushed:" line, the runs list's words, the report's verdict)
TOLD = {
    "r1": ("Pushed: /serving/1", "pushed 1", "Model blessed and pushed as version 1."),
    "r2": CACHED_TOLD,
    "r3": ("Pushed: nothing new; serving version 1, pushed by run r1 (this run's model is "
           "identical to it): /serving/1",
           "nothing new pushed; kept 1 (the same model, pushed by run r1)",
           "Model blessed; it is the model already served as version 1 (pushed by run r1), so "
           "nothing new was pushed."),
    "r4": ("Pushed: nothing (the model was not blessed)", "pushed nothing",
           "Model NOT blessed; the evaluation's validation result is missing, so which rules "
           "failed cannot be shown; nothing pushed."),
    "r5": CACHED_TOLD,
    "r6": ("Pushed: nothing (no push happened)", "pushed nothing",
           "The validation gate refused the data: nothing was trained or pushed, and the "
           "served model is unchanged (see Anomalies for why, next to the data last accepted)."),
}


def test_summary_report_and_lineage_render_the_same_outcome(store: Recorder):
    listed = {run.run_id: run for run in list_runs(MetadataGraph(str(store.path)))}
    for run_id, recorded in _outcomes(store).items():
        assert listed[run_id] == recorded
        run = data.load_run(str(store.path), run_id)
        assert run.outcome == recorded
        verdict, blessed = data.verdict_line(run)
        assert blessed is recorded.blessed
        assert (summary.push_line(recorded), push_text(recorded), verdict) == TOLD[run_id]
