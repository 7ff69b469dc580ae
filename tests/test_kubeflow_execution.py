"""The compiled Kubeflow spec, executed task by task as open-source KFP v2 runs it.

`pipeline.kubeflow.compile_pipeline` writes the YAML PipelineSpec a cluster
would get; tests/kfp_launcher.py then runs each task's container command
unchanged, with the ExecutorInput KFP's driver builds and the environment the
Dockerfile sets, and hands each task's output artifacts to its consumers, as
the backend does. Local folders stand in for gs:// (TensorFlow's file I/O
treats both alike). Not covered here: the image itself (no Docker engine),
Argo, the KFP API server, and the backend's own ML Metadata and cache.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from models.contract import MODEL_NAME, WARMUP_FILE
from pipeline import kubeflow
from tests import kfp_launcher
from tests.conftest import DATA, ROOT

pytestmark = pytest.mark.e2e

TRAIN_STEPS = 300
DOWNSTREAM_OF_GATE = ("FeatureSelection", "Transform", "Trainer", "Evaluator", "Pusher")


@dataclass
class Cluster:
    """Folders standing in for the cluster's object storage, and the compiled spec."""

    spec_path: Path
    spec: dict
    pipeline_root: Path
    data_root: Path
    serving_base: Path
    logs: Path

    def run(self, train_steps: int = TRAIN_STEPS) -> kfp_launcher.SpecRun:
        return kfp_launcher.run_spec(
            self.spec_path, str(self.pipeline_root), ROOT, self.logs,
            {"train_args": json.dumps({"num_steps": train_steps})})

    def versions(self) -> list[Path]:
        if not self.serving_base.exists():
            return []
        return sorted(p for p in self.serving_base.iterdir() if p.name.isdigit())


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Cluster:
    """Compile exactly as `kubeflow_runner.py` does, with local folders for gs:// paths."""
    base = tmp_path_factory.mktemp("kfp")
    data_root = base / "storage" / "data"
    data_root.mkdir(parents=True)
    shutil.copy(DATA / "data.csv", data_root)
    args = kubeflow.build_parser().parse_args(
        ["--pipeline-root", "gs://bucket/root", "--image", "registry.example/taxi:test"])
    kubeflow.validate(args)
    remote = kubeflow.config_from_args(args)
    config = dataclasses.replace(
        remote,
        data_root=str(data_root),
        output_dir=str(base / "storage" / "root"),
        pipeline_root_path=str(base / "storage" / "root"),
        serving_base_path=str(base / "storage" / "serving" / MODEL_NAME),
        # The image's /pipeline/schema/schema.pbtxt is this file.
        schema_path=str(ROOT / "schema" / "schema.pbtxt"),
    )
    spec_path = base / "chicago-taxi.yaml"
    spec = kubeflow.compile_pipeline(config, args.image, str(spec_path))
    logs = base / "logs"
    logs.mkdir()
    return Cluster(spec_path, spec, Path(config.pipeline_root), data_root,
                   Path(config.serving_model_dir), logs)


@pytest.fixture(scope="module")
def first(cluster: Cluster) -> kfp_launcher.SpecRun:
    run = cluster.run()
    failed = {n: t.log[-3000:] for n, t in run.tasks.items() if t.state != "succeeded"}
    assert not failed, failed
    return run


@pytest.fixture(scope="module")
def second(cluster: Cluster, first: kfp_launcher.SpecRun) -> kfp_launcher.SpecRun:
    """A retrained model: one step fewer, everything else the same."""
    run = cluster.run(TRAIN_STEPS - 1)
    failed = {n: t.log[-3000:] for n, t in run.tasks.items() if t.state != "succeeded"}
    assert not failed, failed
    return run


def _metadata(run: kfp_launcher.SpecRun, task: str, output: str) -> dict:
    from google.protobuf import json_format

    return json_format.MessageToDict(run.tasks[task].outputs[output].metadata)


def test_the_spec_needs_nothing_only_the_local_runner_does(cluster: Cluster):
    """No resolver, no local ML Metadata; ExampleGen's driver hook exists but is never run."""
    executors = cluster.spec["deploymentSpec"]["executors"]
    assert all(set(e) == {"container"} for e in executors.values()), executors.keys()
    hooks = [label for label, e in executors.items() if e["container"].get("lifecycle")]
    assert hooks == ["CsvExampleGen_executor"], "only the ExampleGen driver, which KFP skips"
    assert "sqlite" not in json.dumps(cluster.spec)


def test_every_task_succeeds_and_the_model_is_pushed(cluster: Cluster, first):
    assert set(first.tasks) == set(cluster.spec["root"]["dag"]["tasks"])
    (version,) = cluster.versions()
    pushed = _metadata(first, "Pusher", "pushed_model")
    assert pushed["pushed"] == 1 and pushed["pushed_destination"] == str(version)
    # TF Serving's layout, with the warm-up file the serving check replayed.
    assert (version / "saved_model.pb").is_file() and (version / "variables").is_dir()
    assert (version / WARMUP_FILE).is_file()
    check = json.loads(pushed["serving_check"])
    assert check["imported_op_libraries"] == [] and check["warmup_records"] > 0
    # ExampleGen ran without its driver: the split is still the configured one.
    examples = _metadata(first, "CsvExampleGen", "examples")
    assert json.loads(examples["split_names"]) == ["train", "eval"]
    blessing = _metadata(first, "Evaluator", "blessing")
    assert blessing["blessed"] == 1 and blessing["baseline_version"] == 0, blessing
    assert not list(cluster.pipeline_root.rglob("*.sqlite"))


def test_a_second_run_compares_with_the_served_model(cluster: Cluster, first, second):
    first_version = int(_metadata(first, "Pusher", "pushed_model")["pushed_version"])
    blessing = _metadata(second, "Evaluator", "blessing")
    assert blessing["baseline_version"] == first_version
    assert blessing["baseline_model"] == str(cluster.serving_base / str(first_version))
    assert f"baseline is served version {first_version}" in second.tasks["Evaluator"].log
    gate_report = cluster.pipeline_root / second.run_id / "DataValidationGate"
    (report_file,) = gate_report.rglob("validation.json")
    drift_baseline = json.loads(report_file.read_text())["drift_baseline"]
    assert drift_baseline["uri"].startswith(str(cluster.pipeline_root / first.run_id))


def test_bad_data_stops_at_the_gate_and_nothing_downstream_runs(cluster: Cluster, second):
    before = {version: _digest(version) for version in cluster.versions()}
    good = (cluster.data_root / "data.csv").read_text()
    lines = good.splitlines(keepends=True)
    header = lines[0].rstrip("\r\n").split(",")
    column = header.index("payment_type")
    bad_rows = []
    for i, line in enumerate(lines[1:]):
        cells = line.rstrip("\r\n").split(",")
        if len(cells) == len(header) and i % 3 == 0:
            cells[column] = "Bitcoin"
        bad_rows.append(",".join(cells) + "\n")
    try:
        (cluster.data_root / "data.csv").write_text(lines[0] + "".join(bad_rows))
        run = cluster.run()
    finally:
        (cluster.data_root / "data.csv").write_text(good)
    gate = run.tasks["DataValidationGate"]
    assert gate.state == "failed" and gate.returncode != 0
    assert "Data validation failed" in gate.log and "payment_type" in gate.log
    assert {n: run.tasks[n].state for n in DOWNSTREAM_OF_GATE} == dict.fromkeys(
        DOWNSTREAM_OF_GATE, "not run")
    assert {version: _digest(version) for version in cluster.versions()} == before


def _digest(folder: Path) -> str:
    """sha256 over every file's path and bytes under `folder`."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()
