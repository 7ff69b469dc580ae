"""Run a compiled Azure ML pipeline job file step by step, the way Azure ML runs its steps.

What an Azure ML compute does for each `command` step of a pipeline job, and
what this emulator does in its place (no workspace is reachable here):

* it orders the steps by their data dependencies (`${{parent.jobs.X.outputs.Y}}`
  bindings) and never starts a step whose upstream failed;
* it binds `${{inputs.NAME}}` and `${{outputs.NAME}}` in the command to paths:
  the job-level input file (uploaded from next to the job file), an upstream
  step's output folder, a fresh folder for each plain output, and, for an
  output whose `path` is a datastore folder (`azureml://datastores/D/paths/P`),
  that folder mounted read-write at a path of the step's own: here a symlink
  per step to one local folder per datastore path, so two steps see the same
  files at different paths, as on Azure ML;
* it sets the step's `environment_variables`, and `AZUREML_ROOT_RUN_ID` to the
  pipeline job's id in every step of one job;
* it runs the command unchanged with bash in the image's working directory
  (this project's folder, on PYTHONPATH, with this venv's `python` first on
  PATH, as the Dockerfile's image has them).

Not emulated: the image itself, compute targets (read from the job, not used),
uploads and the workspace's own records.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
_PLACEHOLDER = re.compile(r"\$\{\{(inputs|outputs)\.(\w+)\}\}")
_UPSTREAM = re.compile(r"^\$\{\{parent\.jobs\.(\w+)\.outputs\.(\w+)\}\}$")
_PARENT_INPUT = re.compile(r"^\$\{\{parent\.inputs\.(\w+)\}\}$")
_DATASTORE = re.compile(r"^azureml://datastores/(\w+)/paths/(.+?)/?$")


@dataclass
class StepRun:
    name: str
    node: str  # the step's display name: the TFX node id
    state: str  # "succeeded", "failed" or "not run"
    returncode: int | None = None
    log: str = ""
    command: str = ""


@dataclass
class JobRun:
    job_id: str
    steps: dict[str, StepRun] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        return all(s.state == "succeeded" for s in self.steps.values())

    def by_node(self) -> dict[str, StepRun]:
        return {s.node: s for s in self.steps.values()}


def upstream_steps(step: dict) -> set[str]:
    """The steps whose outputs `step` takes as inputs."""
    found = set()
    for binding in (step.get("inputs") or {}).values():
        match = _UPSTREAM.match(str(binding.get("path", "")) if isinstance(binding, dict) else "")
        if match:
            found.add(match[1])
    return found


def step_order(spec: dict) -> list[str]:
    jobs = spec["jobs"]
    done: list[str] = []
    while len(done) < len(jobs):
        ready = sorted(n for n in jobs if n not in done and upstream_steps(jobs[n]) <= set(done))
        assert ready, f"the job's steps have a cycle among {set(jobs) - set(done)}"
        done += ready
    return done


def run_job(job_file: Path, datastores: Path, workdir: Path, env: dict[str, str],
            job_id: str | None = None) -> JobRun:
    """Run every step of `job_file`; datastore folders live under `datastores/<name>/<path>`."""
    spec = yaml.safe_load(job_file.read_text())
    run = JobRun(job_id or f"emulated_job_{uuid.uuid4().hex[:12]}")
    outputs: dict[str, dict[str, Path]] = {}
    for name in step_order(spec):
        step = spec["jobs"][name]
        node = step["component"].get("display_name", name)
        if any(run.steps[u].state != "succeeded" for u in upstream_steps(step)):
            run.steps[name] = StepRun(name, node, "not run")
            continue
        step_dir = workdir / run.job_id / name
        values = _bind_inputs(spec, step, job_file.parent, outputs)
        outputs[name] = _bind_outputs(step, step_dir, datastores)
        values.update({("outputs", k): v for k, v in outputs[name].items()})
        command = _bind_command(step["component"]["command"], values)
        variables = {k: str(v) for k, v in (step.get("environment_variables") or {}).items()}
        step_env = {**env, **variables, "AZUREML_ROOT_RUN_ID": run.job_id, "PYTHONPATH": str(ROOT),
                    "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"}
        result = subprocess.run(["bash", "-c", command], cwd=ROOT, env=step_env,
                                capture_output=True, text=True, timeout=1800)
        run.steps[name] = StepRun(name, node, "succeeded" if result.returncode == 0 else "failed",
                                  result.returncode, result.stdout + result.stderr, command)
    return run


def _bind_command(command: str, values: dict[tuple[str, str], Path]) -> str:
    bound = _PLACEHOLDER.sub(lambda m: str(values[(m[1], m[2])]), command)
    assert "${{" not in bound, bound
    return bound


def _bind_inputs(spec: dict, step: dict, job_dir: Path,
                 outputs: dict[str, dict[str, Path]]) -> dict[tuple[str, str], Path]:
    values = {}
    for key, binding in (step.get("inputs") or {}).items():
        path = str(binding["path"])
        parent, upstream = _PARENT_INPUT.match(path), _UPSTREAM.match(path)
        if parent:
            values[("inputs", key)] = (job_dir / spec["inputs"][parent[1]]["path"]).resolve()
        elif upstream:
            values[("inputs", key)] = outputs[upstream[1]][upstream[2]]
        else:
            raise AssertionError(f"input binding not emulated: {path}")
    return values


def _bind_outputs(step: dict, step_dir: Path, datastores: Path) -> dict[str, Path]:
    bound = {}
    for key, output in (step.get("outputs") or {}).items():
        path = step_dir / "outputs" / key
        path.parent.mkdir(parents=True, exist_ok=True)
        datastore = _DATASTORE.match(str(output.get("path", "")))
        if datastore:
            assert output.get("mode") == "rw_mount", output
            target = datastores / datastore[1] / datastore[2]
            target.mkdir(parents=True, exist_ok=True)
            path.symlink_to(target, target_is_directory=True)  # this step's own mount point
        else:
            path.mkdir()
        bound[key] = path
    return bound
