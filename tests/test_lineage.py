"""`python -m review.lineage`: the chain behind the pushed model, checked on real runs."""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest

from metadata.graph import MetadataGraph
from metadata.outcome import read_outcome
from metadata.store import open_store
from review import lineage
from tests.conftest import DATA, ROOT
from tests.three_runs import CACHED_IN_SECOND_RUN, ThreeRuns, three_runs

# The chain, in the order the pipeline runs it.
CHAIN = (
    "CsvExampleGen",
    "StatisticsGen",
    "ExampleValidator",
    "FeatureSelection",
    "Transform",
    "Trainer",
    "Evaluator",
    "Pusher",
)


def run_lineage(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "review.lineage", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> ThreeRuns:
    return three_runs(tmp_path_factory)


@pytest.fixture(scope="module")
def served(runs: ThreeRuns) -> Path:
    """The version folder TF Serving loads: the highest number under the base path."""
    versions = [p for p in runs.first.serving_base.iterdir() if p.name.isdigit()]
    assert versions, "the first run must push a model"
    return max(versions, key=lambda p: int(p.name))


@pytest.fixture(scope="module")
def chain(runs: ThreeRuns) -> dict:
    result = run_lineage("--output-dir", str(runs.output_dir), "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _step(chain: dict, component: str) -> dict:
    steps = [s for s in chain["lineage"]["steps"] if s["component"] == component]
    assert len(steps) == 1, f"{component}: {len(steps)} steps"
    return steps[0]


def _ids(step: dict, key: str, side: str = "outputs") -> list[int]:
    return [a["id"] for a in step[side][key]]


@pytest.mark.e2e
def test_it_lists_the_runs_and_what_they_pushed(chain, runs, served):
    mlmd = MetadataGraph(str(runs.first.metadata_path))
    run_ids = mlmd.run_ids()
    assert [r["run_id"] for r in chain["runs"]] == run_ids and len(run_ids) == 3
    first, second, repeat = chain["runs"]
    assert first["blessed"] is True and first["pushed_version"] is not None
    assert (runs.first.serving_base / first["pushed_version"]).is_dir()
    assert second["states"].get("cached", 0) >= len(CACHED_IN_SECOND_RUN)
    assert repeat["pushed_version"] is None, "a fully cached run pushes nothing"
    if second["pushed_version"] == first["pushed_version"]:
        assert second["unchanged"] is True, "the same version again means the model was kept"
    pushed = [r["pushed_version"] for r in chain["runs"] if r["pushed_version"]]
    assert pushed[-1] == served.name
    for run in chain["runs"]:
        assert sum(run["states"].values()) == len(mlmd.component_runs(run["run_id"]))


@pytest.mark.e2e
def test_the_chain_ends_at_the_served_model(chain, served):
    assert chain["lineage"]["version"] == served.name
    assert Path(chain["lineage"]["destination"]) == served
    components = [s["component"] for s in chain["lineage"]["steps"]]
    assert [c for c in components if c in CHAIN] == list(CHAIN)
    assert "ImportSchemaGen" in components


@pytest.mark.e2e
def test_every_component_of_the_training_run_is_in_the_chain(chain, runs):
    """Nothing that touched the model's data is left out (resolvers only pick inputs)."""
    store = open_store(str(runs.first.metadata_path))
    trained_in = _step(chain, "Trainer")["run_id"]
    in_run = {r.component for r in MetadataGraph(store).component_runs(trained_in)}
    in_chain = {s["component"] for s in chain["lineage"]["steps"]}
    assert {c for c in in_run if "resolver" not in c} <= in_chain, in_run - in_chain
    roles = {s["component"]: s["role"] for s in chain["lineage"]["steps"]}
    assert roles["ExampleValidator"] == "checked the data"


@pytest.mark.e2e
def test_examples_name_the_data_and_its_span(chain):
    example_gen = _step(chain, "CsvExampleGen")
    assert Path(example_gen["properties"]["input_base"]) == DATA
    (examples,) = example_gen["outputs"]["examples"]
    assert examples["properties"]["span"] == 0
    assert "num_files:1" in examples["properties"]["input_fingerprint"]


@pytest.mark.e2e
def test_each_step_consumes_what_the_previous_produced(chain):
    """The links are MLMD's events, not names: ids must match along the chain."""
    examples = _ids(_step(chain, "CsvExampleGen"), "examples")
    statistics = _step(chain, "StatisticsGen")
    assert _ids(statistics, "examples", "inputs") == examples
    validator = _step(chain, "ExampleValidator")
    assert _ids(validator, "statistics", "inputs") == _ids(statistics, "statistics")
    selection = _step(chain, "FeatureSelection")
    transform = _step(chain, "Transform")
    assert _ids(transform, "schema", "inputs") == _ids(selection, "transform_schema")
    assert _ids(transform, "examples", "inputs") == examples
    trainer = _step(chain, "Trainer")
    assert _ids(trainer, "transform_graph", "inputs") == _ids(transform, "transform_graph")
    # Transform does not materialize: the Trainer transforms raw examples itself.
    assert _ids(trainer, "examples", "inputs") == examples
    pusher = _step(chain, "Pusher")
    evaluator = _step(chain, "Evaluator")
    assert _ids(pusher, "model", "inputs") == _ids(trainer, "model")
    assert _ids(evaluator, "model", "inputs") == _ids(trainer, "model")
    assert _ids(pusher, "model_blessing", "inputs") == _ids(evaluator, "blessing")
    (blessing,) = evaluator["outputs"]["blessing"]
    assert blessing["properties"]["blessed"] == 1


@pytest.mark.e2e
def test_feature_selection_and_anomalies_are_in_the_chain(chain, runs):
    (selection,) = _step(chain, "FeatureSelection")["outputs"]["selection"]
    report = json.loads((Path(selection["uri"]) / "feature_selection.json").read_text())
    assert selection["properties"]["selected"].split(",") == report["selected"]
    (anomalies,) = _step(chain, "ExampleValidator")["outputs"]["anomalies"]
    assert Path(anomalies["uri"]).is_relative_to(runs.output_dir)


@pytest.mark.e2e
def test_steps_have_times_in_causal_order(chain):
    steps = {s["component"]: s for s in chain["lineage"]["steps"]}
    for step in steps.values():
        assert 0 < step["started"] <= step["finished"]
    for before, after in zip(CHAIN, CHAIN[1:], strict=False):
        assert steps[before]["finished"] <= steps[after]["started"] + 1e-3, (before, after)


@pytest.mark.e2e
def test_text_output_answers_which_data(runs, served):
    result = run_lineage("--output-dir", str(runs.output_dir))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert f"Model version {served.name}, served from {served}" in lines
    data = next(line for line in lines if line.strip().startswith("data:"))
    assert str(DATA) in data and "span 0" in data
    for component in CHAIN:
        assert any(line.strip().startswith(component) for line in lines), component


@pytest.mark.e2e
def test_a_given_version_and_an_unknown_one(runs, chain):
    first_version = chain["runs"][0]["pushed_version"]
    given = run_lineage("--output-dir", str(runs.output_dir), "--json",
                        "--version", first_version)
    assert given.returncode == 0
    assert json.loads(given.stdout)["lineage"]["version"] == first_version
    unknown = run_lineage("--output-dir", str(runs.output_dir), "--version", "123")
    assert unknown.returncode == 1
    assert unknown.stderr.startswith("error: no pushed model version 123; pushed versions: ")
    assert first_version in unknown.stderr


def test_a_missing_store_is_one_clear_line(tmp_path):
    result = run_lineage("--output-dir", str(tmp_path))
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: no ML Metadata store at {tmp_path}/metadata.sqlite"


@pytest.mark.e2e
def test_cached_outputs_are_credited_to_the_run_that_computed_them(runs):
    mlmd = lineage.MetadataGraph(str(runs.first.metadata_path))
    first_run, second_run, _ = mlmd.run_ids()
    cached_transform = mlmd.component_execution(second_run, "Transform")
    assert cached_transform.last_known_state == cached_transform.CACHED
    (graph_id,) = mlmd.output_ids(cached_transform.id)["transform_graph"]
    producer = mlmd.producer(graph_id)
    assert mlmd.run_of(producer) == first_run
    assert producer.last_known_state == producer.COMPLETE
    chain = lineage.model_lineage(mlmd)
    transform = chain.step("Transform")
    assert (transform.run_id, transform.state, transform.execution_id) == (
        first_run, "ran", producer.id)
    if chain.step("Trainer").run_id == second_run:  # the retrained model was pushed
        first_version = min(int(p.name) for p in runs.first.serving_base.iterdir()
                            if p.name.isdigit())
        (blessing,) = chain.step("Evaluator").outputs["blessing"]
        assert blessing.properties["baseline_version"] == first_version, "run 1's model"


@pytest.mark.e2e
def test_a_fully_cached_run_is_told_alike_by_summary_report_and_lineage(runs, chain, served):
    """The repeated run pushed nothing new: its cached Pusher re-linked the second run's
    push record. The summary it printed, its report and the lineage's runs list say so,
    with the same version and the same pushing run (all render metadata.outcome)."""
    _, second, repeat = chain["runs"]
    assert set(repeat["states"]) == {"cached"}, repeat["states"]
    recorded = read_outcome(str(runs.first.metadata_path), repeat["run_id"])
    assert asdict(recorded.push) == repeat["push"] and recorded.pushed_path is None
    listed = run_lineage("--output-dir", str(runs.output_dir))
    line = next(x for x in listed.stdout.splitlines() if x.strip().startswith(repeat["run_id"]))
    page = (runs.output_dir / "report" / "index.html").read_text(encoding="utf-8")
    assert repeat["run_id"] in page
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())
    if second["push"]["kind"] == "not pushed":  # the retrained model was not blessed
        assert repeat["push"]["kind"] == "not pushed" and repeat["pushed_version"] is None
        assert "Pushed: nothing (" in runs.repeat.stdout and line.endswith("pushed nothing")
        assert "Nothing pushed: " in text
        return
    pusher = next(r["run_id"] for r in chain["runs"]
                  if r["pushed_version"] == served.name and not r["unchanged"])
    assert repeat["push"] == {"kind": "cached", "version": served.name,
                              "destination": str(served), "pushed_by": pusher, "reason": ""}
    assert repeat["pushed_version"] is None
    said = f"serving version {served.name}, pushed by run {pusher}"
    assert f"Pushed: nothing new; {said}" in runs.repeat.stdout, runs.repeat.stdout
    assert f"Pushed: {served}" not in runs.repeat.stdout
    assert line.endswith(f"blessed, nothing new pushed; serving {served.name}, "
                         f"pushed by run {pusher}"), line
    assert (f"Nothing changed since version {served.name} was pushed by run {pusher}: this "
            "run reused the model, its evaluation and the push from the cache; nothing new "
            "was pushed.") in text
    assert f"(by run {pusher}; this run reused that push from the cache" in text
