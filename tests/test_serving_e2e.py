"""End to end: the client against the real pushed SavedModel behind a TF Serving stand-in.

The TF Serving binary cannot be installed here, so `TFServingTestHarness` below
is a TEST HARNESS, not TF Serving: a small gRPC `PredictionService` built from
tensorflow-serving-api's protos and a REST handler following TF Serving's
documented REST API, both answering with the pushed SavedModel loaded the way
TF Serving loads it (TF1 session, `serve` tag, tensors named by the signature
def). The client's probabilities must equal calling the model directly.
"""

from __future__ import annotations

import base64
import csv
import json
import re
import subprocess
import sys
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from models import contract
from serving import client

ROOT = Path(__file__).resolve().parent.parent
ROWS = 600  # more than two requests' worth at the client's batch size
# Equal up to float32 round-off: TF Serving's TF1 session and a direct TF2 call
# may order oneDNN's arithmetic differently (seen: 6e-8 apart).
SAME = {"rtol": 1e-5, "atol": 1e-7}

# Every test here uses the session's whole-pipeline run.
pytestmark = pytest.mark.e2e


class HarnessError(Exception):
    """A request TF Serving would refuse: (gRPC code name, HTTP status, message)."""

    def __init__(self, code: str, status: int, message: str):
        super().__init__(message)
        self.code, self.status = code, status


