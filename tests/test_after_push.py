"""After the push: batch predictions and the rollout verbs on a real output folder.

The session's pipeline run pushed one version. A copy of its output folder
(ML Metadata and the live serving config included) gets two more versions,
copies of that SavedModel under older numbers, so every verb has three real
versions to move labels between without training three models. The TF Serving
stand-in of tests/test_serving_e2e.py then answers by label, and one more
pipeline run after a rollback must compare its candidate with the rolled-back
version.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from metadata import serving_records
from models import contract
from serving import batch_predict, client, rollout
from serving import rollout_config as rc
from serving.rollout_config import CANARY, STABLE
from tests.conftest import DATA, run_pipeline
from tests.test_rollout_config import parse_proto
from tests.test_serving_e2e import SAME, TFServingTestHarness

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parent.parent
CSV = DATA / "data.csv"


@pytest.fixture(scope="module")
def folder(pipeline_run, pushed_model_dir, tmp_path_factory) -> Path:
    """A copy of the run's output folder with three pushed versions."""
    out = tmp_path_factory.mktemp("after_push") / "output"
    (out / "serving_model").mkdir(parents=True)
    shutil.copy(pipeline_run.metadata_path, out / "metadata.sqlite")
    shutil.copy(pipeline_run.serving_base.parent / rc.LIVE_CONFIG_NAME,
                out / "serving_model" / rc.LIVE_CONFIG_NAME)
    newest = int(pushed_model_dir.name)
    base = out / "serving_model" / contract.MODEL_NAME
    for version in (newest - 20, newest - 10, newest):
        shutil.copytree(pushed_model_dir, base / str(version))
    return out


@pytest.fixture(scope="module")
def versions(folder) -> list[int]:
    return rollout.pushed_versions(folder / "serving_model")


@pytest.fixture(scope="module")
def direct(pushed_model_dir) -> np.ndarray:
    """The pushed model called on the client's tf.Examples of data/data.csv."""
    import tensorflow as tf

    examples, _ = client.read_examples(CSV.read_text().splitlines(True), client.load_columns())
    serve = tf.saved_model.load(str(pushed_model_dir)).signatures[contract.SIGNATURE_NAME]
    return np.concatenate([
        serve(examples=tf.constant(examples[i:i + 4096]))[contract.OUTPUT_KEY].numpy().ravel()
        for i in range(0, len(examples), 4096)])


def labels_in(folder: Path) -> dict[str, int]:
    text = (folder / "serving_model" / rc.LIVE_CONFIG_NAME).read_text()
    model = parse_proto(text).model_config_list.config[0]
    assert set(model.version_labels.values()) == set(model.model_version_policy.specific.versions)
    return dict(model.version_labels)


def test_the_pusher_labelled_its_version_stable(pipeline_run, pushed_model_dir):
    state = rc.read(pipeline_run.serving_base.parent)
    assert state == rc.ServingState((int(pushed_model_dir.name),),
                                    {STABLE: int(pushed_model_dir.name)})


# --------------------------------------------------------------------------- batch


def test_batch_predictions_can_capture_what_they_scored(folder, direct, tmp_path, capsys):
    from serving.capture import read_captured

    out, requests = tmp_path / "scores.csv", tmp_path / "requests"
    code = batch_predict.main([str(CSV), "--out", str(out), "--output-dir", str(folder),
                               "--capture", str(requests), "--capture-rate", "0.1",
                               "--capture-id-column", "trip_start_timestamp"])
    assert code == 0, capsys.readouterr().err
    captured = read_captured(requests)
    assert 1000 < len(captured.examples) < 2000  # a tenth of 15,002 rows
    scored: dict[str, list[float]] = {}
    ids = [line.split(",")[0].strip('"') for line in out.read_text().splitlines()[1:]]
    for id_, probability in zip(ids, direct, strict=True):
        scored.setdefault(id_, []).append(float(probability))
    for id_, probability in zip(captured.ids[:50], captured.probabilities[:50], strict=True):
        assert min(abs(probability - p) for p in scored[id_]) < 1e-5
    newest = max(int(p.name) for p in (folder / "serving_model" / contract.MODEL_NAME).iterdir()
                 if p.name.isdigit())
    assert set(captured.versions) == {newest}


