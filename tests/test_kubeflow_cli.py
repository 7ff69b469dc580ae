"""Kubeflow Pipelines / Vertex AI from the command line: settings, errors, submitting,
and the documentation, checked against the runner.

Nothing here needs a cluster or cloud credentials: a fake KFP API server on a
loopback port stands in where the runner talks to one.
"""

from __future__ import annotations

import argparse
import contextlib
import http.server
import json
import re
import shlex
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

import artifact_types
from pipeline import kubeflow, kubeflow_submit
from tests.test_kubeflow import (
    IMAGE,
    PIPELINE_ROOT,
    ROOT,
    Compiled,
    compile_spec,
    isolated_env,
    run_runner,
)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> Compiled:
    return compile_spec(tmp_path_factory)

# --------------------------------------------------------------------------- command line


def test_help_names_an_environment_variable_for_every_setting(monkeypatch):
    parser = kubeflow.build_parser()
    settings = [a for a in parser._actions
                if a.option_strings and a.dest not in ("help", "submit", "vertex")]
    for action in settings:
        match = re.search(r"\[env (\w+)", action.help or "")
        assert match, f"{action.option_strings[0]} names no environment variable"
        variable = match.group(1)
        if action.type is int:
            value, expected = "7", 7
        elif action.nargs == 0:
            value, expected = "1", True
        elif isinstance(action, argparse._AppendAction):
            value, expected = "--a=1 --b=2", ["--a=1", "--b=2"]
        else:
            value, expected = "gs://from-env/x", "gs://from-env/x"
        monkeypatch.setenv(variable, value)
        args = kubeflow.build_parser().parse_args([])
        assert getattr(args, action.dest) == expected, variable
    help_text = subprocess.run([sys.executable, str(ROOT / "kubeflow_runner.py"), "--help"],
                               capture_output=True, text=True, timeout=60).stdout
    for action in parser._actions:
        for option in action.option_strings:
            assert option in help_text