class TFServingTestHarness:
    """TEST HARNESS standing in for TF Serving (see the module docstring)."""

    def __init__(self, version_dirs: Path | list[Path], model_name: str, max_batch_size: int,
                 labels: dict[str, int] | None = None):
        """Serve one version folder, or several with `labels` (label -> version),
        as TF Serving's `specific` policy and `version_labels` do."""
        self.model_name, self.max_batch_size = model_name, max_batch_size
        dirs = version_dirs if isinstance(version_dirs, list) else [version_dirs]
        self.loaded = {int(d.name): self._load(d) for d in dirs}
        self.version = max(self.loaded)  # requests naming no version get the newest
        self.labels = dict(labels or {})
        self.session, self.signatures = self.loaded[self.version]
        self.batch_sizes: list[int] = []
        self.answered_versions: list[int] = []
        self._grpc_server = self._http_server = None

    @staticmethod
    def _load(version_dir: Path):
        import tensorflow as tf

        graph = tf.Graph()
        session = tf.compat.v1.Session(graph=graph)
        with graph.as_default():
            meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"], str(version_dir))
        return session, dict(meta_graph.signature_def)

    def resolve(self, name: str, version: int | None, label: str | None) -> int:
        """The version a request names, as ServerCore::GetModelVersionForLabel does."""
        if label:
            if name != self.model_name or label not in self.labels:
                raise HarnessError("INVALID_ARGUMENT", 400,
                                   f"Unrecognized servable version label: {label}")
            return self.labels[label]
        if name != self.model_name or (version is not None and version not in self.loaded):
            spec = f"Latest({name})" if version is None else f"Specific({name}, {version})"
            raise HarnessError("NOT_FOUND", 404, f"Servable not found for request: {spec}")
        return self.version if version is None else version

    # -- the model, as TF Serving's Predict runs it

    def predict(self, name: str, version: int | None, signature_name: str, inputs: dict,
                output_filter: list[str], label: str | None = None) -> dict:
        chosen = self.resolve(name, version, label)
        session, signatures = self.loaded[chosen]
        signature = signatures.get(signature_name or "serving_default")
        if signature is None:
            raise HarnessError("INVALID_ARGUMENT", 400,
                               f'Serving signature key "{signature_name}" not found.')
        if set(inputs) != set(signature.inputs):
            raise HarnessError("INVALID_ARGUMENT", 400,
                               f"input keys {sorted(inputs)} != {sorted(signature.inputs)}")
        batch = len(next(iter(inputs.values())))
        if batch > self.max_batch_size:
            raise HarnessError("INVALID_ARGUMENT", 400, f"Task size {batch} is larger than "
                               f"maximum input batch size {self.max_batch_size}")
        self.batch_sizes.append(batch)
        self.answered_versions.append(chosen)
        names = output_filter or sorted(signature.outputs)
        values = session.run(
            [signature.outputs[n].name for n in names],
            feed_dict={signature.inputs[k].name: v for k, v in inputs.items()},
        )
        return dict(zip(names, values, strict=True))

    # -- gRPC: tensorflow.serving.PredictionService/Predict

    def start_grpc(self) -> str:
        import grpc
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

        harness = self

        class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
            def Predict(self, request, context):  # noqa: N802 - gRPC method name
                spec = request.model_spec
                try:
                    outputs = harness.predict(
                        spec.name, spec.version.value if spec.HasField("version") else None,
                        spec.signature_name,
                        {k: tf.make_ndarray(v) for k, v in request.inputs.items()},
                        list(request.output_filter), spec.version_label or None,
                    )
                except HarnessError as error:
                    context.abort(getattr(grpc.StatusCode, error.code), str(error))
                response = predict_pb2.PredictResponse()
                response.model_spec.name = harness.model_name
                response.model_spec.version.value = harness.answered_versions[-1]
                response.model_spec.signature_name = spec.signature_name or "serving_default"
                for name, value in outputs.items():
                    response.outputs[name].CopyFrom(as_proto_field(value))
                return response

        self._grpc_server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            PredictionService(), self._grpc_server
        )
        port = self._grpc_server.add_insecure_port("127.0.0.1:0")
        self._grpc_server.start()
        return f"127.0.0.1:{port}"

    # -- REST: GET /v1/models/<name>, POST /v1/models/<name>[/versions/<v>]:predict

    def start_rest(self) -> str:
        harness = self
        predict_path = re.compile(
            r"^/v1/models/([^/:]+)(?:/versions/(\d+)|/labels/([^/:]+))?:predict$")

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep pytest output clean
                pass

            def _answer(self, status: int, payload: dict) -> None:
                body = json.dumps(payload).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802 - http.server method name
                status = re.match(rf"^/v1/models/{harness.model_name}(?:/versions/(\d+))?$",
                                  self.path)
                wanted = int(status.group(1)) if status and status.group(1) else None
                versions = [v for v in sorted(harness.loaded) if wanted in (None, v)]
                if not status or not versions:
                    self._answer(404, {"error": "Could not find any versions of model"})
                    return
                self._answer(200, {"model_version_status": [{
                    "version": str(v), "state": "AVAILABLE",
                    "status": {"error_code": "OK", "error_message": ""},
                } for v in versions]})

            def do_POST(self) -> None:  # noqa: N802 - http.server method name
                match = predict_path.match(self.path)
                if not match:
                    self._answer(404, {"error": f"Malformed request: POST {self.path}"})
                    return
                try:
                    body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                    signature_name = body.get("signature_name", "")
                    signature = harness.signatures.get(signature_name or "serving_default")
                    inputs = rest_inputs(body, list(signature.inputs) if signature else [])
                    outputs = harness.predict(
                        match.group(1), int(match.group(2)) if match.group(2) else None,
                        signature_name, inputs, [], match.group(3),
                    )
                except HarnessError as error:
                    self._answer(error.status, {"error": str(error)})
                    return
                # One named output: "predictions" lists its value per instance.
                if len(outputs) == 1:
                    self._answer(200, {"predictions": next(iter(outputs.values())).tolist()})
                else:
                    rows = [dict(zip(outputs, values, strict=True))
                            for values in zip(*(v.tolist() for v in outputs.values()),
                                              strict=True)]
                    self._answer(200, {"predictions": rows})

        self._http_server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._http_server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self._http_server.server_address[1]}"

    def stop(self) -> None:
        if self._grpc_server:
            self._grpc_server.stop(grace=None)
        if self._http_server:
            self._http_server.shutdown()
        for session, _ in self.loaded.values():
            session.close()


def as_proto_field(value: np.ndarray):
    """A TensorProto as TF Serving's Predict fills it by default (Tensor::AsProtoField):
    values in the typed repeated field (float_val for floats), not tensor_content."""
    import tensorflow as tf

    proto = tf.make_tensor_proto(value)
    if value.dtype == np.float32:
        proto.ClearField("tensor_content")
        proto.float_val.extend(value.reshape(-1).tolist())
    return proto


def rest_value(value):
    """A JSON value as TF Serving decodes it: {"b64": ...} objects are bytes."""
    if isinstance(value, dict) and list(value) == ["b64"]:
        return base64.b64decode(value["b64"])
    if isinstance(value, list):
        return [rest_value(v) for v in value]
    return value


