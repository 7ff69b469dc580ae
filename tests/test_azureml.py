"""azureml_runner.py: the compiled Azure ML job, checked by azure-ai-ml itself and run step by step.

No Azure workspace is reachable here. What is checked instead:

* the job file loads back with azure-ai-ml's own loader (`load_job`, in the
  `make azureml` venv) and its step graph equals the pipeline's edges; reuse is
  off; compute targets are per step; no secret is in any file `compile` wrote;
* tests/azureml_emulator.py runs every step's command unchanged, as an Azure ML
  compute would, against MariaDB over TLS (the CA file as the job's setting,
  on an account that may only log in over TLS): a model is pushed, a second
  job takes everything from ML Metadata's cache, bad data stops at the gate
  with nothing after it run; and the review tools read the runs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from metadata import names, store
from metadata.graph import MetadataGraph
from orchestrators import ir as ir_file
from tests import azureml_emulator
from tests.conftest import DATA, ROOT, write_bitcoin_data
from tests.extras import MariaDB, azureml_python, mariadb  # noqa: F401 - the fixture
from tests.review_checks import check_review_tools

# Compiling takes TFX and a second venv: slow enough to leave out of `make test-fast`.
pytestmark = pytest.mark.e2e

SECRET = "azure-Secret-Pw-4"
STEPS = ("--train-steps", "300", "--eval-steps", "10")
CACHEABLE = {"CsvExampleGen", "StatisticsGen", "Transform", "Trainer", "Evaluator", "Pusher"}
AFTER_GATE = {"FeatureSelection", "Transform", "Trainer", "Evaluator", "Pusher"}
LOAD_SCRIPT = """
import json, sys, re
from azure.ai.ml import load_job
job = load_job(sys.argv[1])
steps = {}
for name, step in job.jobs.items():
    bound = [re.match(r"\\$\\{\\{parent\\.jobs\\.(\\w+)\\.outputs", str(b.path))
             for b in step.inputs.values()]
    upstream = sorted({m.group(1) for m in bound if m})
    steps[name] = {"node": step.display_name or step.component.display_name,
                   "upstream": upstream, "compute": step.compute,
                   "deterministic": step.component.is_deterministic,
                   "command": step.component.command, "image": step.environment.image,
                   "env": dict(step.environment_variables or {})}
print(json.dumps({"steps": steps, "force_rerun": job.settings.force_rerun,
                  "ir": str(job.inputs["pipeline_ir"].path)}))
