"""Every TFX internal this project relies on, in one place, checked against TFX 1.16.0.

"Internal" is anything TFX does not offer as an extension point: a module
attribute replaced for a while (a patch), a private class subclassed, a
stock component's `__init__` bypassed, a private module imported. `INTERNALS`
lists each one with where it is used and the test in
tests/test_tfx_internals.py that fails when TFX changes it; that test module
also fails on any other TFX version (an upgrade means re-reading each entry)
and when a module of the project uses a private name not listed here.

Each patch replaces one module attribute that TFX looks up at call time, so
the change reaches TFX's own code without copying it, and only inside a
`with` block: TFX is unchanged outside it.

Two entries live elsewhere because of the layers (tests/test_layers.py):
`models.trainer.skip_autograph_for_tf_keras` (TensorFlow's AutoGraph; the
trainer runs inside the Trainer and models/ does not import the pipeline
package) and `serving.model_check` (TensorFlow's op registry). They are
listed and tested here with the others.

TensorFlow and TFX are imported inside the functions: this module is read by
runners before they decide whether to load them.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

# The TFX release every entry below was read against.
TFX_VERSION = "1.16.0"


@dataclass(frozen=True)
class Internal:
    """One TFX (or TensorFlow, TFDV) internal the project relies on."""

    name: str  # what is relied on, as TFX spells it
    how: str  # patched / subclassed / __init__ bypassed / imported
    where: tuple[str, ...]  # the project's modules that rely on it
    test: str  # the test in tests/test_tfx_internals.py that fails when it changes


INTERNALS = (
    Internal("tfx.utils.dependency_utils.make_beam_dependency_flags", "patched in a block",
             ("pipeline/components/tfx_internals.py",),
             "test_beam_executors_get_their_dependency_flags_through_the_module"),
    Internal("tfx.orchestration.portable.launcher.Launcher", "patched in a block",
             ("pipeline/components/tfx_internals.py",),
             "test_local_dag_runner_builds_launchers_through_the_module"),
    Internal("tfx.orchestration.kubeflow.v2.compiler_utils.get_artifact_title",
             "patched in a block", ("pipeline/components/tfx_internals.py",),
             "test_the_v2_compiler_titles_artifact_types_through_the_module"),
    Internal("tfx.components.transform.executor.TransformProcessor", "patched in a block",
             ("pipeline/components/tfx_internals.py",),
             "test_transforms_executor_analyzes_through_the_module_processor"),
    Internal("tfx.components.evaluator.executor.io_utils (its all_files_pattern)",
             "patched in a block", ("pipeline/components/tfx_internals.py",),
             "test_the_evaluator_reads_each_split_through_the_module_pattern_function"),
    Internal("tfx.components.example_gen.csv_example_gen.executor.io_utils",
             "patched in a block", ("pipeline/components/tfx_internals.py",),
             "test_csv_example_gen_reads_headers_through_the_module_io_utils"),
    Internal("tfx.components.example_gen.csv_example_gen.executor.csv_decoder",
             "patched in a block", ("pipeline/components/tfx_internals.py",),
             "test_csv_example_gen_types_columns_through_the_module_csv_decoder"),
    Internal("tfx.components.example_gen.csv_example_gen.executor._CsvToExample",
             "subclassed", ("pipeline/components/csv_example_gen.py",),
             "test_the_private_csv_to_example_transform_is_as_subclassed"),
    Internal("tfx.components.example_gen.component.FileBasedExampleGen.__init__",
             "__init__ bypassed (Kubeflow V2 compiles only FileBasedExampleGen subclasses "
             "as ExampleGen)", ("pipeline/components/csv_example_gen.py",),
             "test_the_example_gen_subclass_builds_the_spec_the_stock_init_would"),
    Internal("tfx.dsl.components.base.base_node.BaseNode.get_class_type",
             "overridden: a renamed component keeps the type ML Metadata and the cache know",
             ("pipeline/components/tfx_internals.py",),
             "test_renamed_components_keep_their_recorded_type"),
    Internal("tfx.dsl.components.base.base_beam_executor.BaseBeamExecutor._beam_pipeline_args",
             "read", ("pipeline/components/csv_example_gen.py",),
             "test_beam_executors_keep_their_flags_in_the_private_attribute"),
    Internal("tfx.orchestration.portable.launcher, runtime_parameter_utils; "
             "tfx.orchestration.local.runner_utils; tfx.dsl.compiler",
             "imported: one node of a compiled pipeline launched as LocalDagRunner does",
             ("orchestrators/node_runner.py",),
             "test_one_node_is_launched_with_the_functions_local_dag_runner_uses"),
    Internal("tfx.dsl.compiler.compiler.Compiler", "imported: the IR the node runner reads",
             ("orchestrators/ir.py",),
             "test_one_node_is_launched_with_the_functions_local_dag_runner_uses"),
    Internal("tensorflow.python.autograph.core.config.CONVERSION_RULES", "extended",
             ("models/trainer.py",), "test_autograph_leaves_tf_keras_alone_once_told"),
    Internal("tensorflow.python.framework.op_def_registry.get", "imported",
             ("serving/model_check.py",), "test_the_op_registry_knows_core_ops_only"),
    Internal("tensorflow_data_validation.statistics.stats_impl.generate_statistics_in_memory",
             "imported: TFDV has no public in-memory statistics of an Arrow batch",
             ("monitoring/checks.py", "benchmarks/drift.py", "benchmarks/monitoring.py",
              "benchmarks/selection.py"),
             "test_tfdv_computes_statistics_of_a_record_batch_in_memory"),
    Internal("tfx.examples.chicago_taxi_pipeline.taxi_pipeline_native_keras._create_pipeline",
             "called: the benchmark runs TFX's own example as shipped",
             ("benchmarks/tfx_taxi.py",),
             "test_the_tfx_taxi_example_is_built_as_the_benchmark_builds_it"),
)


@contextlib.contextmanager
def no_tfx_sdist_for_local_beam() -> Iterator[None]:
    """Inside the block, a Beam component whose flags run Beam on this machine
    (`is_local_runner`) gets no sdist of TFX.

    TFX hands Beam a freshly built `tfx_ephemeral` sdist (`--extra_package`) so
    that remote workers can import TFX. Beam's direct runner runs in this
    interpreter (or in local subprocesses of it) where TFX is already
    installed, so there the sdist is pure cost. The decision is taken per
    executor, on its own flags: a distributed runner still gets its sdist.
    `base_beam_executor` looks the function up on the module at each executor.
    """
    from tfx.utils import dependency_utils

    from pipeline.components.beam_runner import is_local_runner

    original = dependency_utils.make_beam_dependency_flags

    def flags(beam_pipeline_args: list[str]) -> list[str]:
        if is_local_runner(beam_pipeline_args):
            return beam_pipeline_args
        return original(beam_pipeline_args)

    dependency_utils.make_beam_dependency_flags = flags
    try:
        yield
    finally:
        dependency_utils.make_beam_dependency_flags = original


def airflow_launcher_classes() -> list[type]:
    """Launchers for `AirflowPipelineConfig(supported_launcher_classes=...)`: TFX's
    default in-process launcher, each launch inside `no_tfx_sdist_for_local_beam`.

    An Airflow task runs its component later, in a process of its own: the
    block must be entered there, around the launch, not when the DAG is built.
    """
    return [_no_sdist_launcher()]


@functools.cache
def _no_sdist_launcher() -> type:
    from tfx.orchestration.launcher import in_process_component_launcher

    class NoSdistInProcessLauncher(in_process_component_launcher.InProcessComponentLauncher):
        def launch(self):  # noqa: ANN202 - TFX's ExecutionInfo
            with no_tfx_sdist_for_local_beam():
                return super().launch()

    return NoSdistInProcessLauncher


def recorded_as(type_name: str) -> Callable[[type], type]:
    """Class decorator: TFX records nodes of the class under `type_name` (its
    ML Metadata execution type, part of every cache key), not under the
    class's own name, so renaming a component class re-runs nothing.

    The compiler takes a node's type from `BaseNode.type`, which is
    `get_class_type()`.
    """

    def decorate(cls: type) -> type:
        cls.get_class_type = classmethod(lambda _cls: type_name)
        return cls

    return decorate


@contextlib.contextmanager
def local_launcher(make_subclass: Callable[[type], type]) -> Iterator[type]:
    """Inside the block, LocalDagRunner launches every node with `make_subclass(Launcher)`.

    `LocalDagRunner.run_with_ir` builds one `launcher.Launcher(pipeline_node=...)`
    per node, looked up on the module at each node, in this process. The
    subclass sees each launch start and end (local/progress.py prints them).
    """
    from tfx.orchestration.portable import launcher

    original = launcher.Launcher
    launcher.Launcher = make_subclass(original)
    try:
        yield launcher.Launcher
    finally:
        launcher.Launcher = original


@contextlib.contextmanager
def kfp_artifact_titles(titles: Mapping[type, str]) -> Iterator[None]:
    """Compile custom artifact types for Kubeflow V2 under `titles`, for the compilation only.

    Two limits of TFX's V2 compiler for types it does not define: the schema
    title it writes is "tfx.Artifact" (`compiler_utils.get_artifact_title`),
    while the executor container imports the class by that title, so it must
    be an importable "<module>.<Class>"; and the generic schema it writes
    declares no properties, so a type that declares some (e.g. a subclass of
    ExampleStatistics: span, split_names) is rejected. Such properties still
    travel in each artifact's metadata, which the container maps back onto the
    class's properties. Local runs never see these changes: their ML Metadata
    types and cache stay as they are, also when compiling fails.
    """
    from tfx.orchestration.kubeflow.v2 import compiler_utils

    saved: dict[type, dict[str, Any]] = {}
    tfx_title = compiler_utils.get_artifact_title

    def title(artifact_type: type) -> str:
        return titles[artifact_type] if artifact_type in titles else tfx_title(artifact_type)

    try:
        compiler_utils.get_artifact_title = title
        for artifact_type, type_title in titles.items():
            saved[artifact_type] = {k: vars(artifact_type)[k] for k in ("TYPE_NAME", "PROPERTIES")
                                    if k in vars(artifact_type)}
            artifact_type.TYPE_NAME = type_title
            artifact_type.PROPERTIES = {}
        yield
    finally:
        compiler_utils.get_artifact_title = tfx_title
        for artifact_type, attributes in saved.items():
            for name in ("TYPE_NAME", "PROPERTIES"):
                if name in attributes:
                    setattr(artifact_type, name, attributes[name])
                else:
                    delattr(artifact_type, name)


@contextlib.contextmanager
def transform_analyze_paths(substitutes: Mapping[str, str]) -> Iterator[list[str]]:
    """Inside the block, Transform's executor analyzes `substitutes[p]` in place of
    each data path `p` it would analyze; yields the paths it analyzed.

    `transform.executor.Executor.Do` builds the analyze paths itself (every file
    of each analyze split) and hands them to `TransformProcessor().Transform`,
    which it looks up on the module at the call. pipeline/components/sampling.py uses
    this
    to analyze a sample of a large split.
    """
    from tfx.components.transform import executor, labels

    original = executor.TransformProcessor
    analyzed: list[str] = []

    class SubstitutingProcessor(original):
        def Transform(self, inputs: dict, outputs: dict, status_file: str) -> None:  # noqa: N802
            paths = [substitutes.get(p, p) for p in inputs[labels.ANALYZE_DATA_PATHS_LABEL]]
            analyzed.extend(paths)
            super().Transform(
                {**inputs, labels.ANALYZE_DATA_PATHS_LABEL: paths}, outputs, status_file
            )

    executor.TransformProcessor = SubstitutingProcessor
    try:
        yield analyzed
    finally:
        executor.TransformProcessor = original


@contextlib.contextmanager
def evaluator_file_patterns(substitutes: Mapping[str, str]) -> Iterator[list[str]]:
    """Inside the block, TFX's Evaluator reads `substitutes[p]` in place of each
    split's file pattern `p`; yields the patterns it read.

    `evaluator.executor.Executor.Do` builds each split's pattern with
    `io_utils.all_files_pattern(split_uri)`, looked up on the executor
    module's `io_utils` at the call. Only that module's reference is replaced,
    for the block only: the rest of TFX keeps `io_utils` as it is (Beam
    workers get the resolved patterns). The Evaluator reads no
    `custom_split_pattern` (StatisticsGen's supported way).
    pipeline/components/evaluator.py uses this to score a sample of a large eval split.
    """
    from types import SimpleNamespace

    from tfx.components.evaluator import executor

    original = executor.io_utils
    read: list[str] = []

    def substituted(directory: str) -> str:
        pattern = original.all_files_pattern(directory)
        read.append(substitutes.get(pattern, pattern))
        return read[-1]

    executor.io_utils = SimpleNamespace(**{**vars(original), "all_files_pattern": substituted})
    try:
        yield read
    finally:
        executor.io_utils = original


@contextlib.contextmanager
def csv_header_reader(read_header: Callable[[str], list[str]]) -> Iterator[None]:
    """Inside the block, TFX's CSV ExampleGen reads each file's column names with
    `read_header`.

    TFX's `_CsvToExample.expand` reads headers with
    `io_utils.load_csv_column_names`, looked up on the executor module's
    `io_utils` at the call, while the Beam graph is built (in this process,
    whatever the runner). pipeline/components/csv_example_gen.py uses this to
    drop a UTF-8 byte-order mark, which TFX would keep in the first column's name.
    """
    from types import SimpleNamespace

    from tfx.components.example_gen.csv_example_gen import executor

    original = executor.io_utils
    executor.io_utils = SimpleNamespace(load_csv_column_names=read_header)
    try:
        yield
    finally:
        executor.io_utils = original


@contextlib.contextmanager
def csv_column_type_inferrer(inferrer: Callable[..., Any]) -> Iterator[None]:
    """Inside the block, TFX's CSV ExampleGen types its columns with
    `inferrer(column_names, skip_blank_lines=...)` in place of tfx_bsl's
    `csv_decoder.ColumnTypeInferrer` (a Beam CombineFn giving each column's
    `ColumnInfo`).

    `_CsvToExample.expand` builds the combiner through the executor module's
    `csv_decoder`, looked up at the call, while the Beam graph is built (in
    this process, whatever the runner); the combiner itself is pickled into
    the graph. pipeline/components/csv_example_gen.py uses this so the curated
    schema's types win over what a file's values look like.
    """
    from types import SimpleNamespace

    from tfx.components.example_gen.csv_example_gen import executor

    original = executor.csv_decoder
    executor.csv_decoder = SimpleNamespace(**{**vars(original), "ColumnTypeInferrer": inferrer})
    try:
        yield
    finally:
        executor.csv_decoder = original