def rest_inputs(body: dict, input_names: list[str]) -> dict:
    """Row ("instances") or columnar ("inputs") format -> input name -> array."""
    if ("instances" in body) == ("inputs" in body):
        raise HarnessError("INVALID_ARGUMENT", 400, "Missing 'inputs' or 'instances' key")
    if "instances" in body:
        instances = body["instances"]
        if len(input_names) == 1 and not (
            instances and isinstance(instances[0], dict) and list(instances[0]) != ["b64"]
        ):
            return {input_names[0]: np.array(rest_value(instances), dtype=object)}
        return {n: np.array([rest_value(i[n]) for i in instances], dtype=object)
                for n in input_names}
    columns = body["inputs"]
    if not isinstance(columns, dict):
        columns = {input_names[0]: columns}
    return {n: np.array(rest_value(v), dtype=object) for n, v in columns.items()}


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def harness(pushed_model_dir):
    server = TFServingTestHarness(pushed_model_dir, contract.MODEL_NAME, contract.MAX_BATCH_SIZE)
    server.rest_url = server.start_rest()
    server.grpc_target = server.start_grpc()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def rows_csv(tmp_path_factory) -> Path:
    lines = (ROOT / "data" / "data.csv").read_text().splitlines(keepends=True)[: ROWS + 1]
    path = tmp_path_factory.mktemp("rows") / "rows.csv"
    path.write_text("".join(lines))
    return path


@pytest.fixture(scope="module")
def examples(rows_csv) -> list[bytes]:
    examples, _ = client.read_examples(rows_csv.read_text().splitlines(True), client.load_columns())
    assert len(examples) == ROWS
    return examples


@pytest.fixture(scope="module")
def direct(pushed_model_dir, examples):
    """The model called directly, without server or client, in the same batches
    the client sends (results may differ in the last bit across batch sizes)."""
    import tensorflow as tf

    serve = tf.saved_model.load(str(pushed_model_dir)).signatures[contract.SIGNATURE_NAME]

    def call(batch_size: int, count: int = ROWS) -> np.ndarray:
        batches = [examples[i:min(i + batch_size, count)] for i in range(0, count, batch_size)]
        return np.concatenate(
            [serve(examples=tf.constant(b))[contract.OUTPUT_KEY].numpy() for b in batches]
        )

    return call


def run_client(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "serving.client", *args],
        cwd=ROOT, input=stdin, capture_output=True, text=True, timeout=300,
    )


# --------------------------------------------------------------------------- tests


def test_rest_client_gets_the_models_probabilities(harness, examples, direct):
    harness.batch_sizes.clear()
    rest = client.RestClient(harness.rest_url)
    probabilities = client.predict_all(rest, examples, contract.MAX_BATCH_SIZE)
    np.testing.assert_allclose(probabilities, direct(contract.MAX_BATCH_SIZE), **SAME)
    assert harness.batch_sizes == [256, 256, 88]


def test_grpc_client_gets_the_models_probabilities(harness, examples, direct):
    grpc_client = client.GrpcClient(harness.grpc_target)
    try:
        probabilities = client.predict_all(grpc_client, examples, 100)
    finally:
        grpc_client.close()
    np.testing.assert_allclose(probabilities, direct(100), **SAME)


def test_cli_prints_one_probability_per_csv_row_over_rest(harness, rows_csv, direct):
    result = run_client(str(rows_csv), "--rest", harness.rest_url)
    assert result.returncode == 0, result.stderr
    printed = [float(line) for line in result.stdout.splitlines()]
    # Printed with 6 significant digits.
    np.testing.assert_allclose(printed, direct(contract.MAX_BATCH_SIZE), rtol=2e-5, atol=1e-7)
    assert "note: not sent (not a serving input): tips" in result.stderr


def test_cli_reads_json_lines_from_stdin_over_grpc(harness, rows_csv, direct):
    with rows_csv.open() as f:
        rows = [{k: v for k, v in row.items() if v != ""} for row in csv.DictReader(f)][:50]
    stdin = "".join(json.dumps(row) + "\n" for row in rows)
    result = run_client("--grpc", harness.grpc_target, stdin=stdin)
    assert result.returncode == 0, result.stderr
    printed = [float(line) for line in result.stdout.splitlines()]
    np.testing.assert_allclose(printed, direct(50, count=50), rtol=2e-5, atol=1e-7)


def test_a_server_error_is_one_line(harness, rows_csv):
    rest = run_client(str(rows_csv), "--rest", harness.rest_url, "--model", "nope")
    assert rest.returncode == 1 and rest.stdout == ""
    assert rest.stderr.splitlines()[-1] == (
        "error: TF Serving answered HTTP 404: Servable not found for request: Latest(nope)"
    )
    grpc = run_client(str(rows_csv), "--grpc", harness.grpc_target, "--version", "1")
    assert grpc.returncode == 1 and grpc.stdout == ""
    assert grpc.stderr.splitlines()[-1] == (
        "error: TF Serving answered NOT_FOUND: "
        "Servable not found for request: Specific(chicago_taxi, 1)"
    )