"""


def compile_job(out: Path, mysql: str, *extra: str, env: dict | None = None):
    return subprocess.run(
        [sys.executable, str(ROOT / "azureml_runner.py"), "compile", "--image",
         "example.azurecr.io/chicago-taxi:v1", "--metadata-mysql", mysql, "--out", str(out),
         *extra], cwd=ROOT, capture_output=True, text=True, timeout=900,
        env={"SERVING_SETTLE_SECONDS": "0", **os.environ, **(env or {})})


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> Path:
    azureml_python()
    out = tmp_path_factory.mktemp("azureml_job")
    result = compile_job(out, "mlmd.mysql.database.azure.com:3306/mlmd", "--node-compute",
                         "Trainer=gpu-cluster", "--ssl-ca", "/etc/ssl/certs/azure-mysql-ca.pem",
                         env={"MLMD_MYSQL_USER": "taxi-admin", "MLMD_MYSQL_PASSWORD": SECRET})
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def load_with_azure_ml(job_file: Path) -> dict:
    result = subprocess.run([str(azureml_python()), "-c", LOAD_SCRIPT, str(job_file)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_job_loads_with_azure_ml_and_its_steps_follow_the_pipeline(compiled: Path):
    from pipeline.configs import PipelineConfig
    from pipeline.pipeline import create_pipeline

    loaded = load_with_azure_ml(compiled / "job.yaml")
    pipeline = create_pipeline(PipelineConfig(output_dir="/nonexistent/never-written"))
    expected = {c.id: sorted(u.id for u in c.upstream_nodes) for c in pipeline.components}
    steps = loaded["steps"]
    node_of = {name: s["node"] for name, s in steps.items()}
    assert {s["node"]: sorted(node_of[u] for u in s["upstream"]) for s in steps.values()} \
        == expected
    assert loaded["force_rerun"] is True
    assert {s["deterministic"] for s in steps.values()} == {False}
    assert {s["node"]: s["compute"] for s in steps.values()} == {
        n: "gpu-cluster" if n == "Trainer" else "cpu-cluster" for n in expected}
    assert {s["image"] for s in steps.values()} == {"example.azurecr.io/chicago-taxi:v1"}
    # TLS to MySQL with the CA file the job names; the server's certificate verified.
    assert all(s["env"] == {"MLMD_MYSQL_SSL_CA": "/etc/ssl/certs/azure-mysql-ca.pem"}
               for s in steps.values())
    for step in steps.values():
        assert "--run-id-env AZUREML_ROOT_RUN_ID" in step["command"]
        assert f"--node {step['node']} " in step["command"]
    assert loaded["ir"] == "./pipeline.pb"


def test_no_secret_in_anything_compile_wrote(compiled: Path):
    for path in compiled.iterdir():
        data = path.read_bytes()
        assert SECRET.encode() not in data and b"taxi-admin" not in data, path.name


def test_the_pipeline_is_compiled_for_the_stable_mount(compiled: Path):
    from orchestrators.node_runner import output_dir_of

    ir = ir_file.load(str(compiled / ir_file.IR_FILE))
    assert output_dir_of(ir) == "/mnt/chicago-taxi"


def test_a_node_compute_for_an_unknown_node_is_one_line(tmp_path):
    azureml_python()
    result = compile_job(tmp_path, "db:3306/m", "--node-compute", "Trainr=gpu-cluster")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "error: --node-compute names no node of the pipeline: ['Trainr']")


# -- the job run step by step (emulated Azure ML, real MariaDB over TLS) ---------------------

@dataclass
class EmulatedJobs:
    mysql: str
    env: dict[str, str]
    mount: Path
    first: azureml_emulator.JobRun
    second: azureml_emulator.JobRun
    bad: azureml_emulator.JobRun
    serving_before_bad: list[str]

    @property
    def where(self):
        return store.mysql_connection_config(store.parse_mysql(self.mysql), self.env)


def _states(jobs: EmulatedJobs, run_id: str) -> dict[str, str]:
    return {c.component: c.state for c in MetadataGraph(jobs.where).component_runs(run_id)}


@pytest.fixture(scope="module")
def emulated(mariadb: MariaDB, tmp_path_factory) -> EmulatedJobs:  # noqa: F811
    azureml_python()
    home = tmp_path_factory.mktemp("azureml_e2e")
    mysql = mariadb.create_database("mlmd_azureml")
    mount = home / "mnt" / "chicago-taxi"  # what /mnt/chicago-taxi is on a compute node
    datastores = home / "datastores"
    data = datastores / "workspaceblobstore" / "chicago-taxi" / "data"
    data.mkdir(parents=True)
    shutil.copy(DATA / "data.csv", data / "data.csv")
    job_dir = home / "job"
    compiled = compile_job(job_dir, mysql, "--mount-path", str(mount), "--ssl-ca",
                           str(mariadb.ca_file), "--no-ssl-verify", "--image-project-dir",
                           str(ROOT), *STEPS)
    assert compiled.returncode == 0, compiled.stderr[-3000:]
    secrets = {k: v for k, v in mariadb.tls_env.items() if k.startswith("MLMD_MYSQL_") and
               k not in ("MLMD_MYSQL_SSL_CA", "MLMD_MYSQL_SSL_VERIFY")}
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLMD_MYSQL_SSL")}
    env.update(secrets)  # what `submit` passes to every step; the job names the CA itself

    def run(job_id: str) -> azureml_emulator.JobRun:
        return azureml_emulator.run_job(job_dir / "job.yaml", datastores, home / "runs", env,
                                        job_id)

    first, second = run("taxi_job_1"), run("taxi_job_2")
    serving = mount / "serving_model" / "chicago_taxi"
    before = sorted(p.name for p in serving.iterdir())
    write_bitcoin_data(data / "data.csv")
    bad = run("taxi_job_3")
    return EmulatedJobs(mysql, mariadb.tls_env, mount, first, second, bad, before)


def test_the_tls_only_account_is_refused_without_the_ca(mariadb: MariaDB):  # noqa: F811
    target = store.parse_mysql(f"{mariadb.host}:{mariadb.port}/mysql")
    without_ca = {k: v for k, v in mariadb.tls_env.items() if not k.startswith("MLMD_MYSQL_SSL")}
    with pytest.raises(store.MetadataConnectionError):
        store.check_reachable(store.mysql_connection_config(target, without_ca))
    store.check_reachable(store.mysql_connection_config(target, mariadb.tls_env))


def test_every_step_succeeds_and_a_model_is_pushed(emulated: EmulatedJobs):
    first = emulated.first
    assert first.succeeded, {n: s.log[-2000:] for n, s in first.steps.items()
                             if s.state != "succeeded"}
    assert len(first.steps) == 10
    assert set(_states(emulated, first.job_id).values()) == {"ran"}
    pushed = [p for p in (emulated.mount / "serving_model" / "chicago_taxi").iterdir()
              if p.name.isdigit()]
    assert len(pushed) == 1 and (pushed[0] / "saved_model.pb").exists()
    # Every artifact ML Metadata recorded is under the one stable path.
    uris = [a.uri for a in MetadataGraph(emulated.where).store.get_artifacts() if a.uri]
    assert uris and all(u.startswith(str(emulated.mount)) for u in uris)


def test_a_second_job_takes_everything_from_the_cache(emulated: EmulatedJobs):
    assert emulated.second.succeeded
    recorded = _states(emulated, emulated.second.job_id)
    assert {recorded[c] for c in CACHEABLE} == {"cached"}, recorded


def test_bad_data_stops_at_the_gate_and_nothing_after_it_runs(emulated: EmulatedJobs):
    steps = emulated.bad.by_node()
    assert steps[names.GATE].state == "failed"
    assert {steps[n].state for n in AFTER_GATE} == {"not run"}
    recorded = _states(emulated, emulated.bad.job_id)
    assert recorded[names.GATE] == "FAILED" and not AFTER_GATE & set(recorded)
    log = steps[names.GATE].log
    assert "Bitcoin" in log and "error: DataValidationGate FAILED" in log
    serving = emulated.mount / "serving_model" / "chicago_taxi"
    assert sorted(p.name for p in serving.iterdir()) == emulated.serving_before_bad


def test_review_tools_read_the_azure_ml_run(emulated: EmulatedJobs):
    (served,) = [p for p in (emulated.mount / "serving_model" / "chicago_taxi").iterdir()
                 if p.name.isdigit()]
    check_review_tools(emulated.mount, emulated.first.job_id, emulated.mount / "data", served,
                       mysql=emulated.mysql, env=emulated.env)
