"""Compile the pipeline for Kubeflow Pipelines v2 / Vertex AI Pipelines.

What `kubeflow_runner.py` (the command line) does, as functions: read the
options (each also from an environment variable), check the settings a
cluster would only reject later, turn them into a `PipelineConfig`
(object storage everywhere, the cluster's ML Metadata), and compile
`create_pipeline(config)` with TFX's KubeflowV2DagRunner into a YAML
PipelineSpec whose every component runs in the pipeline image built by
`Dockerfile`. Submitting the spec is in `pipeline/kubeflow_submit.py`.

TFX and the pipeline's components are imported inside the functions:
`kubeflow_runner.py --help` answers without loading them.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
from collections.abc import Iterable, Iterator
from typing import Any

from options import declared
from options.option import add_options, config_defaults
from pipeline.components import tfx_internals
from pipeline.configs import PipelineConfig

# Where the Dockerfile puts the project inside the image (WORKDIR, on PYTHONPATH).
IMAGE_PROJECT_DIR = "/pipeline"
DEFAULT_SCHEMA = f"{IMAGE_PROJECT_DIR}/schema/schema.pbtxt"
# Kubeflow V2 names must match [a-z0-9][a-z0-9-]{0,127}: no underscore.
DEFAULT_PIPELINE_NAME = "chicago-taxi"
# Beam inside each component's pod, in one process: fastest for the shipped
# data, and safe on a shared node (--direct_num_workers=0 would start one worker
# per core of the node, not of the pod). Bigger data: --beam-arg flags for
# Dataflow, Flink or Spark (docs/kubeflow.md).
DEFAULT_BEAM_ARGS = ("--direct_running_mode=in_memory", "--direct_num_workers=1")
# Beam flags that tell Beam (and TFX) how workers get their Python code.
_DEPENDENCY_FLAGS = ("--sdk_container_image", "--worker_harness_container_image",
                     "--extra_package", "--extra_packages", "--setup_file", "--requirements_file")
DEFAULT_OUTPUT_DIR = "build"

# Kubeflow V2 records a custom artifact type under a one-dot title "<module>.<Class>",
# and the executor container imports the class by that title: every custom type of
# the pipeline is defined in this one top-level module, which compiled specs name.
# Specs compiled before it existed name `kubeflow_runner.<Class>` (still resolved there).
TITLE_MODULE = "artifact_types"

_PIPELINE_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,127}")
_URI = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s]+")
# Object storage TensorFlow's file I/O (and so every TFX executor) can use as is.
SUPPORTED_STORAGE = ("gs://",)


class DeployError(Exception):
    """Compiling or submitting cannot go on; the message is one readable line."""


# --------------------------------------------------------------------------- settings


# Kubeflow's options (options/declared.py), by group, as `--help` shows them; where an
# option means something else for a compiled spec than for a local run, the text says so.
OPTION_GROUPS = {
    "where things live": (
        declared.PIPELINE_ROOT, declared.IMAGE,
        declared.DATA_ROOT.but(help="object-storage folder of the CSV files "
                               "(default: PIPELINE_ROOT/data)"),
        declared.SERVING_BASE,
        declared.SCHEMA.but(help="curated schema: a path inside the image or an "
                            "object-storage URI (default: %(default)s)"),
        declared.OUTPUT_DIR.but(help="local folder the spec is written to; the file is "
                                "PIPELINE_NAME.yaml (default: %(default)s)"),
    ),
    "what runs": (
        declared.PIPELINE_NAME,
        declared.TRAIN_STEPS.but(help="default of the train_args pipeline parameter, which "
                                 "each run may override (default: %(default)s)"),
        declared.EVAL_STEPS.but(help="default of the eval_args pipeline parameter "
                                "(default: %(default)s)"),
        declared.BEAM_ARG.but(help="a Beam pipeline flag for the Beam-powered components "
                              "(ExampleGen, StatisticsGen, Transform, Evaluator), repeatable "
                              "(default: " + " ".join(DEFAULT_BEAM_ARGS) + "); "
                              "--sdk_container_image=IMAGE is added unless a flag says how "
                              "workers get their code"),
        declared.ALLOW_ANOMALY.but(help=declared.ALLOW_ANOMALY.help + "; compiled into the "
                                   "spec"),
        declared.NO_CACHE,
    ),
    "submission (default: compile only)": (
        declared.HOST, declared.TOKEN, declared.NAMESPACE, declared.EXPERIMENT,
        declared.PROJECT, declared.REGION, declared.SERVICE_ACCOUNT,
    ),
}


def build_parser() -> argparse.ArgumentParser:
    """Every option, each with an environment variable as fallback."""
    parser = argparse.ArgumentParser(
        description="Compile the Chicago Taxi TFX pipeline to a Kubeflow Pipelines v2 spec "
        "(YAML) and optionally submit it to Kubeflow Pipelines or Vertex AI Pipelines.",
        epilog="Beam flags start with '--', so pass them as --beam-arg=--runner=DataflowRunner.",
    )
    defaults = {
        **config_defaults((declared.TRAIN_STEPS, declared.EVAL_STEPS), PipelineConfig()),
        declared.SCHEMA.name: DEFAULT_SCHEMA, declared.OUTPUT_DIR.name: DEFAULT_OUTPUT_DIR,
        declared.PIPELINE_NAME.name: DEFAULT_PIPELINE_NAME,
        declared.EXPERIMENT.name: DEFAULT_PIPELINE_NAME,
    }
    for title, options in OPTION_GROUPS.items():
        group = parser.add_argument_group(title)
        if options[0] is declared.HOST:  # compile only, or one of two targets
            mode = group.add_mutually_exclusive_group()
            mode.add_argument("--submit", action="store_true",
                              help="submit a run to the Kubeflow Pipelines endpoint --host")
            mode.add_argument("--vertex", action="store_true",
                              help="submit a run to Vertex AI Pipelines in --project / --region")
        add_options(group, options, defaults, declared.KUBEFLOW_PREFIX)
    return parser


def _is_uri(path: str) -> bool:
    return bool(_URI.match(path))


def validate(args: argparse.Namespace) -> None:
    """Reject settings that would only fail on the cluster, with the reason."""
    if not args.pipeline_root:
        raise DeployError("--pipeline-root (or KFP_PIPELINE_ROOT) is required, "
                          "e.g. gs://BUCKET/root")
    if not args.image or any(c.isspace() for c in args.image):
        raise DeployError("--image (or KFP_IMAGE) is required, e.g. REGISTRY/IMAGE:TAG")
    places = {"--pipeline-root": args.pipeline_root, "--data-root": args.data_root,
              "--serving-base": args.serving_base}
    for flag, value in places.items():
        if value:
            check_storage_uri(flag, value)
    if not (_is_uri(args.schema) or args.schema.startswith(IMAGE_PROJECT_DIR + "/")):
        raise DeployError(f"--schema must be inside the image ({IMAGE_PROJECT_DIR}/...) or "
                          f"object storage, not the local path {args.schema!r}")
    if not _PIPELINE_NAME.fullmatch(args.pipeline_name):
        raise DeployError(f"--pipeline-name {args.pipeline_name!r} must match "
                          "[a-z0-9][a-z0-9-]{0,127} (Kubeflow's rule: no '_')")
    if args.submit and not args.host:
        raise DeployError("--submit needs --host (or KFP_HOST), e.g. http://localhost:8080")
    if args.vertex and not (args.project and args.region):
        raise DeployError("--vertex needs --project and --region "
                          "(or GOOGLE_CLOUD_PROJECT and GOOGLE_CLOUD_REGION)")


def check_storage_uri(flag: str, value: str) -> None:
    """Refuse a place TensorFlow's file I/O cannot write from every pod.

    Every TFX executor reads and writes artifacts by URI with TensorFlow's file
    system layer, which has gs:// built in. Open-source Kubeflow's default
    root, minio://..., is a scheme of KFP's own launcher, not a file system
    TensorFlow knows; s3:// needs tensorflow-io, which the image does not
    carry; a local path exists only inside one pod.
    """
    if value.startswith(SUPPORTED_STORAGE):
        return
    scheme = value.split("://")[0] + "://" if _is_uri(value) else None
    what = f"{scheme} URIs" if scheme else f"the local path {value!r}"
    raise DeployError(f"{flag} must be Google Cloud Storage (gs://BUCKET/path), the storage "
                      f"TensorFlow's file I/O reads and writes from every pod; {what} cannot be "
                      "used (see docs/kubeflow.md)")


def beam_args(flags: Iterable[str], image: str) -> tuple[str, ...]:
    """`flags`, plus `--sdk_container_image=IMAGE` unless they say how workers get code.

    The code Beam workers run (Transform's preprocessing_fn in `models`) is in
    the pipeline image, so remote workers (Dataflow, ...) must run that image.
    It also stops TFX from building and staging an sdist of itself before each
    Beam component, which the direct runner ignores anyway.
    """
    flags = tuple(flags)
    if any(f.split("=")[0] in _DEPENDENCY_FLAGS for f in flags):
        return flags
    return (*flags, f"--sdk_container_image={image}")


def config_from_args(args: argparse.Namespace) -> PipelineConfig:
    """The cluster's PipelineConfig: object storage everywhere, the cluster's ML Metadata."""
    root = args.pipeline_root.rstrip("/")
    return PipelineConfig(
        data_root=args.data_root or f"{root}/data",
        # Anything derived from output_dir lands in object storage too.
        output_dir=root,
        schema_path=args.schema,
        pipeline_name=args.pipeline_name,
        train_steps=args.train_steps,
        eval_steps=args.eval_steps,
        beam_pipeline_args=beam_args(args.beam_arg or DEFAULT_BEAM_ARGS, args.image),
        enable_cache=not args.no_cache,
        allowed_anomalies=tuple(args.allow_anomaly),
        local_metadata=False,
        pipeline_root_path=root,
        serving_base_path=args.serving_base or None,
        runtime_parameters=True,
    )



# --------------------------------------------------------------------------- compile


def custom_artifact_types(nodes: Iterable[Any]) -> set[type]:
    """Artifact classes of the pipeline's channels that TFX itself does not define."""
    return {
        channel.type
        for node in nodes
        for channel in (*node.inputs.values(), *node.outputs.values())
        if not channel.type.__module__.startswith("tfx.")
    }


@contextlib.contextmanager
def kfp_artifact_titles(nodes: Iterable[Any]) -> Iterator[None]:
    """Compile the custom artifact types of `nodes` under `artifact_types.<Class>` titles.

    Fails, before changing anything, on a custom type defined elsewhere: the
    title would name a module a later change may move. The change itself, and why
    it is needed, is `tfx_internals.kfp_artifact_titles`.
    """
    titles = {}
    for artifact_type in custom_artifact_types(nodes):
        path = f"{artifact_type.__module__}.{artifact_type.__qualname__}"
        if path != f"{TITLE_MODULE}.{artifact_type.__name__}":
            raise DeployError(
                f"artifact type {path} has no Kubeflow title: define it in {TITLE_MODULE}/ "
                "(the one module compiled specs name) and import it from there"
            )
        titles[artifact_type] = path
    with tfx_internals.kfp_artifact_titles(titles):
        yield


def runtime_parameters(nodes: Iterable[Any]) -> dict[str, Any]:
    """Every RuntimeParameter the components take, by name."""
    from tfx.orchestration import data_types

    return {
        value.name: value
        for node in nodes
        for value in node.exec_properties.values()
        if isinstance(value, data_types.RuntimeParameter)
    }


def add_parameter_defaults(spec: dict, parameters: dict[str, Any]) -> None:
    """Write each pipeline parameter's default into the spec.

    TFX keeps defaults only in a PipelineJob's runtime config, which a YAML
    PipelineSpec does not carry; without them every run would have to set
    every parameter.
    """
    inputs = spec["root"]["inputDefinitions"]["parameters"]
    for name, parameter in parameters.items():
        inputs[name]["defaultValue"] = parameter.default
        inputs[name]["isOptional"] = True
        if parameter.description:
            inputs[name]["description"] = parameter.description


def compile_pipeline(config: PipelineConfig, image: str, package_path: str) -> dict:
    """Write `config`'s pipeline as a YAML PipelineSpec to `package_path`; return the spec."""
    import yaml
    from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner as kubeflow_v2

    from pipeline.pipeline import create_pipeline

    tfx_pipeline = create_pipeline(config)
    runner = kubeflow_v2.KubeflowV2DagRunner(
        kubeflow_v2.KubeflowV2DagRunnerConfig(default_image=image, use_pipeline_spec_2_1=True)
    )
    with kfp_artifact_titles(tfx_pipeline.components):
        job = runner.run(tfx_pipeline, write_out=False)
    spec = job["pipelineSpec"]
    spec["defaultPipelineRoot"] = config.pipeline_root
    add_parameter_defaults(spec, runtime_parameters(tfx_pipeline.components))
    os.makedirs(os.path.dirname(package_path) or ".", exist_ok=True)
    with open(package_path, "w") as f:
        f.write(f"# PIPELINE DEFINITION\n# Name: {config.pipeline_name}\n"
                "# Compiled by kubeflow_runner.py (TFX KubeflowV2DagRunner)\n")
        yaml.safe_dump(spec, f, sort_keys=True)
    return spec

