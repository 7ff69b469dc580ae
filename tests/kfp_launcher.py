"""Run a compiled PipelineSpec task by task, the way open-source KFP v2 does.

Checked against kubeflow/pipelines' backend/src/v2 (driver/driver.go,
component/launcher_v2.go, metadata/converter.go):

* the driver builds an ExecutorInput per task: parameter values (constants, or
  pipeline parameters with their defaults), input artifacts as the producing
  task recorded them (name = the ML Metadata id as a decimal string, uri,
  metadata = the properties the producer's executor output carried), and one
  output artifact per output definition, with a fresh uri under the pipeline
  root;
* the launcher replaces `{{$}}` in the container's command and args with that
  ExecutorInput as JSON, runs the command, and reads the ExecutorOutput the
  executor wrote at `outputs.output_file`;
* a task whose upstream failed never starts;
* container `lifecycle` hooks (TFX's ExampleGen driver) are NOT run.

Each command runs unchanged as a subprocess, with the environment the
Dockerfile gives the image: PYTHONPATH and the working directory are the
project folder, and `python` is this virtual environment's interpreter.
kfp.local (in the pinned kfp 2.5.0) supplies the placeholder substitution
and output-artifact helpers; its executor-input builder refuses input
artifacts, so those are filled in here.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from google.protobuf import json_format, struct_pb2
from kfp.local import executor_input_utils, executor_output_utils, placeholder_utils
from kfp.pipeline_spec import pipeline_spec_pb2

_ids = itertools.count(1)


@dataclass
class TaskRun:
    """What happened to one task."""

    name: str
    state: str  # "succeeded", "failed" or "not run"
    returncode: int | None = None
    log: str = ""
    outputs: dict[str, pipeline_spec_pb2.RuntimeArtifact] = field(default_factory=dict)


@dataclass
class SpecRun:
    """One execution of the whole spec."""

    run_id: str
    tasks: dict[str, TaskRun]

    @property
    def succeeded(self) -> bool:
        return all(t.state == "succeeded" for t in self.tasks.values())


def task_order(spec: pipeline_spec_pb2.PipelineSpec) -> list[str]:
    """Tasks of the root DAG, each after every task it depends on."""
    tasks = spec.root.dag.tasks
    done: list[str] = []
    while len(done) < len(tasks):
        ready = sorted(n for n, t in tasks.items()
                       if n not in done and set(t.dependent_tasks) <= set(done))
        assert ready, f"the DAG has a cycle among {set(tasks) - set(done)}"
        done += ready
    return done


def _parameter_values(spec, task, arguments: dict) -> dict[str, struct_pb2.Value]:
    values = {}
    pipeline_inputs = spec.root.input_definitions.parameters
    for name, source in task.inputs.parameters.items():
        kind = source.WhichOneof("kind")
        if kind == "runtime_value":
            values[name] = source.runtime_value.constant
        elif kind == "component_input_parameter":
            key = source.component_input_parameter
            value = struct_pb2.Value()
            if key in arguments:
                value.string_value = arguments[key]
            else:
                value.CopyFrom(pipeline_inputs[key].default_value)
            values[name] = value
        else:
            raise NotImplementedError(f"parameter source {kind} of {name}")
    return values


def _input_artifacts(task, finished: dict[str, TaskRun]) -> dict:
    artifacts = {}
    for name, source in task.inputs.artifacts.items():
        producer = source.task_output_artifact
        recorded = finished[producer.producer_task].outputs[producer.output_artifact_key]
        artifacts[name] = pipeline_spec_pb2.ArtifactList(artifacts=[recorded])
    return artifacts


def executor_input(spec, name: str, finished: dict[str, TaskRun], pipeline_root: str,
                   run_id: str, arguments: dict) -> pipeline_spec_pb2.ExecutorInput:
    """The ExecutorInput KFP's driver gives task `name`."""
    task = spec.root.dag.tasks[name]
    component = spec.components[task.component_ref.name]
    task_root = executor_input_utils.construct_local_task_root(pipeline_root, run_id, name)
    outputs = {key: executor_input_utils.make_artifact_list(key, out.artifact_type, task_root)
               for key, out in component.output_definitions.artifacts.items()}
    return pipeline_spec_pb2.ExecutorInput(
        inputs=pipeline_spec_pb2.ExecutorInput.Inputs(
            parameter_values=_parameter_values(spec, task, arguments),
            artifacts=_input_artifacts(task, finished),
        ),
        outputs=pipeline_spec_pb2.ExecutorInput.Outputs(
            artifacts=outputs,
            output_file=os.path.join(task_root, "output_metadata.json"),
        ),
    )


