"""Each patch of pipeline/components/tfx_patches.py against the real TFX it patches.

For every patch: the attribute it replaces still exists with the signature it
assumes, TFX still looks it up on the module at call time (so replacing it
reaches TFX's code), and the patch has its effect on the real TFX object.
A TFX upgrade that moves any of this fails here, not in a user's run.
Every test restores what it patched, so other tests see TFX unchanged.
"""

import inspect
import json
import re
from pathlib import Path

import pytest
from tfx.dsl.component.experimental.annotations import OutputArtifact
from tfx.dsl.component.experimental.decorators import component
from tfx.types.artifact import Artifact, Property, PropertyType

from pipeline.components import tfx_patches

ROOT = Path(__file__).resolve().parent.parent


def _parameters(function) -> list[str]:
    return list(inspect.signature(function).parameters)


def test_tfx_is_the_version_the_patches_were_read_against():
    from tfx import version

    locked = re.search(r"^tfx==(\S+)$", (ROOT / "requirements.lock").read_text(), re.M)
    assert version.__version__ == locked.group(1) == tfx_patches.TFX_VERSION, (
        "TFX changed: re-read every patch in pipeline/components/tfx_patches.py, "
        "then update TFX_VERSION"
    )


# --------------------------------------------------------------------------- sdist


def test_beam_executors_get_their_dependency_flags_through_the_module():
    from tfx.dsl.components.base import base_beam_executor
    from tfx.utils import dependency_utils

    assert _parameters(dependency_utils.make_beam_dependency_flags) == ["beam_pipeline_args"]
    assert base_beam_executor.dependency_utils is dependency_utils
    source = inspect.getsource(base_beam_executor.BaseBeamExecutor.__init__)
    assert "dependency_utils.make_beam_dependency_flags(" in source


def test_without_the_sdist_a_beam_executor_keeps_its_flags(monkeypatch):
    from tfx.components.statistics_gen.executor import Executor
    from tfx.utils import dependency_utils

    # Restored after the test: the patch itself lasts for the process.
    monkeypatch.setattr(dependency_utils, "make_beam_dependency_flags",
                        dependency_utils.make_beam_dependency_flags)
    tfx_patches.skip_tfx_sdist_for_direct_runner()
    flags = ["--direct_running_mode=in_memory", "--direct_num_workers=1"]
    # A real Beam component's executor: StatisticsGen's.
    executor = Executor(Executor.Context(beam_pipeline_args=list(flags)))
    args = executor._beam_pipeline_args
    assert args[: len(flags)] == flags
    assert not [a for a in args if a.startswith(("--extra_package", "--setup_file"))], args


# --------------------------------------------------------------------------- launcher


class _Marker(Artifact):
    TYPE_NAME = "PatchTestMarker"


@component
def _First(out: OutputArtifact[_Marker]) -> None:  # noqa: N802 - a TFX component class
    """Does nothing: the test only watches how it is launched."""


def test_local_dag_runner_builds_launchers_through_the_module():
    from tfx.orchestration.local import local_dag_runner
    from tfx.orchestration.portable import launcher

    source = inspect.getsource(local_dag_runner.LocalDagRunner.run_with_ir)
    assert "launcher.Launcher(" in source
    assert local_dag_runner.launcher is launcher
    assert "pipeline_node" in _parameters(launcher.Launcher.__init__)
    assert _parameters(launcher.Launcher.launch) == ["self"]


def test_every_node_of_a_local_run_is_launched_by_the_subclass(tmp_path):
    from tfx.orchestration import metadata, pipeline
    from tfx.orchestration.local.local_dag_runner import LocalDagRunner
    from tfx.orchestration.portable import launcher

    launched = []

    def recording(base: type) -> type:
        class Recording(base):
            def launch(self):
                launched.append(self._pipeline_node.node_info.id)
                return super().launch()

        return Recording

    original = launcher.Launcher
    nodes = [_First().with_id("first"), _First().with_id("second")]
    dag = pipeline.Pipeline(
        pipeline_name="patched", pipeline_root=str(tmp_path / "root"), components=nodes,
        metadata_connection_config=metadata.sqlite_metadata_connection_config(
            str(tmp_path / "metadata.sqlite")))
    with tfx_patches.local_launcher(recording) as subclass:
        assert launcher.Launcher is subclass and issubclass(subclass, original)
        LocalDagRunner().run(dag)
    assert sorted(launched) == ["first", "second"]
    assert launcher.Launcher is original


# --------------------------------------------------------------------------- Kubeflow titles


class _Counted(Artifact):
    """A custom type declaring a property, as ValidatedStatistics does."""

    TYPE_NAME = "Counted"
    PROPERTIES = {"span": Property(type=PropertyType.INT)}


@component
def _Produce(out: OutputArtifact[_Counted]) -> None:  # noqa: N802 - a TFX component class
    """Writes a custom-typed artifact."""


def _compile(tmp_path: Path) -> dict:
    from tfx.orchestration import pipeline
    from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner as kubeflow_v2

    dag = pipeline.Pipeline(pipeline_name="patched", pipeline_root="gs://bucket/root",
                            components=[_Produce().with_id("produce")])
    runner = kubeflow_v2.KubeflowV2DagRunner(
        kubeflow_v2.KubeflowV2DagRunnerConfig(default_image="image:1"),
        output_dir=str(tmp_path))
    return runner.run(dag, write_out=False)["pipelineSpec"]


