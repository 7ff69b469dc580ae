"""Finding the two baselines without ML Metadata (pipeline/components/baseline.py)."""

from __future__ import annotations

import json
from pathlib import Path

from tfx.components.evaluator import constants

from metadata import evaluation, names
from pipeline.components import baseline


def _version(base: Path, number: int, complete: bool = True) -> Path:
    folder = base / str(number)
    (folder / "variables").mkdir(parents=True)
    if complete:
        (folder / baseline.SAVED_MODEL_FILE).write_bytes(b"graph")
    return folder


def test_the_served_model_is_the_highest_complete_version(tmp_path: Path):
    assert baseline.served_model(str(tmp_path / "absent")) is None
    _version(tmp_path, 100)
    newest = _version(tmp_path, 300)
    _version(tmp_path, 400, complete=False)  # TF Serving could not load it either
    (tmp_path / ".incoming-x").mkdir()  # a push in progress: not a version
    assert baseline.served_model(str(tmp_path)) == (300, str(newest))


def test_accepted_statistics_pointer_round_trip(tmp_path: Path):
    pointer = baseline.accepted_statistics_file(str(tmp_path / "root"))
    assert pointer == str(tmp_path / "root" / "baselines" / "accepted_statistics.json")
    assert baseline.read_accepted_statistics(pointer) is None, "first run: no baseline"
    baseline.record_accepted_statistics(pointer, {"uri": "/a/1", "split_names": '["train"]'})
    baseline.record_accepted_statistics(pointer, {"uri": "/a/2", "split_names": '["train"]'})
    record = baseline.read_accepted_statistics(pointer)
    assert record["uri"] == "/a/2" and record["accepted_at"] > 0
    # Replaced in one step: no temporary file is left beside it.
    assert [p.name for p in Path(pointer).parent.iterdir()] == ["accepted_statistics.json"]


def test_a_pointer_without_uri_is_no_baseline(tmp_path: Path):
    pointer = tmp_path / "accepted_statistics.json"
    pointer.write_text(json.dumps({"span": 3}))
    assert baseline.read_accepted_statistics(str(pointer)) is None


def test_recorded_baseline_uses_tfx_key_for_the_location():
    assert names.BASELINE_URI == constants.ARTIFACT_PROPERTY_BASELINE_MODEL_URI_KEY
    assert evaluation.recorded_baseline({"baseline_version": 0, "baseline_model": ""}) is None
    assert evaluation.recorded_baseline(
        {"baseline_version": 7, "baseline_model": "gs://b/m/7"}) == (7, "gs://b/m/7")


def test_a_refusal_is_recorded_beside_the_pointer_and_read_back_by_statistics(tmp_path: Path):
    """The gate's refusal record (written by the gate, read by the report without TFDV)."""
    from metadata import artifacts

    pointer = baseline.accepted_statistics_file(str(tmp_path / "root"))
    finding = {"feature": "fare", "split": "train", "type": "LOW_PRESENCE", "description": "x"}
    assert artifacts.read_refusal(pointer, "/stats/7") is None
    baseline.record_refusal(pointer, "/stats/7", {"findings": [finding], "compared": "read"})
    baseline.record_refusal(pointer, "/stats/8", {"findings": [], "compared": "other"})
    record = artifacts.read_refusal(pointer, "/stats/7")
    assert record["findings"] == [finding] and record["statistics_uri"] == "/stats/7"
    assert artifacts.read_refusal(pointer, "/stats/8")["compared"] == "other"
    folder = Path(pointer).parent / names.GATE_REFUSALS_DIR
    assert sorted(p.suffix for p in folder.iterdir()) == [".json", ".json"]  # no temp files
    assert not Path(pointer).exists(), "a refusal moves no baseline"
