"""Compile the pipeline for Kubeflow Pipelines v2 / Vertex AI Pipelines, optionally submit it.

    python kubeflow_runner.py --pipeline-root gs://BUCKET/root --image REGISTRY/IMAGE:TAG
    python kubeflow_runner.py ... --submit --host https://KFP_HOST   # Kubeflow Pipelines
    python kubeflow_runner.py ... --vertex --project P --region R     # Vertex AI Pipelines

The same `create_pipeline(...)` as the local run is compiled by TFX's
KubeflowV2DagRunner into a YAML PipelineSpec (build/chicago-taxi.yaml by
default). Every component runs in the pipeline image built by `Dockerfile`,
which must therefore contain the code the spec names by dotted path
(`models.*`, `pipeline.*`). Every option can also come from an environment
variable; `--help` lists both.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib
import os
import re
import shlex
import sys
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterable, Iterator
from typing import Any

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

# Custom artifact types of the pipeline, by class name. Kubeflow V2 records a
# custom type under a one-dot title "<module>.<Class>", and the executor
# container imports the class by that title. Ours live deeper (pipeline.gate,
# ...), so the spec names them through this module; `__getattr__` resolves them.
# Compiling a pipeline with a custom type missing here fails and says so.
KFP_ARTIFACT_TYPES = {
    "FeatureSelection": "pipeline.feature_selection.FeatureSelection",
    "ValidatedStatistics": "pipeline.gate.ValidatedStatistics",
}
_TITLE_MODULE = "kubeflow_runner"

_PIPELINE_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,127}")
_URI = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s]+")
# Object storage TensorFlow's file I/O (and so every TFX executor) can use as is.
SUPPORTED_STORAGE = ("gs://",)


class DeployError(Exception):
    """Compiling or submitting cannot go on; the message is one readable line."""


def __getattr__(name: str) -> type:
    """`kubeflow_runner.<Class>` for the custom artifact titles in the compiled spec."""
    if name not in KFP_ARTIFACT_TYPES:
        raise AttributeError(f"module {_TITLE_MODULE!r} has no attribute {name!r}")
    module, _, class_name = KFP_ARTIFACT_TYPES[name].rpartition(".")
    return getattr(importlib.import_module(module), class_name)


# --------------------------------------------------------------------------- options


def _env_help(text: str, env: str) -> str:
    return f"{text} [env {env}]"


def build_parser() -> argparse.ArgumentParser:
    """Every option, each with an environment variable as fallback."""
    defaults = PipelineConfig()
    env = os.environ.get
    parser = argparse.ArgumentParser(
        description="Compile the Chicago Taxi TFX pipeline to a Kubeflow Pipelines v2 spec "
        "(YAML) and optionally submit it to Kubeflow Pipelines or Vertex AI Pipelines.",
        epilog="Beam flags start with '--', so pass them as --beam-arg=--runner=DataflowRunner.",
    )
    where = parser.add_argument_group("where things live")
    where.add_argument("--pipeline-root", default=env("KFP_PIPELINE_ROOT"), help=_env_help(
        "object-storage folder for every artifact, e.g. gs://BUCKET/root (required)",
        "KFP_PIPELINE_ROOT"))
    where.add_argument("--image", default=env("KFP_IMAGE"), help=_env_help(
        "pipeline image every component runs in, e.g. REGISTRY/IMAGE:TAG, built from "
        "Dockerfile (required)", "KFP_IMAGE"))
    where.add_argument("--data-root", default=env("KFP_DATA_ROOT"), help=_env_help(
        "object-storage folder of the CSV files (default: PIPELINE_ROOT/data)", "KFP_DATA_ROOT"))
    where.add_argument("--serving-base", default=env("KFP_SERVING_BASE"), help=_env_help(
        "TF Serving base path the blessed model is pushed to, one subfolder per version "
        "(default: PIPELINE_ROOT/serving_model/chicago_taxi)", "KFP_SERVING_BASE"))
    where.add_argument("--schema", default=env("KFP_SCHEMA", DEFAULT_SCHEMA), help=_env_help(
        "curated schema: a path inside the image or an object-storage URI "
        "(default: %(default)s)", "KFP_SCHEMA"))
    where.add_argument("--output-dir", default=env("KFP_OUTPUT_DIR", DEFAULT_OUTPUT_DIR),
                       help=_env_help("local folder the spec is written to; the file is "
                                      "PIPELINE_NAME.yaml (default: %(default)s)",
                                      "KFP_OUTPUT_DIR"))

    run = parser.add_argument_group("what runs")
    run.add_argument("--pipeline-name", default=env("KFP_PIPELINE_NAME", DEFAULT_PIPELINE_NAME),
                     help=_env_help("pipeline name (default: %(default)s)", "KFP_PIPELINE_NAME"))
    run.add_argument("--train-steps", type=int,
                     default=env("KFP_TRAIN_STEPS", str(defaults.train_steps)),
                     help=_env_help("default of the train_args pipeline parameter, which each "
                                    "run may override (default: %(default)s)", "KFP_TRAIN_STEPS"))
    run.add_argument("--eval-steps", type=int,
                     default=env("KFP_EVAL_STEPS", str(defaults.eval_steps)),
                     help=_env_help("default of the eval_args pipeline parameter "
                                    "(default: %(default)s)", "KFP_EVAL_STEPS"))
    run.add_argument("--beam-arg", action="append", metavar="FLAG",
                     default=shlex.split(env("KFP_BEAM_ARGS", "")) or None,
                     help=_env_help("a Beam pipeline flag for the Beam-powered components "
                                    "(ExampleGen, StatisticsGen, Transform, Evaluator), "
                                    "repeatable (default: " + " ".join(DEFAULT_BEAM_ARGS)
                                    + "); --sdk_container_image=IMAGE is added unless a "
                                    "flag says how workers get their code",
                                    "KFP_BEAM_ARGS, space-separated"))
    run.add_argument("--allow-anomaly", action="append", metavar="FEATURE[:TYPE]",
                     default=shlex.split(env("KFP_ALLOW_ANOMALIES", "")),
                     help=_env_help("let the validation gate pass this anomaly (a feature, or "
                                    "feature:ANOMALY_TYPE as the gate prints it); repeatable; "
                                    "compiled into the spec",
                                    "KFP_ALLOW_ANOMALIES, space-separated"))
    run.add_argument("--no-cache", action="store_true",
                     default=env("KFP_NO_CACHE", "") not in ("", "0", "false"),
                     help=_env_help("re-run every component even if its inputs are unchanged",
                                    "KFP_NO_CACHE=1"))

    target = parser.add_argument_group("submission (default: compile only)")
    mode = target.add_mutually_exclusive_group()
    mode.add_argument("--submit", action="store_true",
                      help="submit a run to the Kubeflow Pipelines endpoint --host")
    mode.add_argument("--vertex", action="store_true",
                      help="submit a run to Vertex AI Pipelines in --project / --region")
    target.add_argument("--host", default=env("KFP_HOST"), help=_env_help(
        "Kubeflow Pipelines endpoint, e.g. http://localhost:8080 after "
        "`kubectl port-forward`", "KFP_HOST"))
    target.add_argument("--token", default=env("KFP_TOKEN"), help=_env_help(
        "bearer token for a Kubeflow Pipelines endpoint behind authentication "
        "(prefer the variable: a flag shows in the process list)", "KFP_TOKEN"))
    target.add_argument("--namespace", default=env("KFP_NAMESPACE"), help=_env_help(
        "Kubeflow profile namespace on a multi-user deployment", "KFP_NAMESPACE"))
    target.add_argument("--experiment", default=env("KFP_EXPERIMENT", DEFAULT_PIPELINE_NAME),
                        help=_env_help("Kubeflow Pipelines experiment (default: %(default)s)",
                                       "KFP_EXPERIMENT"))
    target.add_argument("--project", default=env("GOOGLE_CLOUD_PROJECT"), help=_env_help(
        "Google Cloud project for Vertex AI", "GOOGLE_CLOUD_PROJECT"))
    target.add_argument("--region", default=env("GOOGLE_CLOUD_REGION"),
                        help=_env_help("Vertex AI region, e.g. us-central1", "GOOGLE_CLOUD_REGION"))
    target.add_argument("--service-account", default=env("VERTEX_SERVICE_ACCOUNT"),
                        help=_env_help("service account the Vertex AI run acts as "
                                       "(default: the project's Compute Engine default)",
                                       "VERTEX_SERVICE_ACCOUNT"))
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


def _custom_artifact_types(nodes: Iterable[Any]) -> set[type]:
    """Artifact classes of the pipeline's channels that TFX itself does not define."""
    return {
        channel.type
        for node in nodes
        for channel in (*node.inputs.values(), *node.outputs.values())
        if not channel.type.__module__.startswith("tfx.")
    }


