"""`azureml_runner.py compile | submit`: the pipeline as an Azure ML pipeline job.

`compile` runs here, in the main virtual environment: TFX compiles the
pipeline (`orchestrators/ir.py`) for the folder every step sees at one stable
path, then the Azure ML extra's venv (`make azureml`) turns the node graph into
a pipeline job YAML with azure-ai-ml (`orchestrators/azureml_job.py`). The job
file, the compiled pipeline and its plan land in one folder; `submit` sends
that folder's job to a workspace.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import asdict

from metadata import store
from options import declared
from options.option import add_options, config_defaults
from orchestrators import ir as ir_file
from orchestrators.azureml_job import JobSettings
from pipeline.configs import PipelineConfig
from pipeline.kubeflow import DEFAULT_BEAM_ARGS, IMAGE_PROJECT_DIR

PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AZUREML_VENV = os.path.join(PROJECT_DIR, ".venv-azureml")
JOB_FILE = "job.yaml"
SETTINGS_FILE = "job_settings.json"
DEFAULT_MOUNT = "/mnt/chicago-taxi"
DEFAULT_DATASTORE_PATH = "azureml://datastores/workspaceblobstore/paths/chicago-taxi"


class AzureMLError(Exception):
    """A one-line reason the command cannot do its work."""


def build_parser() -> argparse.ArgumentParser:
    defaults = PipelineConfig()
    parser = argparse.ArgumentParser(
        description="The Chicago Taxi pipeline as an Azure Machine Learning pipeline job "
                    "(azure-ai-ml v2): one command step per TFX node.")
    commands = parser.add_subparsers(dest="command", required=True)
    comp = commands.add_parser("compile", help="write the job YAML and the compiled pipeline")
    comp.add_argument("--image", required=True,
                      help="the pipeline image (Dockerfile), e.g. ACR.azurecr.io/chicago-taxi:v1")
    comp.add_argument("--metadata-mysql", required=True, metavar="HOST:PORT/DB",
                      help="ML Metadata in MySQL, e.g. Azure Database for MySQL; user and "
                           f"password come from ${store.USER_ENV} / ${store.PASSWORD_ENV} "
                           "at submit time, never from the job file")
    comp.add_argument("--ssl-ca", metavar="PATH",
                      help="CA file inside the step's image for TLS to MySQL (Azure Database "
                           "for MySQL requires TLS), set as $" + store.SSL_CA_ENV)
    comp.add_argument("--no-ssl-verify", action="store_true",
                      help="encrypt the MySQL connection without verifying the server's "
                           "certificate (see docs/orchestrators.md: ML Metadata 1.16's client "
                           "may refuse a valid one)")
    comp.add_argument("--datastore-path", default=DEFAULT_DATASTORE_PATH,
                      help="the datastore folder every step mounts read-write: data/, "
                           "pipeline_root/, serving_model/ (default: %(default)s)")
    comp.add_argument("--mount-path", default=DEFAULT_MOUNT,
                      help="the one path every step sees that folder at (default: %(default)s)")
    comp.add_argument("--compute", default="cpu-cluster",
                      help="compute target of every step (default: %(default)s)")
    comp.add_argument("--node-compute", action="append", default=[], metavar="NODE=TARGET",
                      help="another compute target for one node, e.g. Trainer=gpu-cluster")
    comp.add_argument("--schema", default=os.path.join("schema", "schema.pbtxt"),
                      help="the curated schema, relative to the project folder, which the "
                           "image holds at --image-project-dir (default: %(default)s)")
    comp.add_argument("--image-project-dir", default=IMAGE_PROJECT_DIR,
                      help="where the image holds this project (default: %(default)s)")
    shared = (declared.TRAIN_STEPS, declared.EVAL_STEPS,
              declared.BEAM_ARG.but(help="a Beam flag for every Beam component, repeatable "
                                    "(default: " + " ".join(DEFAULT_BEAM_ARGS) + ")"),
              declared.EXPERIMENT.but(help="Azure ML experiment (default: %(default)s)"))
    add_options(comp, shared, {**config_defaults(shared, defaults),
                               declared.EXPERIMENT.name: "chicago-taxi"})
    comp.add_argument("--out", default=os.path.join("build", "azureml"),
                      help="folder for job.yaml, pipeline.pb and plan.json (default: %(default)s)")
    send = commands.add_parser("submit", help="submit a compiled job (DefaultAzureCredential)")
    send.add_argument("--out", default=os.path.join("build", "azureml"),
                      help="the folder `compile` wrote (default: %(default)s)")
    send.add_argument("--subscription", required=True)
    send.add_argument("--resource-group", required=True)
    send.add_argument("--workspace", required=True)
    return parser


def _node_compute(entries: list[str]) -> dict[str, str]:
    pairs = {}
    for entry in entries:
        node, _, target = entry.partition("=")
        if not node or not target:
            raise AzureMLError(f"--node-compute wants NODE=TARGET, got {entry!r}")
        pairs[node] = target
    return pairs


def pipeline_config(args: argparse.Namespace) -> PipelineConfig:
    """The pipeline every step runs: all folders under the one stable mount path."""
    store.parse_mysql(args.metadata_mysql)  # a malformed spec fails here, in one line
    mount = args.mount_path.rstrip("/")
    return PipelineConfig(
        data_root=f"{mount}/data",
        output_dir=mount,
        schema_path=os.path.join(args.image_project_dir, args.schema),
        schema_digest_path=os.path.join(PROJECT_DIR, args.schema),
        local_metadata=False,  # each step opens ML Metadata itself (node_runner)
        train_steps=args.train_steps,
        eval_steps=args.eval_steps,
        beam_pipeline_args=tuple(args.beam_arg or DEFAULT_BEAM_ARGS),
        metadata_mysql=args.metadata_mysql,
    )


def azureml_python() -> str:
    python = os.path.join(AZUREML_VENV, "bin", "python")
    if not os.path.exists(python):
        raise AzureMLError(f"the Azure ML extra is not installed ({python} missing): "
                           "run `make azureml`")
    return python


def _in_azureml_venv(*args: str, cwd: str) -> str:
    env = {**os.environ, "PYTHONPATH": PROJECT_DIR}
    result = subprocess.run([azureml_python(), "-m", "orchestrators.azureml_job", *args],
                            cwd=cwd, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        lines = (result.stderr.strip() or result.stdout.strip()).splitlines()
        raise AzureMLError(lines[-1] if lines else f"exit status {result.returncode}")
    return result.stdout.strip().splitlines()[-1]


def compile_job(args: argparse.Namespace) -> str:
    """Write job.yaml, pipeline.pb and plan.json into `args.out`; the job file's path."""
    config = pipeline_config(args)
    settings = JobSettings(
        image=args.image, datastore_path=args.datastore_path,
        metadata_mysql=args.metadata_mysql, compute=args.compute,
        node_compute=_node_compute(args.node_compute), ssl_ca=args.ssl_ca,
        ssl_verify=not args.no_ssl_verify,
        experiment_name=args.experiment,
    )
    unknown = set(settings.node_compute)
    out = os.path.abspath(args.out)
    _, plan_path = ir_file.write(ir_file.compile_ir(config), out)
    unknown -= set(ir_file.load_plan(plan_path).nodes)
    if unknown:
        raise AzureMLError(f"--node-compute names no node of the pipeline: {sorted(unknown)}")
    with open(os.path.join(out, SETTINGS_FILE), "w") as f:
        json.dump(asdict(settings), f, indent=2)
    _in_azureml_venv("compile", plan_path, SETTINGS_FILE, JOB_FILE, cwd=out)
    return os.path.join(out, JOB_FILE)


def submit_job(args: argparse.Namespace) -> str:
    out = os.path.abspath(args.out)
    job = os.path.join(out, JOB_FILE)
    if not os.path.exists(job):
        raise AzureMLError(f"no compiled job at {job}: run `azureml_runner.py compile` first")
    return _in_azureml_venv("submit", JOB_FILE, "--subscription", args.subscription,
                            "--resource-group", args.resource_group,
                            "--workspace", args.workspace, cwd=out)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "compile":
            print(f"Azure ML pipeline job: {compile_job(args)}")
        else:
            print(f"Submitted pipeline job {submit_job(args)}")
    except (AzureMLError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0
