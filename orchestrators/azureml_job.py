"""The pipeline as an Azure Machine Learning pipeline job (azure-ai-ml v2), one step per TFX node.

Runs in the Azure ML extra's own virtual environment (`make azureml`:
azure-ai-ml's OpenTelemetry pins do not fit TFX's), so it imports only
azure-ai-ml, the standard library and `orchestrators.ir.Plan` (plain JSON).
`azureml_runner.py` compiles the pipeline with TFX first, then runs
`python -m orchestrators.azureml_job compile|submit ...` in that venv.

Each step is a `command` job on the project's image running
`python -m orchestrators.node_runner` for its node:

* **one run id for every step**: `--run-id-env AZUREML_ROOT_RUN_ID`, the
  pipeline job's id, which Azure ML sets in every step of it (ZenML's Azure ML
  orchestrator reads the same variable). It is read at run time, so each
  submission or scheduled run gets its own id;
* **one stable artifact path**: every step mounts the same datastore folder
  read-write (`rw_mount`), wherever Azure ML puts the mount, and the node
  runner links the output folder the pipeline was compiled for (default
  `/mnt/chicago-taxi`) to it (`--artifacts-mount`), so the artifact URIs ML
  Metadata records are the same in every step. (An output's `path_on_compute`
  would fix the mount point itself, but azure-ai-ml's YAML schema for outputs
  drops it, so a job file could not carry it);
* **order from the pipeline's edges**: each step writes a small outcome folder,
  and each downstream step takes its upstreams' outcome folders as inputs;
* **reuse off** (`force_rerun`, every step non-deterministic): ML Metadata's
  cache decides what is reused, as in every other runner;
* **no secret in the job**: ML Metadata's MySQL user and password are not in
  the YAML or the IR. `submit` passes them from the submitter's environment
  as the steps' environment variables (Azure ML keeps those in the job's
  definition: use a MySQL user that may only use the metadata database).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass, field

from orchestrators.ir import IR_FILE, Plan, load_plan

RUN_ID_ENV = "AZUREML_ROOT_RUN_ID"
SECRET_ENVS = ("MLMD_MYSQL_USER", "MLMD_MYSQL_PASSWORD")
CA_ENV = "MLMD_MYSQL_SSL_CA"
VERIFY_ENV = "MLMD_MYSQL_SSL_VERIFY"
OUTCOME = "outcome"
ARTIFACTS = "artifacts"
PIPELINE_IR = "pipeline_ir"


@dataclass
class JobSettings:
    """Everything the job needs besides the pipeline's DAG."""

    image: str
    datastore_path: str  # azureml://datastores/<name>/paths/<folder>
    metadata_mysql: str  # HOST:PORT/DB (Azure Database for MySQL)
    compute: str = "cpu-cluster"
    node_compute: dict[str, str] = field(default_factory=dict)  # node id -> compute target
    ssl_ca: str | None = None  # CA file path inside the step, for TLS to MySQL
    ssl_verify: bool = True  # False: encrypt without verifying the server (metadata/store.py)
    experiment_name: str = "chicago-taxi"
    ir_file: str = f"./{IR_FILE}"  # next to the job YAML; uploaded on submit


def step_name(node: str) -> str:
    """Azure ML step names: lowercase letters, digits and underscores."""
    return "".join(c if c.isalnum() else "_" for c in node).lower()


def step_command(node: str, upstream: list[str], settings: JobSettings) -> str:
    """The shell command of `node`'s step; `${{...}}` are bound by Azure ML at run time."""
    parts = [
        "python -m orchestrators.node_runner",
        f"--ir ${{{{inputs.{PIPELINE_IR}}}}}",
        f"--node {node}",
        f"--run-id-env {RUN_ID_ENV}",
        f"--metadata-mysql {settings.metadata_mysql}",
        f"--artifacts-mount ${{{{outputs.{ARTIFACTS}}}}}",
        f"--outcome-dir ${{{{outputs.{OUTCOME}}}}}",
    ]
    parts += [f"--after ${{{{inputs.after_{step_name(u)}}}}}" for u in upstream]
    return " ".join(parts)