def _titles(spec: dict) -> set[str]:
    """Artifact type titles in the spec, as the container reads them."""
    return set(re.findall(r"title: ([\w.]+)", json.dumps(spec)))


def test_the_v2_compiler_titles_artifact_types_through_the_module():
    from tfx.orchestration.kubeflow.v2 import compiler_utils, step_builder

    assert _parameters(compiler_utils.get_artifact_title) == ["artifact_type"]
    assert step_builder.compiler_utils is compiler_utils
    assert "compiler_utils.get_artifact_title(" in inspect.getsource(step_builder)
    assert compiler_utils.get_artifact_title(_Counted) == "tfx.Artifact"


def test_custom_types_compile_under_their_titles_and_are_restored(tmp_path):
    from tfx.orchestration.kubeflow.v2 import compiler_utils

    original = compiler_utils.get_artifact_title
    # Unpatched, TFX refuses the type: its name is no "<module>.<Class>" title,
    # and the generic schema it would write declares none of its properties.
    with pytest.raises((ValueError, KeyError)):
        _compile(tmp_path)
    with tfx_patches.kfp_artifact_titles({_Counted: "kubeflow_runner.Counted"}):
        assert "kubeflow_runner.Counted" in _titles(_compile(tmp_path))
    assert compiler_utils.get_artifact_title is original
    assert _Counted.TYPE_NAME == "Counted" and set(_Counted.PROPERTIES) == {"span"}


# --------------------------------------------------------------------------- AutoGraph


def test_autograph_leaves_tf_keras_alone_once_told(monkeypatch):
    """models.trainer.skip_autograph_for_tf_keras: TensorFlow's rule list, not TFX's."""
    import tf_keras
    from tensorflow.python.autograph.core import config, config_lib
    from tensorflow.python.autograph.impl import conversion

    from models.trainer import skip_autograph_for_tf_keras

    monkeypatch.setattr(config, "CONVERSION_RULES", config.CONVERSION_RULES)
    assert all(isinstance(rule, config_lib.Rule) for rule in config.CONVERSION_RULES)
    assert "config.CONVERSION_RULES" in inspect.getsource(conversion.is_allowlisted)
    train_step = tf_keras.Model.train_step
    assert not conversion.is_allowlisted(train_step)
    skip_autograph_for_tf_keras()
    assert conversion.is_allowlisted(train_step)
    rules = config.CONVERSION_RULES
    skip_autograph_for_tf_keras()
    assert config.CONVERSION_RULES == rules, "added once"


def test_transforms_executor_analyzes_through_the_module_processor():
    from tfx.components.transform import executor, labels

    source = inspect.getsource(executor.Executor.Do)
    assert "TransformProcessor().Transform(label_inputs" in source
    assert "labels.ANALYZE_DATA_PATHS_LABEL" in source
    assert _parameters(executor.TransformProcessor.Transform) == [
        "self", "inputs", "outputs", "status_file"]
    assert labels.ANALYZE_DATA_PATHS_LABEL == "analyze_data_paths"


def test_the_analyze_paths_are_substituted_and_restored():
    """Its effect on a real Transform run: tests/test_sampling.py."""
    from tfx.components.transform import executor

    original = executor.TransformProcessor
    with tfx_patches.transform_analyze_paths({"a/*": "a/x*"}):
        assert executor.TransformProcessor is not original
        assert issubclass(executor.TransformProcessor, original)
    assert executor.TransformProcessor is original


def test_the_evaluator_reads_each_split_through_the_module_pattern_function():
    from tfx.components.evaluator import executor
    from tfx.utils import io_utils

    assert "file_pattern = io_utils.all_files_pattern(split_uri)" in inspect.getsource(
        executor.Executor.Do)
    assert executor.io_utils is io_utils
    with tfx_patches.evaluator_file_patterns({"/e/Split-eval/*": "/e/Split-eval/x-0*"}) as read:
        assert executor.io_utils.all_files_pattern("/e/Split-eval") == "/e/Split-eval/x-0*"
        assert executor.io_utils.all_files_pattern("/e/Split-train") == "/e/Split-train/*"
    assert read == ["/e/Split-eval/x-0*", "/e/Split-train/*"]
    assert io_utils.all_files_pattern("/e/Split-eval") == "/e/Split-eval/*"


def test_csv_example_gen_reads_headers_through_the_module_io_utils():
    from tfx.components.example_gen.csv_example_gen import executor

    source = inspect.getsource(executor._CsvToExample.expand)
    assert "io_utils.load_csv_column_names(" in source
    original = executor.io_utils
    with tfx_patches.csv_header_reader(lambda path: ["a", "b"]):
        assert executor.io_utils.load_csv_column_names("x.csv") == ["a", "b"]
    assert executor.io_utils is original


def test_csv_example_gen_types_columns_through_the_module_csv_decoder():
    from tfx.components.example_gen.csv_example_gen import executor
    from tfx_bsl.coders import csv_decoder

    source = inspect.getsource(executor._CsvToExample.expand)
    assert "csv_decoder.ColumnTypeInferrer(" in source
    parameters = list(inspect.signature(csv_decoder.ColumnTypeInferrer).parameters)
    assert parameters[:2] == ["column_names", "skip_blank_lines"]
    original = executor.csv_decoder
    with tfx_patches.csv_column_type_inferrer(lambda names, skip_blank_lines: names):
        assert executor.csv_decoder.ColumnTypeInferrer(["a"], skip_blank_lines=True) == ["a"]
        assert executor.csv_decoder.ParseCSVLine is original.ParseCSVLine
    assert executor.csv_decoder is original
