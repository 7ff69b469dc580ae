"""Every change this project makes to TFX from outside, checked against TFX 1.16.0.

Each patch replaces one module attribute that TFX looks up at call time, so
the change reaches TFX's own code without copying it. That relies on TFX's
internals staying as they were in the version named here:
tests/test_tfx_patches.py checks, for each patch, that the attribute still
exists with the expected signature, that TFX still calls it through the
module, and that the patch has its effect; it also fails on any other TFX
version, so an upgrade means re-reading each patch below.

The one patch that lives elsewhere is `models.trainer.skip_autograph_for_tf_keras`
(TensorFlow's AutoGraph, not TFX): the trainer runs inside the Trainer
component, and models/ does not import the pipeline package. It is tested
with the others.

TensorFlow and TFX are imported inside the functions: this module is read by
runners before they decide whether to load them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

# The TFX release every patch below was read against.
TFX_VERSION = "1.16.0"


def skip_tfx_sdist_for_direct_runner() -> None:
    """Stop TFX from building an sdist of itself before each Beam component.

    TFX hands Beam a freshly built `tfx_ephemeral` sdist (`--extra_package`) so
    that remote workers can import TFX. Beam's direct runner runs in this
    interpreter (or in local subprocesses of it) where TFX is already
    installed, so for local runs the sdist is pure cost. For the rest of the
    process: a local run is one process.
    """
    from tfx.utils import dependency_utils

    def _unchanged(beam_pipeline_args: list[str]) -> list[str]:
        return beam_pipeline_args

    # base_beam_executor looks the function up on this module at each call.
    dependency_utils.make_beam_dependency_flags = _unchanged


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
    which it looks up on the module at the call. pipeline/sampling.py uses this
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
    `io_utils.all_files_pattern(split_uri)`, looked up on the module at the
    call. The replacement is in place for the block only (the Evaluator's
    executor in this process; Beam workers get the resolved patterns).
    pipeline/evaluator.py uses this to score a sample of a large eval split.
    """
    from tfx.utils import io_utils

    original = io_utils.all_files_pattern
    read: list[str] = []

    def substituted(directory: str) -> str:
        pattern = original(directory)
        read.append(substitutes.get(pattern, pattern))
        return read[-1]

    io_utils.all_files_pattern = substituted
    try:
        yield read
    finally:
        io_utils.all_files_pattern = original


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