@contextlib.contextmanager
def kfp_artifact_titles(nodes: Iterable[Any]) -> Iterator[None]:
    """Make custom artifact types compile for Kubeflow V2, for the compilation only.

    Two limits of TFX's V2 compiler for types it does not define: the title
    must be an importable "<module>.<Class>" (we use `kubeflow_runner.<Class>`),
    and the generic schema it writes declares no properties, so a type that
    declares some (e.g. a subclass of ExampleStatistics: span, split_names) is
    rejected. Such properties still travel in each artifact's metadata, which
    the container maps back onto the class's properties. Local runs never
    see these changes: their ML Metadata types and cache stay as they are.
    """
    from tfx.orchestration.kubeflow.v2 import compiler_utils

    saved: dict[type, dict[str, Any]] = {}
    tfx_title = compiler_utils.get_artifact_title

    def title(artifact_type: type) -> str:
        return artifact_type.TYPE_NAME if artifact_type in saved else tfx_title(artifact_type)

    try:
        compiler_utils.get_artifact_title = title
        for artifact_type in _custom_artifact_types(nodes):
            path = f"{artifact_type.__module__}.{artifact_type.__qualname__}"
            if KFP_ARTIFACT_TYPES.get(artifact_type.__name__) != path:
                raise DeployError(
                    f"artifact type {path} has no Kubeflow title: add "
                    f"'{artifact_type.__name__}': '{path}' to KFP_ARTIFACT_TYPES in "
                    "kubeflow_runner.py"
                )
            saved[artifact_type] = {k: vars(artifact_type)[k] for k in ("TYPE_NAME", "PROPERTIES")
                                    if k in vars(artifact_type)}
            artifact_type.TYPE_NAME = f"{_TITLE_MODULE}.{artifact_type.__name__}"
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