def recorded_outputs(component, executor_in, executor_out) -> dict:
    """Output artifacts as the backend records them and hands them downstream."""
    recorded = {}
    for key, artifact_list in executor_in.outputs.artifacts.items():
        (given,) = artifact_list.artifacts
        written = executor_out.artifacts.get(key)
        (result,) = written.artifacts if written and written.artifacts else (given,)
        recorded[key] = pipeline_spec_pb2.RuntimeArtifact(
            name=str(next(_ids)),  # an ML Metadata id, as metadata/converter.go writes it
            type=component.output_definitions.artifacts[key].artifact_type,
            uri=result.uri or given.uri,
            metadata=result.metadata,
        )
    return recorded


def run_task(spec, deployment, name: str, finished: dict[str, TaskRun], pipeline_root: str,
             run_id: str, arguments: dict, cwd: Path, env: dict, log_dir: Path) -> TaskRun:
    """Build the executor input, run the container's command, read its output file."""
    task = spec.root.dag.tasks[name]
    component = spec.components[task.component_ref.name]
    container = deployment.executors[component.executor_label].container
    executor_in = executor_input(spec, name, finished, pipeline_root, run_id, arguments)
    os.makedirs(os.path.dirname(executor_in.outputs.output_file), exist_ok=True)
    command = placeholder_utils.replace_placeholders(
        full_command=[*container.command, *container.args],
        executor_input_dict=executor_input_utils.executor_input_to_dict(executor_in, component),
        pipeline_resource_name=run_id,
        task_resource_name=name,
        pipeline_root=pipeline_root,
    )
    log_path = log_dir / f"{run_id}-{name}.log"
    with open(log_path, "w") as log:
        result = subprocess.run(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                timeout=900)
    text = log_path.read_text(errors="replace")
    if result.returncode != 0:
        return TaskRun(name, "failed", result.returncode, text)
    executor_out = executor_output_utils.load_executor_output(executor_in.outputs.output_file)
    return TaskRun(name, "succeeded", 0, text,
                   recorded_outputs(component, executor_in, executor_out))


def image_environment(project: Path) -> dict[str, str]:
    """The Dockerfile's environment: the project on PYTHONPATH, `python` = this venv's."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(project)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def run_spec(spec_path: Path, pipeline_root: str, project: Path, log_dir: Path,
             arguments: dict | None = None) -> SpecRun:
    """Execute every task of the compiled spec in dependency order; stop a branch at a failure."""
    data = yaml.safe_load(spec_path.read_text())
    spec = json_format.ParseDict(data, pipeline_spec_pb2.PipelineSpec())
    deployment = json_format.ParseDict(data["deploymentSpec"],
                                       pipeline_spec_pb2.PipelineDeploymentConfig())
    run_id = f"run-{uuid.uuid4().hex[:8]}"
    env = image_environment(project)
    finished: dict[str, TaskRun] = {}
    for name in task_order(spec):
        upstream = spec.root.dag.tasks[name].dependent_tasks
        if any(finished[u].state != "succeeded" for u in upstream):
            finished[name] = TaskRun(name, "not run")
            continue
        finished[name] = run_task(spec, deployment, name, finished, pipeline_root, run_id,
                                  arguments or {}, project, env, log_dir)
    return SpecRun(run_id, finished)