@contextlib.contextmanager
def closed_port() -> Iterator[int]:
    """A localhost port that refuses connections (bound, never listening)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def _one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line, got:\n{result.stderr}"
    assert lines[0].startswith("error: ")
    return lines[0]


def test_unreachable_host_fails_in_one_line_before_compiling(tmp_path: Path):
    with closed_port() as port:
        host = f"http://127.0.0.1:{port}"
        result = run_runner("--pipeline-root", PIPELINE_ROOT, "--image", IMAGE,
                            "--output-dir", str(tmp_path), "--submit", "--host", host,
                            env=isolated_env(tmp_path), timeout=60)
    line = _one_error_line(result)
    assert line.startswith(f"error: cannot reach Kubeflow Pipelines at {host}"), line
    assert not list(tmp_path.glob("*.yaml"))


class FakeKfp(http.server.BaseHTTPRequestHandler):
    """A Kubeflow Pipelines API on localhost: canned answers, requests recorded."""

    answers: dict[tuple[str, str], tuple[int, str, dict | str]] = {}
    received: list[tuple[str, str, dict]] = []

    def _answer(self) -> None:
        path = self.path.split("?")[0]
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        type(self).received.append((self.command, path, body))
        status, content_type, payload = self.answers.get(
            (self.command, path), (404, "application/json", {"error": "not found"}))
        data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _answer

    def log_message(self, *args) -> None:
        pass


@contextlib.contextmanager
def fake_kfp(answers: dict) -> Iterator[tuple[str, list]]:
    handler = type("Handler", (FakeKfp,), {"answers": answers, "received": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler.received
    finally:
        server.shutdown()
        server.server_close()


HEALTHZ = ("GET", "/apis/v2beta1/healthz")


@pytest.mark.parametrize("answer, message", [
    ((401, "application/json", {"error": "no token"}), "refused the request (HTTP 401)"),
    ((403, "application/json", {"error": "forbidden"}), "refused the request (HTTP 403)"),
    ((200, "text/html", "<html>Log in</html>"), "answered with a login page"),
])
def test_endpoint_wanting_credentials_fails_in_one_line(tmp_path: Path, answer, message):
    with fake_kfp({HEALTHZ: answer}) as (host, _):
        result = run_runner("--pipeline-root", PIPELINE_ROOT, "--image", IMAGE,
                            "--output-dir", str(tmp_path), "--submit", "--host", host,
                            env=isolated_env(tmp_path), timeout=60)
    line = _one_error_line(result)
    assert message in line and "KFP_TOKEN" in line, line


def test_vertex_without_credentials_fails_in_one_line(tmp_path: Path):
    result = run_runner("--pipeline-root", PIPELINE_ROOT, "--image", IMAGE,
                        "--output-dir", str(tmp_path), "--vertex",
                        env=isolated_env(tmp_path, GOOGLE_CLOUD_PROJECT="test-project",
                                         GOOGLE_CLOUD_REGION="us-central1"), timeout=60)
    line = _one_error_line(result)
    assert "Google Cloud credentials not found" in line, line
    assert not list(tmp_path.glob("*.yaml"))


@pytest.mark.parametrize("args, message", [
    (["--pipeline-root", "/tmp/root", "--image", IMAGE],
     "--pipeline-root must be Google Cloud Storage (gs://BUCKET/path)"),
    (["--pipeline-root", "minio://mlpipeline/v2/artifacts", "--image", IMAGE],
     "minio:// URIs cannot be used"),
    (["--pipeline-root", "s3://bucket/root", "--image", IMAGE], "s3:// URIs cannot be used"),
    (["--pipeline-root", PIPELINE_ROOT, "--image", IMAGE, "--serving-base", "/srv/models"],
     "--serving-base must be Google Cloud Storage"),
    (["--pipeline-root", PIPELINE_ROOT], "--image (or KFP_IMAGE) is required"),
    (["--pipeline-root", PIPELINE_ROOT, "--image", IMAGE, "--schema", "schema/schema.pbtxt"],
     "--schema must be inside the image"),
    (["--pipeline-root", PIPELINE_ROOT, "--image", IMAGE, "--pipeline-name", "chicago_taxi"],
     "must match"),
])
def test_settings_that_would_fail_on_the_cluster_are_refused(tmp_path, args, message):
    result = run_runner(*args, "--output-dir", str(tmp_path), env=isolated_env(tmp_path),
                        timeout=60)
    assert message in _one_error_line(result)


@pytest.mark.slow
def test_submit_sends_the_spec_to_the_kfp_api(compiled: Compiled, tmp_path: Path):
    """The real kfp.Client against a local stand-in for the KFP API server."""
    answers = {
        HEALTHZ: (200, "application/json", {"multi_user": False}),
        ("GET", "/apis/v2beta1/experiments"): (200, "application/json", {"experiments": []}),
        ("POST", "/apis/v2beta1/experiments"): (
            200, "application/json", {"experiment_id": "exp-1", "display_name": "chicago-taxi"}),
        ("POST", "/apis/v2beta1/runs"): (200, "application/json", {"run_id": "run-1"}),
    }
    with fake_kfp(answers) as (host, received):
        args = kubeflow.build_parser().parse_args(
            ["--pipeline-root", PIPELINE_ROOT, "--image", IMAGE, "--submit", "--host", host])
        kubeflow_submit.check_kfp_endpoint(args.host, args.token)
        config = kubeflow.config_from_args(args)
        link = kubeflow_submit.submit_to_kfp(str(compiled.path), config, args)
    assert link == f"{host}/#/runs/details/run-1"
    (run,) = [body for method, path, body in received if path == "/apis/v2beta1/runs"]
    assert run["experiment_id"] == "exp-1"
    assert run["runtime_config"]["pipeline_root"] == PIPELINE_ROOT
    sent = json_format.ParseDict(run["pipeline_spec"], pipeline_spec_pb2.PipelineSpec())
    assert sent == compiled.spec


# --------------------------------------------------------------------------- the documentation

DOCS = ROOT / "docs" / "kubeflow.md"


def _runner_commands(text: str) -> list[str]:
    """Each `kubeflow_runner.py ...` command of the docs' shell blocks, continuations joined."""
    blocks = re.findall(r"```bash\n(.*?)```", text, re.S)
    joined = [line for block in blocks for line in block.replace("\\\n", " ").splitlines()]
    return [line for line in joined if "kubeflow_runner.py" in line]


