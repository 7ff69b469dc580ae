"""The whole pipeline through LocalDagRunner on real data, checked through ML Metadata."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf

from metadata import outcome
from metadata.graph import MetadataGraph
from metadata.store import open_store
from models import contract, features
from tests.conftest import PipelineRun, run_pipeline
from tests.tft_data import csv_rows, to_example

COMPONENTS = {
    "CsvExampleGen",
    "StatisticsGen",
    "ImportSchemaGen",
    "ExampleValidator",
    "DataValidationGate",
    "FeatureSelection",
    "Transform",
    "Trainer",
    "Evaluator",
    "Pusher",
}
OUTPUT_TYPES = {
    "Examples",
    "ExampleStatistics",
    "Schema",
    "ExampleAnomalies",
    "ValidatedStatistics",
    "FeatureSelection",
    "TransformGraph",
    "Model",
    "ModelRun",
    "ModelEvaluation",
    "ModelBlessing",
    "PushedModel",
}

# Every test here uses the session's whole-pipeline run.
pytestmark = pytest.mark.e2e


def _artifacts_by_type(store) -> dict[str, list]:
    types = {t.id: t.name for t in store.get_artifact_types()}
    found: dict[str, list] = {}
    for artifact in store.get_artifacts():
        found.setdefault(types[artifact.type_id], []).append(artifact)
    return found


def test_every_component_ran_once(pipeline_run: PipelineRun):
    store = open_store(str(pipeline_run.metadata_path))
    (run_id,) = MetadataGraph(store).run_ids()
    runs = MetadataGraph(store).component_runs(run_id)
    assert sorted(r.component for r in runs) == sorted(COMPONENTS)
    assert {r.state for r in runs} == {"ran"}


def test_every_component_produced_its_artifacts(pipeline_run: PipelineRun):
    store = open_store(str(pipeline_run.metadata_path))
    found = _artifacts_by_type(store)
    assert OUTPUT_TYPES <= set(found)
    for type_name in OUTPUT_TYPES:
        for artifact in found[type_name]:
            assert tf.io.gfile.exists(artifact.uri), f"{type_name} artifact missing: {artifact.uri}"


def test_feature_selection_is_recorded_and_obeyed(pipeline_run: PipelineRun, pushed_model_dir):
    store = open_store(str(pipeline_run.metadata_path))
    (selection,) = _artifacts_by_type(store)["FeatureSelection"]
    selected = selection.custom_properties["selected"].string_value.split(",")
    assert "payment_type" in selected and "fare" in selected
    assert features.TIPS_KEY not in selected
    dropped = set(features.CANDIDATE_FEATURES) - set(selected)
    assert dropped, "on this data some candidates carry too little information"
    # The model reads exactly the selected columns (fare also feeds the label).
    spec = json.loads((pushed_model_dir / contract.INPUT_SPEC_FILE).read_text())
    assert set(spec["features"]) == set(selected)


def test_summary_reports_metrics_blessing_and_push(pipeline_run: PipelineRun, pushed_model_dir):
    result = outcome.read_outcome(str(pipeline_run.metadata_path))
    assert result.blessed is True
    assert result.metrics["auc"] > 0.95 and result.metrics["binary_accuracy"] > 0.89
    assert result.pushed_path == str(pushed_model_dir)
    assert f"Pushed: {pushed_model_dir}" in pipeline_run.stdout
    assert "BLESSED" in pipeline_run.stdout


def test_pushed_model_is_in_tf_serving_layout(pipeline_run: PipelineRun, pushed_model_dir):
    assert pushed_model_dir.parent == pipeline_run.serving_base
    assert (pushed_model_dir / "saved_model.pb").is_file()
    assert (pushed_model_dir / "variables").is_dir()


def test_pushed_model_answers_raw_examples(pushed_model_dir):
    rows = csv_rows(200)
    for row in rows:
        row.pop(features.TIPS_KEY)
    serve = tf.saved_model.load(str(pushed_model_dir)).signatures[contract.SIGNATURE_NAME]
    probability = serve(examples=tf.constant([to_example(r) for r in rows]))[contract.OUTPUT_KEY]
    probability = probability.numpy()
    assert probability.shape == (200,)
    assert np.all((probability >= 0) & (probability <= 1))
    # The model separates cash trips (almost never a recorded big tip) from card trips.
    cash = np.array([r["payment_type"] == [b"Cash"] for r in rows])
    assert probability[cash].mean() < 0.1 < 0.5 < probability[~cash].mean()


@pytest.fixture(scope="module")
def second_run(pipeline_run: PipelineRun) -> PipelineRun:
    run = run_pipeline(pipeline_run.data_root, pipeline_run.output_dir)
    assert run.returncode == 0, run.stderr[-3000:]
    return run


def test_a_second_run_reuses_cached_results(second_run: PipelineRun):
    store = open_store(str(second_run.metadata_path))
    first_id, second_id = MetadataGraph(store).run_ids()
    states = {r.component: r.state for r in MetadataGraph(store).component_runs(second_id)}
    assert set(states) == COMPONENTS
    # Nothing changed, so nothing runs: the gate and the Evaluator find their
    # baselines themselves, so their cached results are reused like the rest.
    assert set(states.values()) == {"cached"}, states


def test_a_cached_run_pushes_nothing_new(second_run: PipelineRun):
    """Its Pusher is cached: the outcome names the first run's push, not a new one."""
    (version,) = [p for p in second_run.serving_base.iterdir() if p.name.isdigit()]
    first_id, second_id = MetadataGraph(str(second_run.metadata_path)).run_ids()
    first = outcome.read_outcome(str(second_run.metadata_path), first_id, details=False)
    second = outcome.read_outcome(str(second_run.metadata_path), second_id, details=False)
    assert first.push == outcome.Push(outcome.PUSHED, version.name, str(version), first_id)
    assert second.push == outcome.Push(outcome.CACHED, version.name, str(version), first_id)
    assert first.pushed_path == str(version) and second.pushed_path is None
    assert second.blessed is True
    assert (f"Pushed: nothing new; serving version {version.name}, pushed by run {first_id}"
            in second_run.stdout), second_run.stdout
