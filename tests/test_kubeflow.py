"""Kubeflow Pipelines / Vertex AI deployment, checked offline the way the backends would.

The spec is compiled once, through the command line a user runs, into a
temporary folder; then it is parsed and loaded with the real kfp-pipeline-spec,
KFP SDK, google-cloud-aiplatform and TFX libraries. Nothing here needs a
cluster, a registry or cloud credentials, and nothing runs the pipeline.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from pipeline import kubeflow
from tests.test_dockerfile import shipped_top_level_modules

ROOT = Path(__file__).resolve().parent.parent
IMAGE = "registry.example/team/chicago-taxi:test"
PIPELINE_ROOT = "gs://test-bucket/taxi"
TRAIN_STEPS = 1234
# What a user who outgrew one machine sets: the heavy components go to Dataflow.
DATAFLOW_ARGS = (
    "--runner=DataflowRunner",
    "--project=test-project",
    "--region=us-central1",
    "--temp_location=gs://test-bucket/beam-temp",
)


def isolated_env(home: Path, **extra: str) -> dict[str, str]:
    """This environment minus any cloud credentials or KFP settings of the machine."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("KFP_", "GOOGLE_", "CLOUDSDK_", "VERTEX_"))}
    env.update(HOME=str(home), CLOUDSDK_CONFIG=str(home / "gcloud"), NO_GCE_CHECK="true")
    env.update(extra)
    return env