def test_docs_use_only_options_and_variables_the_runner_has():
    text = DOCS.read_text()
    parser = kubeflow.build_parser()
    commands = _runner_commands(text)
    assert len(commands) >= 4, "compile, KFP, Vertex and environment examples"
    for command in commands:
        flags = [w.split("=")[0] for w in shlex.split(command) if w.startswith("--")]
        unknown = [f for f in flags if f not in parser._option_string_actions]
        assert unknown == [], f"{command!r}: {unknown}"
    helps = " ".join(a.help or "" for a in parser._actions)
    for variable in set(re.findall(r"(?<![.\w])(?:KFP|GOOGLE_CLOUD|VERTEX)_[A-Z_]+", text)):
        assert f"env {variable}" in helps, f"{variable} is not read by kubeflow_runner.py"


def test_docs_state_the_defaults_the_code_has():
    from models.contract import MODEL_NAME
    from pipeline.configs import PipelineConfig

    text = DOCS.read_text()
    defaults = PipelineConfig()
    for stated in (" ".join(kubeflow.DEFAULT_BEAM_ARGS), kubeflow.DEFAULT_SCHEMA,
                   f"PIPELINE_ROOT/serving_model/{MODEL_NAME}", "PIPELINE_ROOT/data",
                   f"build/{kubeflow.DEFAULT_PIPELINE_NAME}.yaml",
                   json.dumps({"num_steps": defaults.train_steps}),
                   json.dumps({"num_steps": defaults.eval_steps}),
                   kubeflow.TITLE_MODULE, *artifact_types.__all__):
        assert stated in text, f"docs/kubeflow.md does not say {stated!r}"


def test_documented_beam_args_are_beam_options_that_need_no_tfx_staging():
    from apache_beam.options.pipeline_options import PipelineOptions
    from tfx.utils import dependency_utils

    examples = re.findall(r'export KFP_BEAM_ARGS="([^"]+)"', DOCS.read_text())
    assert len(examples) == 2, "a Dataflow and a Flink example"
    for example in examples:
        flags = list(kubeflow.beam_args(shlex.split(example), IMAGE))
        known = PipelineOptions(flags).get_all_options(retain_unknown_options=False)
        unknown = [f for f in flags if f[2:].split("=")[0] not in known]
        assert unknown == [], f"not Beam options: {unknown}"
        # With the flags unchanged, TFX skips building an sdist of itself for the workers.
        assert dependency_utils.make_beam_dependency_flags(flags) == flags


def test_allowed_anomalies_are_compiled_into_the_gate(tmp_path: Path):
    from pipeline.pipeline import create_pipeline

    args = kubeflow.build_parser().parse_args(
        ["--pipeline-root", PIPELINE_ROOT, "--image", IMAGE, "--output-dir", str(tmp_path),
         "--allow-anomaly", "payment_type:ENUM_TYPE_UNEXPECTED_STRING_VALUES",
         "--allow-anomaly", "company"]
    )
    pipeline = create_pipeline(kubeflow.config_from_args(args))
    (gate,) = [c for c in pipeline.components if c.id == "DataValidationGate"]
    allowed = gate.exec_properties["allowed_anomalies"]
    assert allowed == "payment_type:ENUM_TYPE_UNEXPECTED_STRING_VALUES,company"
