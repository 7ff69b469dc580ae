"""Each TFX internal of pipeline/components/tfx_internals.py against the real TFX it uses.

For every patch: the attribute it replaces still exists with the signature it
assumes, TFX still looks it up on the module at call time (so replacing it
reaches TFX's code), the patch has its effect on the real TFX object, and TFX
is as before once the block ends. For every other internal (a private class
subclassed, a stock `__init__` bypassed, a private module imported): it is
still there and behaves as the project assumes. A TFX upgrade that moves any
of this fails here, not in a user's run; so does a module that starts relying
on an internal without declaring it in `INTERNALS`.
"""

import ast
import inspect
import json
import re
from pathlib import Path

import pytest
from tfx.dsl.component.experimental.annotations import OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types.artifact import Artifact, Property, PropertyType

from pipeline.components import tfx_internals

ROOT = Path(__file__).resolve().parent.parent


def _parameters(function) -> list[str]:
    return list(inspect.signature(function).parameters)


def test_tfx_is_the_version_the_patches_were_read_against():
    from tfx import version

    locked = re.search(r"^tfx==(\S+)$", (ROOT / "requirements.lock").read_text(), re.M)
    assert version.__version__ == locked.group(1) == tfx_internals.TFX_VERSION, (
        "TFX changed: re-read every entry in pipeline/components/tfx_internals.py, "
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


@pytest.mark.parametrize("flags, local", [
    ([], True),
    (["--runner=DirectRunner"], True),
    (["--runner", "DirectRunner"], True),
    (["--runner=DataflowRunner", "--project=p", "--region=r", "--temp_location=gs://b/t"], False),
])
def test_a_beam_executor_gets_the_sdist_only_for_a_distributed_runner(flags, local):
    from tfx.components.statistics_gen.executor import Executor
    from tfx.utils import dependency_utils

    original = dependency_utils.make_beam_dependency_flags
    flags = ["--direct_running_mode=in_memory", *flags]
    with tfx_internals.no_tfx_sdist_for_local_beam():
        # A real Beam component's executor: StatisticsGen's.
        args = Executor(Executor.Context(beam_pipeline_args=list(flags)))._beam_pipeline_args
    assert dependency_utils.make_beam_dependency_flags is original
    assert args[: len(flags)] == flags
    staged = [a for a in args if a.startswith("--extra_package")]
    assert bool(staged) is not local, args


def test_beam_executors_keep_their_flags_in_the_private_attribute():
    """csv_example_gen.Executor reads `_beam_pipeline_args` to pick its path."""
    from tfx.dsl.components.base import base_beam_executor

    source = inspect.getsource(base_beam_executor.BaseBeamExecutor.__init__)
    assert "self._beam_pipeline_args = " in source


def test_airflows_launcher_launches_inside_the_block(tmp_path):
    """AirflowDagRunner's launcher, as a task runs it: the block is entered for
    the launch in the task's process, and left after it."""
    from tfx.orchestration import data_types, metadata
    from tfx.orchestration.launcher import in_process_component_launcher
    from tfx.utils import dependency_utils

    original = dependency_utils.make_beam_dependency_flags
    (launcher_class,) = tfx_internals.airflow_launcher_classes()
    assert issubclass(launcher_class, in_process_component_launcher.InProcessComponentLauncher)
    node = _Staging(flags=json.dumps(["--runner=DirectRunner"])).with_id("staging")
    _STAGED.clear()
    launcher_class.create(
        component=node,
        pipeline_info=data_types.PipelineInfo("patched", str(tmp_path / "root"), run_id="r1"),
        driver_args=data_types.DriverArgs(enable_cache=False),
        metadata_connection=metadata.Metadata(
            metadata.sqlite_metadata_connection_config(str(tmp_path / "metadata.sqlite"))),
        beam_pipeline_args=[],
        additional_pipeline_args={},
    ).launch()
    assert _STAGED == [["--runner=DirectRunner"]]
    assert dependency_utils.make_beam_dependency_flags is original


# --------------------------------------------------------------------------- launcher


class _Marker(Artifact):
    TYPE_NAME = "PatchTestMarker"


_STAGED: list = []


@component
def _Staging(flags: Parameter[str], out: OutputArtifact[_Marker]) -> None:  # noqa: N802
    """Records what TFX's dependency flags would be for `flags`, as it runs."""
    from tfx.utils import dependency_utils

    _STAGED.append(dependency_utils.make_beam_dependency_flags(json.loads(flags)))


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
    with tfx_internals.local_launcher(recording) as subclass:
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
    with tfx_internals.kfp_artifact_titles({_Counted: "kubeflow_runner.Counted"}):
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
    with tfx_internals.transform_analyze_paths({"a/*": "a/x*"}):
        assert executor.TransformProcessor is not original
        assert issubclass(executor.TransformProcessor, original)
    assert executor.TransformProcessor is original


def test_the_evaluator_reads_each_split_through_the_module_pattern_function():
    from tfx.components.evaluator import executor
    from tfx.utils import io_utils

    assert "file_pattern = io_utils.all_files_pattern(split_uri)" in inspect.getsource(
        executor.Executor.Do)
    assert executor.io_utils is io_utils
    with tfx_internals.evaluator_file_patterns({"/e/Split-eval/*": "/e/Split-eval/x-0*"}) as read:
        assert executor.io_utils.all_files_pattern("/e/Split-eval") == "/e/Split-eval/x-0*"
        assert executor.io_utils.all_files_pattern("/e/Split-train") == "/e/Split-train/*"
        assert executor.io_utils.write_string_file is io_utils.write_string_file
        # The rest of TFX is untouched, also inside the block.
        assert io_utils.all_files_pattern("/e/Split-eval") == "/e/Split-eval/*"
    assert read == ["/e/Split-eval/x-0*", "/e/Split-train/*"]
    assert executor.io_utils is io_utils


def test_csv_example_gen_reads_headers_through_the_module_io_utils():
    from tfx.components.example_gen.csv_example_gen import executor

    source = inspect.getsource(executor._CsvToExample.expand)
    assert "io_utils.load_csv_column_names(" in source
    original = executor.io_utils
    with tfx_internals.csv_header_reader(lambda path: ["a", "b"]):
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
    with tfx_internals.csv_column_type_inferrer(lambda names, skip_blank_lines: names):
        assert executor.csv_decoder.ColumnTypeInferrer(["a"], skip_blank_lines=True) == ["a"]
        assert executor.csv_decoder.ParseCSVLine is original.ParseCSVLine
    assert executor.csv_decoder is original


# --------------------------------------------------------------------------- components


def test_the_private_csv_to_example_transform_is_as_subclassed():
    """csv_example_gen._CsvToExampleWithoutBom: TFX's private `_CsvToExample`,
    built by the executor from `GetInputSourceToExamplePTransform`."""
    from tfx.components.example_gen import base_example_gen_executor
    from tfx.components.example_gen.csv_example_gen import executor

    from pipeline.components import csv_example_gen

    assert _parameters(executor._CsvToExample.__init__) == [
        "self", "exec_properties", "split_pattern"]
    assert _parameters(executor._CsvToExample.expand) == ["self", "pipeline"]
    assert issubclass(csv_example_gen._CsvToExampleWithoutBom, executor._CsvToExample)
    assert "self.GetInputSourceToExamplePTransform()" in inspect.getsource(
        base_example_gen_executor.BaseExampleGenExecutor)


def test_the_example_gen_subclass_builds_the_spec_the_stock_init_would():
    """StreamingCsvExampleGen bypasses FileBasedExampleGen.__init__ (it builds the
    stock spec, without the schema): it must still set what that __init__ sets."""
    from tfx.components import CsvExampleGen
    from tfx.components.example_gen.component import FileBasedExampleGen
    from tfx.proto import example_gen_pb2

    from pipeline.components.csv_example_gen import StreamingCsvExampleGen

    config = {"input_config": example_gen_pb2.Input(splits=[
        example_gen_pb2.Input.Split(name="s", pattern="*.csv")]),
        "output_config": example_gen_pb2.Output()}
    ours = StreamingCsvExampleGen(input_base="/data", **config)
    theirs = CsvExampleGen(input_base="/data", **config)
    assert isinstance(ours, FileBasedExampleGen)  # what Kubeflow V2 compiles as an ExampleGen
    assert ours.exec_properties == theirs.exec_properties
    assert set(ours.outputs) == set(theirs.outputs)
    assert set(vars(ours)) == set(vars(theirs))


def test_renamed_components_keep_their_recorded_type():
    """The type the compiler records (ML Metadata execution type, cache key)."""
    from tfx.dsl.compiler import compiler

    from pipeline.components import csv_example_gen, sampling

    assert "node.node_info.type.name = tfx_node.type" in inspect.getsource(compiler)
    for cls, recorded in [
        (csv_example_gen.StreamingCsvExampleGen,
         "pipeline.components.csv_example_gen.CsvExampleGen"),
        (sampling.SampledStatisticsGen, "pipeline.components.sampling.StatisticsGen"),
        (sampling.SampledTransform, "pipeline.components.sampling.Transform"),
    ]:
        assert cls.get_class_type() == recorded
    node = sampling.SampledStatisticsGen(examples=_examples_channel(), sample_rows=1)
    assert node.type == "pipeline.components.sampling.StatisticsGen"


def _examples_channel():
    from tfx import types
    from tfx.types import standard_artifacts

    return types.Channel(type=standard_artifacts.Examples)


# --------------------------------------------------------------------------- outside pipeline/


def test_one_node_is_launched_with_the_functions_local_dag_runner_uses():
    """orchestrators/node_runner.py launches one node of the compiled IR as
    LocalDagRunner launches each (orchestrators/ir.py compiles it)."""
    from tfx.dsl.compiler import compiler, constants
    from tfx.orchestration.local import local_dag_runner, runner_utils
    from tfx.orchestration.portable import runtime_parameter_utils

    source = inspect.getsource(local_dag_runner.LocalDagRunner.run_with_ir)
    for call in ("runner_utils.extract_local_deployment_config(", "extract_executor_spec(",
                 "extract_custom_driver_spec(", "launcher.Launcher("):
        assert call in source, call
    assert _parameters(runner_utils.extract_executor_spec) == ["deployment_config", "node_id"]
    assert _parameters(runtime_parameter_utils.substitute_runtime_parameter)[:2] == [
        "msg", "parameter_bindings"]
    assert constants.PIPELINE_RUN_ID_PARAMETER_NAME == "pipeline-run-id"
    assert _parameters(compiler.Compiler.compile)[:2] == ["self", "tfx_pipeline"]


def test_the_op_registry_knows_core_ops_only():
    """serving/model_check.py: an op a Python library registers is unknown to TF Serving."""
    from tensorflow.python.framework import op_def_registry

    assert op_def_registry.get("MatMul") is not None
    assert op_def_registry.get("NoSuchOpAnywhere") is None


def test_tfdv_computes_statistics_of_a_record_batch_in_memory():
    """monitoring/checks.py: TFDV has no public in-memory entry point for Arrow batches."""
    import pyarrow as pa
    import tensorflow_data_validation as tfdv
    from tensorflow_data_validation.statistics import stats_impl

    batch = pa.RecordBatch.from_arrays([pa.array([[1.0], [2.0]])], ["x"])
    stats = stats_impl.generate_statistics_in_memory(batch, tfdv.StatsOptions())
    assert stats.datasets[0].num_examples == 2


def test_the_tfx_taxi_example_is_built_as_the_benchmark_builds_it():
    """benchmarks/tfx_taxi.py runs TFX's own example through its private builder."""
    from tfx.examples.chicago_taxi_pipeline import taxi_pipeline_native_keras as example

    assert {"pipeline_name", "pipeline_root", "data_root", "module_file", "serving_model_dir",
            "metadata_path", "beam_pipeline_args"} <= set(_parameters(example._create_pipeline))
    assert isinstance(example._pipeline_name, str)
    assert isinstance(example._beam_pipeline_args, list)


# --------------------------------------------------------------------------- the list


def test_every_internal_names_its_test_and_its_module():
    tests = {name for name in globals() if name.startswith("test_")}
    for internal in tfx_internals.INTERNALS:
        assert internal.test in tests, internal
        assert all((ROOT / where).is_file() for where in internal.where), internal


# Modules of TFX, TensorFlow and TFDV that are internal as a whole.
_PRIVATE_MODULES = re.compile(
    r"tensorflow\.python\b|tensorflow_data_validation\.statistics\.stats_impl\b"
    r"|tfx\.orchestration\.portable\b|tfx\.orchestration\.local\.runner_utils\b"
    r"|tfx\.dsl\.compiler\b"
)
_THIRD_PARTY = ("tfx", "tensorflow", "tensorflow_data_validation", "tensorflow_transform",
                "tensorflow_model_analysis", "tfx_bsl", "ml_metadata")
_SCANNED = ("models", "serving", "orchestrators", "metadata", "local", "review", "pipeline",
            "monitoring", "benchmarks")


def _internal_uses(source: str) -> set[str]:
    """What a module relies on that TFX (TF, TFDV...) does not offer: a private
    name of theirs, a private module, a Beam executor's flags, a bypassed
    `__init__`, a component's recorded type."""
    tree = ast.parse(source)
    theirs, found = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            if node.module.split(".")[0] in _THIRD_PARTY:
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    theirs.add(alias.asname or alias.name)
                    if alias.name.startswith("_") or _PRIVATE_MODULES.match(full):
                        found.add(full)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in _THIRD_PARTY:
                    theirs.add(alias.asname or alias.name.split(".")[0])
                    if _PRIVATE_MODULES.match(alias.name):
                        found.add(alias.name)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            private = node.attr.startswith("_") and not node.attr.startswith("__")
            if private and isinstance(node.value, ast.Name) and node.value.id in theirs:
                found.add(f"{node.value.id}.{node.attr}")
            if node.attr in ("_beam_pipeline_args", "get_class_type"):
                found.add(node.attr)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "__init__"
              and not (isinstance(node.func.value, ast.Call)
                       and getattr(node.func.value.func, "id", None) == "super")):
            found.add(f"{ast.unparse(node.func)} (a bypassed __init__)")
    return found


def test_the_scan_finds_each_kind_of_internal():
    source = """
from tfx.components.example_gen.csv_example_gen import executor as stock
from tfx.orchestration.local import runner_utils
from tensorflow.python.framework import op_def_registry
class A(stock._CsvToExample):
    def __init__(self):
        Base.__init__(self)
        super().__init__()
        print(self._beam_pipeline_args, info._replace)
"""
    assert _internal_uses(source) == {
        "stock._CsvToExample", "tfx.orchestration.local.runner_utils",
        "tensorflow.python.framework.op_def_registry", "_beam_pipeline_args",
        "Base.__init__ (a bypassed __init__)"}


def test_no_module_relies_on_an_internal_it_does_not_declare():
    declared = {where for internal in tfx_internals.INTERNALS for where in internal.where}
    files = [p for d in _SCANNED for p in (ROOT / d).rglob("*.py")] + list(ROOT.glob("*.py"))
    undeclared = {}
    for path in files:
        where = str(path.relative_to(ROOT))
        found = _internal_uses(path.read_text())
        if found and where not in declared:
            undeclared[where] = sorted(found)
    assert not undeclared, f"declare these in tfx_internals.INTERNALS: {undeclared}"