# --------------------------------------------------------------------------- submit


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _kfp_host(host: str) -> str:
    """The endpoint as kfp.Client reads it: https:// unless a scheme is given."""
    host = host.rstrip("/")
    return host if host.startswith(("http://", "https://")) else f"https://{host}"


def check_kfp_endpoint(host: str, token: str | None, timeout: float = 10.0) -> None:
    """Fail fast, in one line, when the endpoint is unreachable or wants credentials.

    kfp.Client retries its health check for ~25 s and then reports a bare
    timeout; this asks the same endpoint once. Like kfp.Client, it ignores
    proxy variables.
    """
    url = f"{_kfp_host(host)}/apis/v2beta1/healthz"
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(urllib.request.Request(url, headers=headers), timeout=timeout) as r:
            content_type = r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as error:
        if error.code in (401, 403):
            raise DeployError(
                f"Kubeflow Pipelines at {host} refused the request (HTTP {error.code}): "
                "missing or invalid credentials; set KFP_TOKEN (or --token)"
            ) from None
        raise DeployError(f"{url} answered HTTP {error.code}: is {host} a Kubeflow Pipelines "
                          "v2 endpoint?") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise DeployError(f"cannot reach Kubeflow Pipelines at {host}: {reason}") from None
    if "json" not in content_type:
        raise DeployError(f"Kubeflow Pipelines at {host} answered with a login page, not the "
                          "API: credentials needed; set KFP_TOKEN (or --token)")