def build_job(plan: Plan, settings: JobSettings, secrets: dict[str, str] | None = None):
    """The `PipelineJob`: one command step per node, wired by the pipeline's edges."""
    from azure.ai.ml import Input, Output, command, dsl
    from azure.ai.ml.entities import Environment

    environment = Environment(image=settings.image)
    variables = {CA_ENV: settings.ssl_ca} if settings.ssl_ca else {}
    if settings.ssl_ca and not settings.ssl_verify:
        variables[VERIFY_ENV] = "0"
    variables.update(secrets or {})

    def step(node: str, upstream: list[str]):
        inputs = {PIPELINE_IR: Input(type="uri_file")}
        inputs.update({f"after_{step_name(u)}": Input(type="uri_folder") for u in upstream})
        return command(
            name=step_name(node),
            display_name=node,
            command=step_command(node, upstream, settings),
            environment=environment,
            environment_variables=dict(variables),
            compute=settings.node_compute.get(node, settings.compute),
            inputs=inputs,
            outputs={
                ARTIFACTS: Output(type="uri_folder", mode="rw_mount",
                                  path=settings.datastore_path),
                OUTCOME: Output(type="uri_folder"),
            },
            is_deterministic=False,
        )

    @dsl.pipeline(name=plan.pipeline_name, display_name=plan.pipeline_name,
                  description="Chicago Taxi TFX pipeline, one step per TFX node")
    def taxi_pipeline(pipeline_ir):
        done = {}
        for node, upstream in plan.nodes.items():
            bound = {f"after_{step_name(u)}": done[u].outputs[OUTCOME] for u in upstream}
            done[node] = step(node, upstream)(pipeline_ir=pipeline_ir, **bound)
        return {}

    job = taxi_pipeline(pipeline_ir=Input(type="uri_file", path=settings.ir_file))
    job.experiment_name = settings.experiment_name
    job.settings.force_rerun = True  # ML Metadata decides what is cached
    job.settings.default_compute = settings.compute
    return job


def write_job(plan: Plan, settings: JobSettings, path: str) -> None:
    """The job as YAML at `path` (written whole or not at all), without any secret."""
    import yaml
    from azure.ai.ml import load_job

    build_job(plan, settings).dump(path + ".tmp")
    # azure-ai-ml (1.35) dumps a local input path as "azureml:./pipeline.pb", which
    # would name a registered data asset; written back as the local path, which the
    # SDK uploads on submit.
    with open(path + ".tmp") as f:
        spec = yaml.safe_load(f)
    spec["inputs"][PIPELINE_IR]["path"] = settings.ir_file
    with open(path + ".tmp", "w") as f:
        yaml.safe_dump(spec, f, sort_keys=False)
    loaded = load_job(path + ".tmp")  # the SDK's own loader and validation
    if loaded.inputs[PIPELINE_IR].path != settings.ir_file:
        raise ValueError(f"the job's {PIPELINE_IR} input does not load as a local file")
    os.replace(path + ".tmp", path)


def submit(job_path: str, subscription: str, resource_group: str, workspace: str) -> str:
    """Send the compiled job to a workspace; the pipeline job's name."""
    from azure.ai.ml import MLClient, load_job
    from azure.identity import DefaultAzureCredential

    job = load_job(job_path)
    secrets = {name: os.environ[name] for name in SECRET_ENVS if os.environ.get(name)}
    for step in job.jobs.values():
        step.environment_variables = {**(step.environment_variables or {}), **secrets}
    client = MLClient(DefaultAzureCredential(), subscription, resource_group, workspace)
    return client.jobs.create_or_update(job).name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Azure ML job of the compiled pipeline")
    commands = parser.add_subparsers(dest="command", required=True)
    write = commands.add_parser("compile")
    write.add_argument("plan", help="plan.json next to the compiled pipeline")
    write.add_argument("settings", help="JobSettings as JSON")
    write.add_argument("out", help="the job YAML to write")
    send = commands.add_parser("submit")
    send.add_argument("job")
    send.add_argument("--subscription", required=True)
    send.add_argument("--resource-group", required=True)
    send.add_argument("--workspace", required=True)
    args = parser.parse_args(argv)
    if args.command == "compile":
        with open(args.settings) as f:
            settings = JobSettings(**json.load(f))
        write_job(load_plan(args.plan), settings, args.out)
        print(args.out)
        return 0
    print(submit(args.job, args.subscription, args.resource_group, args.workspace))
    return 0


if __name__ == "__main__":
    sys.exit(main())
