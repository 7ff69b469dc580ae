"""The compiled pipeline and the node runner every one-task-per-node orchestrator uses.

Fast: the pipeline is compiled (TFX's real compiler), nothing is executed.
Running nodes for real is in tests/test_luigi.py and tests/test_azureml.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrators import ir as ir_file
from orchestrators import node_runner
from pipeline.configs import PipelineConfig
from tests.conftest import ROOT

SECRET = "s3cret-Pw-never-in-a-file"


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> tuple[Path, object]:
    """The IR of a pipeline whose ML Metadata is in MySQL, compiled with a password set."""
    folder = tmp_path_factory.mktemp("ir")
    os.environ["MLMD_MYSQL_PASSWORD"] = SECRET
    try:
        config = PipelineConfig(output_dir=str(folder / "out"), metadata_mysql="db.example:3306/m")
        ir = ir_file.compile_ir(config)
    finally:
        del os.environ["MLMD_MYSQL_PASSWORD"]
    ir_file.write(ir, str(folder))
    return folder, ir


def test_no_metadata_connection_nor_secret_is_compiled_in(compiled):
    folder, ir = compiled
    from tfx.proto.orchestration import pipeline_pb2

    deployment = pipeline_pb2.IntermediateDeploymentConfig()
    assert ir.deployment_config.Unpack(deployment)
    assert not deployment.HasField("metadata_connection_config")
    for name in (ir_file.IR_FILE, ir_file.PLAN_FILE):
        data = (folder / name).read_bytes()
        assert SECRET.encode() not in data and b"db.example" not in data


def test_the_run_id_is_left_to_each_run(compiled):
    _, ir = compiled
    assert ir.runtime_spec.pipeline_run_id.runtime_parameter.name == "pipeline-run-id"


def test_the_plan_is_the_pipelines_graph(compiled):
    folder, _ = compiled
    from pipeline.pipeline import create_pipeline

    pipeline = create_pipeline(PipelineConfig(output_dir="/nonexistent/never-written"))
    expected = {c.id: sorted(u.id for u in c.upstream_nodes) for c in pipeline.components}
    plan = ir_file.load_plan(str(folder / ir_file.PLAN_FILE))
    assert {n: sorted(u) for n, u in plan.nodes.items()} == expected
    assert plan.sinks == ["Pusher"]
    order = plan.order
    assert all(order.index(u) < order.index(n) for n, ups in plan.nodes.items() for u in ups)


def test_the_output_folder_is_read_from_the_ir(compiled):
    folder, ir = compiled
    assert node_runner.output_dir_of(ir) == str(folder / "out")


def _node_runner(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orchestrators.node_runner", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


@pytest.mark.parametrize("args, message", [
    (["--node", "Nope", "--run-id", "r"], "no node 'Nope' in the compiled pipeline"),
    (["--node", "Trainer", "--run-id-env", "TAXI_TEST_UNSET"], "no run id: $TAXI_TEST_UNSET"),
])
def test_bad_arguments_are_one_line_and_exit_2(compiled, args, message):
    folder, _ = compiled
    result = _node_runner("--ir", str(folder / ir_file.IR_FILE), *args)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: {message}")


def test_a_file_that_is_not_a_compiled_pipeline_is_refused(tmp_path):
    bad = tmp_path / "pipeline.pb"
    bad.write_text("not a pipeline")
    result = _node_runner("--ir", str(bad), "--node", "Trainer", "--run-id", "r")
    assert result.returncode == 2
    assert "cannot read the compiled pipeline" in result.stderr.strip().splitlines()[-1]


def test_the_mount_is_linked_at_the_compiled_folder(compiled, tmp_path):
    _, ir = compiled
    stable = Path(node_runner.output_dir_of(ir))
    mounts = [tmp_path / "mount-a", tmp_path / "mount-b"]
    for mount in mounts:
        mount.mkdir()
        node_runner.link_mount(ir, str(mount))  # a second task's mount replaces the link
        assert stable.is_symlink() and stable.resolve() == mount.resolve()
    stable.unlink()


def test_a_real_folder_at_the_compiled_path_is_not_replaced(compiled, tmp_path):
    _, ir = compiled
    stable = Path(node_runner.output_dir_of(ir))
    stable.mkdir(parents=True)
    (stable / "keep").write_text("x")
    try:
        with pytest.raises(node_runner.NodeRunnerError, match="is a real folder"):
            node_runner.link_mount(ir, str(tmp_path))
        assert (stable / "keep").read_text() == "x"
    finally:
        (stable / "keep").unlink()
        stable.rmdir()


def test_an_upstream_that_did_not_complete_stops_the_task(tmp_path):
    failed = tmp_path / "upstream"
    node_runner.write_outcome(str(failed), node_runner.NodeOutcome("Transform", "r", "FAILED"))
    with pytest.raises(node_runner.NodeRunnerError, match="upstream Transform ended FAILED"):
        node_runner.check_after([str(failed)])
    done = tmp_path / "done"
    node_runner.write_outcome(str(done), node_runner.NodeOutcome("Transform", "r", "cached"))
    node_runner.check_after([str(done)])


def test_partial_run_slices_are_the_nodes_between():
    from local.run import partial_run_nodes
    from pipeline.pipeline import create_pipeline
    from pipeline.preflight import InputError

    components = create_pipeline(PipelineConfig(output_dir="/nonexistent/never")).components
    assert partial_run_nodes(components, "Trainer", "Evaluator") == ["Trainer", "Evaluator"]
    assert partial_run_nodes(components, "Evaluator", None) == ["Evaluator", "Pusher"]
    assert len(partial_run_nodes(components, None, None)) == 10
    with pytest.raises(InputError, match="--from Trainr: no such node"):
        partial_run_nodes(components, "Trainr", None)
    with pytest.raises(InputError, match="nothing runs from Pusher to Trainer"):
        partial_run_nodes(components, "Pusher", "Trainer")