def test_batch_predictions_equal_the_served_models(folder, direct, tmp_path, capsys):
    out = tmp_path / "scores.csv"
    code = batch_predict.main([str(CSV), "--out", str(out), "--keep", "trip_start_timestamp,fare",
                               "--output-dir", str(folder), "--block-mb", "0.5"])
    assert code == 0, capsys.readouterr().err
    lines = out.read_text().splitlines()
    assert lines[0] == '"trip_start_timestamp","fare","probability"'
    assert lines[1].startswith('"1400269500","12.45",')
    probabilities = np.array([float(line.rsplit(",", 1)[1]) for line in lines[1:]])
    np.testing.assert_allclose(probabilities, direct, **SAME)
    assert "scored 15002 rows with version" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["scores.csv"]


def test_parquet_by_label_and_recorded_for_lineage(folder, versions, direct, tmp_path):
    out = tmp_path / "scores.parquet"
    assert batch_predict.main([str(CSV), str(CSV), "--out", str(out), "--label", STABLE,
                               "--output-dir", str(folder)]) == 0
    table = pq.read_table(out)
    assert table.column_names == ["probability"] and table.num_rows == 2 * 15002
    np.testing.assert_allclose(table.column(0).to_numpy()[15002:], direct, **SAME)
    lineage = subprocess.run(
        [sys.executable, "-m", "review.lineage", "--output-dir", str(folder), "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    uses = json.loads(lineage.stdout)["lineage"]["uses"]
    scored = [u for u in uses if u["type"] == serving_records.BATCH_PREDICTION]
    assert scored[-1]["rows"] == 2 * 15002 and scored[-1]["outputs"] == [str(out)]
    assert scored[-1]["model_version"] == str(versions[-1])


def test_a_bad_row_stops_before_any_output_and_can_be_skipped(folder, tmp_path):
    lines = CSV.read_text().splitlines()
    lines[5] += ",extra"
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines[:50]) + "\n")
    out = tmp_path / "out" / "scores.csv"
    out.parent.mkdir()
    command = [sys.executable, "-m", "serving.batch_predict", str(bad), "--out", str(out),
               "--output-dir", str(folder)]
    failed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert failed.returncode == 2
    assert failed.stderr.splitlines()[-1] == (
        f"error: {bad} line 6: 19 fields, but the header has 18 "
        "(nothing written; --skip-bad-rows skips bad rows)")
    assert list(out.parent.iterdir()) == []
    assert batch_predict.main([*command[3:], "--skip-bad-rows"]) == 0
    assert len(out.read_text().splitlines()) == 1 + 48


# --------------------------------------------------------------------------- rollout