def check_google_credentials() -> None:
    """Fail fast, in one line, when there are no Application Default Credentials."""
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    try:
        google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
    except DefaultCredentialsError as error:
        found = "default credentials were not found" not in _first_line(error).lower()
        problem = f"unusable ({_first_line(error)})" if found else "not found"
        raise DeployError(
            f"Google Cloud credentials {problem}: run `gcloud auth application-default "
            "login` or set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file"
        ) from None


def submit_to_kfp(package_path: str, config: PipelineConfig, args: argparse.Namespace) -> str:
    """Start a run on Kubeflow Pipelines; return the run's page."""
    import kfp
    import kfp_server_api
    import urllib3

    host = _kfp_host(args.host)
    warnings.filterwarnings("ignore", category=FutureWarning, module="kfp")
    try:
        client = kfp.Client(host=host, existing_token=args.token or None,
                            namespace=args.namespace or "kubeflow")
        result = client.create_run_from_pipeline_package(
            package_path,
            arguments={},
            run_name=f"{config.pipeline_name} {datetime.datetime.now():%Y-%m-%d %H-%M-%S}",
            experiment_name=args.experiment,
            namespace=args.namespace or None,
            pipeline_root=config.pipeline_root,
            enable_caching=False if args.no_cache else None,
        )
    except kfp_server_api.ApiException as error:
        if error.status in (401, 403):
            raise DeployError(f"Kubeflow Pipelines at {args.host} refused the run (HTTP "
                              f"{error.status}): set KFP_TOKEN (or --token)") from None
        raise DeployError(f"Kubeflow Pipelines at {args.host} rejected the run (HTTP "
                          f"{error.status} {error.reason}): {_first_line(error)}") from None
    except urllib3.exceptions.HTTPError as error:
        raise DeployError(f"cannot reach Kubeflow Pipelines at {args.host}: "
                          f"{_first_line(error)}") from None
    return f"{host}/#/runs/details/{result.run_id}"


def submit_to_vertex(package_path: str, config: PipelineConfig, args: argparse.Namespace) -> str:
    """Start a run on Vertex AI Pipelines; return the run's console page."""
    from google.api_core import exceptions as api_exceptions
    from google.auth import exceptions as auth_exceptions
    from google.cloud import aiplatform

    try:
        job = aiplatform.PipelineJob(
            display_name=config.pipeline_name,
            template_path=package_path,
            pipeline_root=config.pipeline_root,
            enable_caching=False if args.no_cache else None,
            project=args.project,
            location=args.region,
        )
        job.submit(service_account=args.service_account or None)
    except auth_exceptions.GoogleAuthError as error:
        raise DeployError(f"Google Cloud credentials did not work ({_first_line(error)}); run "
                          "`gcloud auth application-default login`") from None
    except api_exceptions.GoogleAPIError as error:
        raise DeployError(f"Vertex AI in {args.project}/{args.region} did not accept the run: "
                          f"{_first_line(error)}") from None
    return (f"https://console.cloud.google.com/vertex-ai/locations/{args.region}/pipelines/"
            f"runs/{job.name}?project={args.project}")


# --------------------------------------------------------------------------- main


def deploy(args: argparse.Namespace) -> None:
    """Validate, check the target, compile, then submit: cheap failures come first."""
    validate(args)
    if args.submit:
        check_kfp_endpoint(args.host, args.token)
    if args.vertex:
        check_google_credentials()
    config = config_from_args(args)
    package = os.path.join(args.output_dir, f"{config.pipeline_name}.yaml")
    compile_pipeline(config, args.image, package)
    print(f"Compiled {package} (image {args.image}, pipeline root {config.pipeline_root})")
    if args.submit:
        print(f"Submitted to Kubeflow Pipelines: {submit_to_kfp(package, config, args)}")
    if args.vertex:
        print(f"Submitted to Vertex AI Pipelines: {submit_to_vertex(package, config, args)}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        deploy(args)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except DeployError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except Exception as error:  # noqa: BLE001 - the CLI turns any failure into one line
        print(f"error: {type(error).__name__}: {_first_line(error)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