def run_runner(*args: str, env: dict[str, str], timeout: float = 300):
    return subprocess.run([sys.executable, str(ROOT / "kubeflow_runner.py"), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, env=env)


@dataclass
class Compiled:
    """The spec `kubeflow_runner.py` wrote, as the file, a dict and the proto."""

    path: Path
    text: str
    data: dict
    spec: pipeline_spec_pb2.PipelineSpec


# The compile is a process importing TensorFlow and TFX: tests of its spec are marked slow.
@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> Compiled:
    return compile_spec(tmp_path_factory)


def compile_spec(tmp_path_factory) -> Compiled:
    """Compile as a user would: flags for the places, environment variables for the rest."""
    build = tmp_path_factory.mktemp("kubeflow_build")
    env = isolated_env(tmp_path_factory.mktemp("home"), KFP_IMAGE=IMAGE,
                       KFP_TRAIN_STEPS=str(TRAIN_STEPS), KFP_BEAM_ARGS=" ".join(DATAFLOW_ARGS))
    result = run_runner("--pipeline-root", PIPELINE_ROOT, "--output-dir", str(build), env=env)
    assert result.returncode == 0, f"compile failed:\n{result.stdout}\n{result.stderr[-3000:]}"
    path = build / f"{kubeflow.DEFAULT_PIPELINE_NAME}.yaml"
    assert f"Compiled {path}" in result.stdout
    data = yaml.safe_load(path.read_text())
    spec = json_format.ParseDict(data, pipeline_spec_pb2.PipelineSpec())
    return Compiled(path, path.read_text(), data, spec)


def deployment(compiled: Compiled) -> pipeline_spec_pb2.PipelineDeploymentConfig:
    return json_format.ParseDict(compiled.data["deploymentSpec"],
                                 pipeline_spec_pb2.PipelineDeploymentConfig())


def executor_of(compiled: Compiled, task: str):
    component = compiled.spec.components[compiled.spec.root.dag.tasks[task].component_ref.name]
    return deployment(compiled).executors[component.executor_label]


@pytest.fixture(scope="module")
def local_pipeline(tmp_path_factory):
    """The pipeline `python local_runner.py` runs (built, not run)."""
    from pipeline.configs import PipelineConfig
    from pipeline.pipeline import create_pipeline

    return create_pipeline(PipelineConfig(output_dir=str(tmp_path_factory.mktemp("local"))))


def node_of(task: str, node_ids: set[str]) -> str:
    """The local node a compiled task comes from: one task per node."""
    assert task in node_ids, f"compiled task {task!r} matches no local component"
    return task


# --------------------------------------------------------------------------- the spec


@pytest.mark.slow
def test_spec_parses_strictly_as_yaml_and_as_json(compiled: Compiled):
    """Strict parsing (no ignore_unknown_fields): a field PipelineSpec does not define fails."""
    from_json = json_format.ParseDict(json.loads(json.dumps(compiled.data)),
                                      pipeline_spec_pb2.PipelineSpec())
    assert from_json == compiled.spec
    assert compiled.spec.pipeline_info.name == kubeflow.DEFAULT_PIPELINE_NAME
    assert compiled.spec.schema_version == "2.1.0"
    assert compiled.spec.default_pipeline_root == PIPELINE_ROOT


@pytest.mark.slow
def test_kfp_sdk_loads_the_spec(compiled: Compiled):
    from kfp import components
    from kfp.client import client

    component = components.load_component_from_file(str(compiled.path))
    assert component.name == kubeflow.DEFAULT_PIPELINE_NAME
    assert component.component_spec.inputs["train_args"].default == json.dumps(
        {"num_steps": TRAIN_STEPS})
    # What Client.create_run_from_pipeline_package / upload_pipeline read.
    assert client._extract_pipeline_yaml(str(compiled.path)).pipeline_spec == compiled.spec


@pytest.mark.slow
def test_vertex_sdk_builds_a_job_from_the_spec(compiled: Compiled):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import aiplatform

    def job(**parameters):
        return aiplatform.PipelineJob(
            display_name="test", template_path=str(compiled.path), project="test-project",
            location="us-central1", credentials=AnonymousCredentials(),
            parameter_values=parameters or None)

    runtime = job(train_args='{"num_steps": 10}')._gca_resource.runtime_config
    assert runtime.gcs_output_directory == PIPELINE_ROOT
    assert runtime.parameter_values["train_args"] == '{"num_steps": 10}'
    with pytest.raises(ValueError, match="not found in the pipeline job input definitions"):
        job(train_steps=10)


@pytest.mark.slow
def test_every_local_component_is_compiled_with_the_same_dependencies(
    compiled: Compiled, local_pipeline
):
    expected = {node.id: {up.id for up in node.upstream_nodes}
                for node in local_pipeline.components}
    actual: dict[str, set[str]] = {}
    for name, task in compiled.spec.root.dag.tasks.items():
        node = node_of(name, set(expected))
        actual.setdefault(node, set()).update(
            node_of(dependency, set(expected)) for dependency in task.dependent_tasks)
    assert actual == expected


@pytest.mark.slow
def test_every_executor_runs_in_the_configured_image(compiled: Compiled, local_pipeline):
    from tfx.dsl.components.base.base_component import BaseComponent

    nodes = {node.id: node for node in local_pipeline.components}
    images = {}
    for task in compiled.spec.root.dag.tasks:
        executor = executor_of(compiled, task)
        if executor.HasField("container"):
            images[node_of(task, set(nodes))] = executor.container.image
    assert all(isinstance(node, BaseComponent) for node in nodes.values()), "no Resolver nodes"
    assert set(images) == set(nodes), "every node runs a container"
    assert set(images.values()) == {IMAGE}, images


@pytest.mark.slow
def test_open_source_kfp_can_run_every_executor(compiled: Compiled):
    """The KFP v2 backend compiles only container and importer executors.

    kubeflow/pipelines backend/src/v2/compiler/visitor.go: "non-container and
    non-importer executor not implemented"; argocompiler/dag.go: "resolver
    executors not implemented". Vertex AI runs more kinds; this spec needs none.
    """
    kinds = {label: executor.WhichOneof("spec")
             for label, executor in deployment(compiled).executors.items()}
    assert kinds and set(kinds.values()) <= {"container", "importer"}, kinds
    assert "resolver" not in compiled.text


def _absolute_paths(text: str) -> set[str]:
    """Absolute file paths in `text`, not counting URIs (gs://...) or URL paths."""
    return set(re.findall(r"(?<![\w:/.\-{}])/(?:[\w.\-]+/)*[\w.\-]+", text))


@pytest.mark.slow
def test_no_path_of_this_machine_leaks_into_the_spec(compiled: Compiled):
    machine = {str(ROOT), str(Path.home()), os.getcwd(), str(compiled.path.parent),
               "/work", "/tmp", "/home", "/root", "/Users", str(Path(sys.executable).parent)}
    leaks = {place for place in machine if len(place) > 1 and place in compiled.text}
    assert leaks == set()
    # Any absolute path the executors see must be inside the image's project folder.
    outside = {p for p in _absolute_paths(compiled.text)
               if not p.startswith(kubeflow.IMAGE_PROJECT_DIR + "/")}
    assert outside == set()


@pytest.mark.slow
def test_data_model_and_metadata_live_on_the_cluster(compiled: Compiled):
    tasks = compiled.data["root"]["dag"]["tasks"]
    example_gen = tasks["CsvExampleGen"]["inputs"]["parameters"]["input_base"]
    assert example_gen["runtimeValue"]["constant"] == f"{PIPELINE_ROOT}/data"
    assert f"{PIPELINE_ROOT}/serving_model/chicago_taxi" in json.dumps(tasks["Pusher"])


def test_ml_metadata_is_the_clusters_own():
    """No SQLite store on the cluster: ML Metadata is the backend's own."""
    from pipeline.pipeline import create_pipeline

    args = kubeflow.build_parser().parse_args(
        ["--pipeline-root", PIPELINE_ROOT, "--image", IMAGE])
    config = kubeflow.config_from_args(args)
    assert not config.local_metadata
    assert create_pipeline(config).metadata_connection_config is None


@pytest.mark.slow
def test_train_and_eval_steps_are_pipeline_parameters(compiled: Compiled):
    from tfx.proto import trainer_pb2
    from tfx.utils import proto_utils

    parameters = compiled.spec.root.input_definitions.parameters
    trainer = compiled.spec.root.dag.tasks["Trainer"].inputs.parameters
    for name, proto, steps in (("train_args", trainer_pb2.TrainArgs(), TRAIN_STEPS),
                               ("eval_args", trainer_pb2.EvalArgs(), 50)):
        assert trainer[name].component_input_parameter == name, f"{name} is a constant"
        assert parameters[name].parameter_type == pipeline_spec_pb2.ParameterType.STRING
        assert parameters[name].is_optional
        # The Trainer executor reads the parameter's text exactly like this.
        proto_utils.json_to_proto(parameters[name].default_value.string_value, proto)
        assert proto.num_steps == steps


@pytest.mark.slow
def test_heavy_components_get_the_configured_beam_args(compiled: Compiled, local_pipeline):
    from tfx.dsl.components.base.base_beam_component import BaseBeamComponent

    heavy = {n.id for n in local_pipeline.components if isinstance(n, BaseBeamComponent)}
    assert {"CsvExampleGen", "StatisticsGen", "Transform", "Evaluator"} <= heavy
    # Remote workers must run the pipeline image: the runner adds it.
    expected = (*DATAFLOW_ARGS, f"--sdk_container_image={IMAGE}")
    for node in heavy:
        args = list(executor_of(compiled, node).container.args)
        missing = [flag for flag in expected if flag not in args]
        assert missing == [], f"{node} lacks {missing}"


@pytest.mark.parametrize("flags, added", [
    ((), True),
    (("--runner=DataflowRunner",), True),
    (("--sdk_container_image=other:1",), False),
    (("--setup_file=./setup.py",), False),
    (("--extra_package=dist/x.tar.gz",), False),
])
def test_beam_workers_get_the_pipeline_image_unless_told_otherwise(flags, added):
    result = kubeflow.beam_args(flags, IMAGE)
    assert result[: len(flags)] == flags
    assert (f"--sdk_container_image={IMAGE}" in result) is added
    assert len(result) == len(flags) + added


def _code_references(compiled: Compiled) -> dict[str, str]:
    """Dotted path -> what names it, for everything the containers import by name."""
    references = {}
    for label, executor in deployment(compiled).executors.items():
        args = list(executor.container.args)
        if "--executor_class_path" in args:
            references[args[args.index("--executor_class_path") + 1]] = label
    for name, task in compiled.data["root"]["dag"]["tasks"].items():
        for key in ("preprocessing_fn", "run_fn"):
            value = task.get("inputs", {}).get("parameters", {}).get(key)
            if value:
                references[value["runtimeValue"]["constant"]] = f"{name}.{key}"
    for title in re.findall(r"title: ([\w.]+)", compiled.text):
        references.setdefault(title, "artifact type title")
    return references


@pytest.mark.slow
def test_code_the_spec_names_is_importable_and_in_the_image(compiled: Compiled):
    from tfx.orchestration.kubeflow.v2 import compiler_utils
    from tfx.types.artifact import Artifact
    from tfx.utils import import_utils

    references = _code_references(compiled)
    for path in ("models.preprocessing.preprocessing_fn", "models.trainer.run_fn",
                 "pipeline.components.feature_selection.FeatureSelectionComponent_Executor"):
        assert path in references
    shipped, unresolved, missing = shipped_top_level_modules(), {}, {}
    for path, where in references.items():
        # As the container does; TFX's own artifact titles map through its table.
        class_path = compiler_utils.TITLE_TO_CLASS_PATH.get(path, path)
        try:
            import_utils.import_class_by_path(class_path)
        except ImportError as error:
            unresolved[path] = f"{where}: {error.__cause__!r}"
        if class_path.split(".")[0] not in shipped | {"tfx"}:
            missing[path] = where
    assert unresolved == {}
    assert missing == {}, "named by the spec but not in the image"
    custom = {p for p in references if p.startswith(kubeflow.TITLE_MODULE + ".")}
    assert f"{kubeflow.TITLE_MODULE}.FeatureSelection" in custom
    for title in custom:
        assert issubclass(import_utils.import_class_by_path(title), Artifact)


def _runtime_artifacts(spec: pipeline_spec_pb2.PipelineSpec, module: str) -> dict:
    """Output name -> an ExecutorInput artifact list of that output's type, for each output
    of the spec whose type title is in `module`, as a container receives it."""
    from kfp.pipeline_spec.pipeline_spec_pb2 import ArtifactList, RuntimeArtifact

    found = {}
    for component in spec.components.values():
        for name, output in component.output_definitions.artifacts.items():
            title = yaml.safe_load(output.artifact_type.instance_schema or "{}").get("title", "")
            if title.startswith(module + "."):
                found[title] = ArtifactList(artifacts=[RuntimeArtifact(
                    name=name, uri="gs://bucket/x", type=output.artifact_type)])
    return found


@pytest.mark.slow
def test_the_spec_titles_custom_types_by_the_artifact_types_module(compiled: Compiled):
    """The container gets each custom type's class from the title the spec names."""
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_entrypoint_utils as entry

    import artifact_types

    received = _runtime_artifacts(compiled.spec, "artifact_types")
    assert set(received) == {f"artifact_types.{name}" for name in artifact_types.__all__}
    for title, parsed in entry.parse_raw_artifact_dict(received).items():
        assert type(parsed[0]) is getattr(artifact_types, title.split(".")[1])


@pytest.mark.slow
def test_specs_compiled_before_artifact_types_still_resolve(compiled: Compiled):
    """A spec compiled earlier titles them `kubeflow_runner.<Class>`: a new image still
    gives its containers the same classes, with a deprecation warning."""
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_entrypoint_utils as entry

    import artifact_types

    old = pipeline_spec_pb2.PipelineSpec()
    old.CopyFrom(compiled.spec)
    for component in old.components.values():
        for output in component.output_definitions.artifacts.values():
            schema = output.artifact_type.instance_schema
            output.artifact_type.instance_schema = schema.replace(
                "title: artifact_types.", "title: kubeflow_runner.")
    received = _runtime_artifacts(old, "kubeflow_runner")
    assert set(received) == {f"kubeflow_runner.{name}" for name in artifact_types.__all__}
    with pytest.warns(DeprecationWarning, match="compile it again"):
        parsed = entry.parse_raw_artifact_dict(received)
    for title, artifacts in parsed.items():
        assert type(artifacts[0]) is getattr(artifact_types, title.split(".")[1])
    import kubeflow_runner

    with pytest.raises(AttributeError, match="no attribute 'Nothing'"):
        kubeflow_runner.Nothing  # noqa: B018


# --------------------------------------------------------------------------- compile-time shims


def _custom_types(components) -> dict[type, tuple]:
    """Each custom type's name and properties, and which of them it defines itself."""
    return {t: (t.TYPE_NAME, t.PROPERTIES, sorted(vars(t)))
            for t in kubeflow.custom_artifact_types(components)}


def test_compiling_leaves_local_artifact_types_as_they_were(local_pipeline):
    before = _custom_types(local_pipeline.components)
    assert before, "the pipeline has custom artifact types"
    with pytest.raises(RuntimeError, match="boom"):
        with kubeflow.kfp_artifact_titles(local_pipeline.components):
            for artifact_type in before:
                assert artifact_type.TYPE_NAME == f"artifact_types.{artifact_type.__name__}"
            raise RuntimeError("boom")
    assert _custom_types(local_pipeline.components) == before


def test_a_custom_artifact_type_without_kubeflow_title_is_named():
    from tfx import v1 as tfx
    from tfx.types.artifact import Artifact

    class Orphan(Artifact):
        TYPE_NAME = "Orphan"

    node = types.SimpleNamespace(inputs={"x": tfx.dsl.Channel(type=Orphan)}, outputs={})
    with pytest.raises(kubeflow.DeployError, match="Orphan has no Kubeflow title: define it "
                                                   "in artifact_types/"):
        with kubeflow.kfp_artifact_titles([node]):
            pass
    assert Orphan.TYPE_NAME == "Orphan"