def test_every_verb_rewrites_the_config_and_is_recorded(folder, versions, capsys):
    oldest, middle, newest = versions
    base = ["--output-dir", str(folder), "--settle-seconds", "0"]
    assert labels_in(folder) == {STABLE: newest}
    assert rollout.main(["canary", str(middle), *base]) == 0
    assert labels_in(folder) == {STABLE: newest, CANARY: middle}
    assert rollout.main(["promote", *base]) == 0
    assert labels_in(folder) == {STABLE: middle}
    assert rollout.main(["pin", str(newest), *base]) == 0
    assert labels_in(folder) == {STABLE: newest}
    assert rollout.main(["rollback", *base]) == 0
    assert labels_in(folder) == {STABLE: middle}
    assert rollout.main(["promote", *base]) == 1
    assert capsys.readouterr().err.strip() == "error: there is no canary to promote"
    assert rollout.main(["status", "--output-dir", str(folder), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["labels"] == {STABLE: middle} and status["pushed"] == versions
    verbs = [(c["verb"], json.loads(c["labels_after"])) for c in status["history"]]
    assert verbs == [("canary", {STABLE: newest, CANARY: middle}), ("promote", {STABLE: middle}),
                     ("pin", {STABLE: newest}), ("rollback", {STABLE: middle})]
    assert rollout.main(["status", "--output-dir", str(folder)]) == 0
    assert f"stable  {middle}" in capsys.readouterr().out
    del oldest


def test_the_server_answers_on_labelled_versions(folder, versions):
    oldest, _, newest = versions
    serving_root = folder / "serving_model"
    dirs = [serving_root / contract.MODEL_NAME / str(v) for v in (oldest, newest)]
    harness = TFServingTestHarness(dirs, contract.MODEL_NAME, contract.MAX_BATCH_SIZE)
    rest_url = harness.start_rest()
    grpc_target = harness.start_grpc()
    try:
        # canary on a version the server has loaded: --server asks it, no fixed wait
        assert rollout.main(["pin", str(newest), "--output-dir", str(folder),
                             "--server", rest_url]) == 0
        assert rollout.main(["canary", str(oldest), "--output-dir", str(folder),
                             "--server", rest_url]) == 0
        harness.labels = rc.read(serving_root).labels  # the server re-reads the config
        examples, _ = client.read_examples(CSV.read_text().splitlines(True)[:11],
                                           client.load_columns())
        grpc = client.GrpcClient(grpc_target, label=CANARY)
        try:
            grpc.predict(examples)
        finally:
            grpc.close()
        client.RestClient(rest_url, label=STABLE).predict(examples)
        assert harness.answered_versions[-2:] == [oldest, newest]
        with pytest.raises(client.ServerError, match="Unrecognized servable version label: x"):
            client.RestClient(rest_url, label="x").predict(examples)
    finally:
        harness.stop()


def test_after_a_rollback_the_next_run_is_compared_with_the_rolled_back_version(folder, versions):
    _, middle, newest = versions
    rollout.main(["pin", str(newest), "--output-dir", str(folder), "--settle-seconds", "0"])
    assert rollout.main(["rollback", "--output-dir", str(folder), "--settle-seconds", "0"]) == 0
    assert labels_in(folder) == {STABLE: middle}
    run = run_pipeline(DATA, folder, "--train-steps", "100")  # a new candidate, quickly
    assert run.returncode == 0, run.stderr[-3000:]
    with sqlite3.connect(folder / "metadata.sqlite") as db:
        recorded = db.execute(
            "SELECT p.int_value FROM ArtifactProperty p JOIN Artifact a ON a.id = p.artifact_id "
            "WHERE p.name = 'baseline_version' ORDER BY a.id DESC LIMIT 1").fetchone()
    assert recorded == (middle,)


# --------------------------------------------------------------------------- model card


def test_every_pushed_version_carries_a_model_card_of_recorded_facts(pipeline_run,
                                                                     pushed_model_dir):
    from metadata.evaluation import overall_metrics
    from metadata.graph import MetadataGraph
    from pipeline.configs import PipelineConfig

    card = (pushed_model_dir / contract.MODEL_CARD_FILE).read_text()
    facts = json.loads((pushed_model_dir / contract.MODEL_CARD_JSON).read_text())
    assert facts["data"]["folder"] == str(DATA)
    assert sum(facts["data"]["rows_by_split"].values()) == 15002
    assert facts["training"]["train_steps"] == PipelineConfig().train_steps
    kept = facts["features"]["kept"]
    assert kept and all(f"- {name}: kept" in card for name in kept)
    graph = MetadataGraph(str(pipeline_run.metadata_path))
    [evaluation] = graph.node_outputs(graph.run_ids()[0], "Evaluator", "ModelEvaluation")
    auc = overall_metrics(evaluation.uri)["auc"]
    assert facts["evaluation"]["metrics_by_slice"]["overall"]["auc"] == round(auc, 4)
    assert "payment_type=Cash" in facts["evaluation"]["metrics_by_slice"]
    assert {t["metric"] for t in facts["evaluation"]["thresholds"]} >= {"AUC", "BinaryAccuracy"}
    assert "## Known limitations" in card
    # The report links to it.
    report = (pipeline_run.output_dir / "report" / "index.html").read_text()
    assert str(pushed_model_dir / contract.MODEL_CARD_FILE) in report
