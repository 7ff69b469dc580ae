"""Send raw taxi rows to a running TF Serving and print one probability per row.

Probabilities are printed one per line, in input order, with 6 significant
digits (e.g. 0.912345, 1.36906e-06).

    python -m serving.client data/data.csv                    # REST on localhost:8501
    python -m serving.client --grpc localhost:8500 data/data.csv
    python -m serving.client --label canary data/data.csv     # the version labelled canary
    echo '{"fare": 12.5, "payment_type": "Cash"}' | python -m serving.client

Rows come from a CSV file with a header, or JSON lines (a file, or stdin). Each
row becomes a serialized `tf.Example` (serving/examples.py) typed by the curated schema (INT ->
int64_list, FLOAT -> float_list, BYTES -> bytes_list; an empty cell or a null is
an absent feature, which the model handles). Columns the schema keeps out of
the SERVING environment (the label source `tips`) are dropped, so the shipped
data can be sent as it is.

Every row is checked before anything is sent: a bad row (unknown column, a
value of the wrong type, a wrong number of fields) is reported with its line
number and nothing is sent (exit 2). Requests go out in batches of at most
`serving.MAX_BATCH_SIZE` examples, TF Serving's batcher limit. An unreachable
server or an error answer is one line on stderr (exit 1).

The request shapes are TF Serving's documented ones: REST `POST
/v1/models/<name>[/versions/<v>]:predict` with `{"signature_name": ...,
"instances": [{"b64": <serialized tf.Example>}, ...]}`, and gRPC
`tensorflow.serving.PredictionService/Predict` with a `PredictRequest` whose
input `examples` is a 1-D DT_STRING tensor.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import socket
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from serving import (
    GRPC_PORT,
    MAX_BATCH_SIZE,
    MODEL_NAME,
    OUTPUT_KEY,
    REST_PORT,
    SIGNATURE_NAME,
    predict_request,
)
from serving.examples import (  # noqa: F401 - re-exported: the client's input side
    DEFAULT_SCHEMA,
    BadRow,
    BadRows,
    ClientError,
    Column,
    convert,
    csv_rows,
    json_rows,
    load_columns,
    read_examples,
    to_example,
)

DEFAULT_REST_URL = f"http://localhost:{REST_PORT}"
DEFAULT_GRPC_TARGET = f"localhost:{GRPC_PORT}"
START_HINT = "is it running? (docker compose -f serving/docker-compose.yaml up)"
MAX_REPORTED_BAD_ROWS = 20
# gRPC's default 4 MiB cap on answers is far above a batch of probabilities,
# but requests of MAX_BATCH_SIZE wide rows stay under it as well.
GRPC_MAX_MESSAGE_BYTES = 64 * 1024 * 1024


class ServerUnreachable(ClientError):
    """No TF Serving answers at the address."""


class ServerError(ClientError):
    """TF Serving answered with an error, or with something that is not predictions."""


# --------------------------------------------------------------------------- requests


def rest_url(base_url: str, model: str = MODEL_NAME, version: int | None = None,
             label: str | None = None) -> str:
    """TF Serving's predict URL: /v1/models/<name>[/versions/<v> | /labels/<l>]:predict."""
    path = f"/v1/models/{model}" + (f"/versions/{version}" if version is not None else "")
    path += f"/labels/{label}" if label is not None else ""
    return base_url.rstrip("/") + path + ":predict"


def rest_body(serialized: Sequence[bytes], signature: str = SIGNATURE_NAME) -> dict:
    """The REST predict body, row format: one base64 {"b64": ...} value per example.

    The signature has a single input, so (as TF Serving documents) each
    instance is that input's value rather than an object keyed by input name;
    binary strings must be wrapped as {"b64": ...}.
    """
    return {
        "signature_name": signature,
        "instances": [{"b64": base64.b64encode(s).decode("ascii")} for s in serialized],
    }


def probabilities_from_rest(payload: object, count: int) -> list[float]:
    """One float per example from a row-format answer {"predictions": [...]}.

    A single-output model answers with that output's value per instance:
    a number, or a one-element list for an output shaped [batch, 1].
    """
    predictions = payload.get("predictions") if isinstance(payload, dict) else None
    if not isinstance(predictions, list) or len(predictions) != count:
        raise ServerError(f"unexpected answer: expected {count} predictions, got {payload!r:.200}")
    return [_one_number(p) for p in predictions]


def _one_number(value: object) -> float:
    if isinstance(value, dict) and OUTPUT_KEY in value:
        value = value[OUTPUT_KEY]
    while isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ServerError(f"unexpected prediction {value!r:.100}: expected one number")
    return float(value)


def probabilities_from_grpc(response, count: int) -> list[float]:
    """One float per example from a PredictResponse's `probability` tensor.

    TF Serving fills `float_val` by default and packed `tensor_content` when
    configured to; tf.make_ndarray reads either.
    """
    import tensorflow as tf

    if OUTPUT_KEY not in response.outputs:
        raise ServerError(f"the answer has no '{OUTPUT_KEY}' output")
    values = tf.make_ndarray(response.outputs[OUTPUT_KEY])
    if values.ndim == 0 or values.shape[0] != count or values.size != count:
        raise ServerError(f"unexpected '{OUTPUT_KEY}' shape {list(values.shape)} "
                          f"for {count} examples")
    return [float(v) for v in values.reshape(-1)]


class RestClient:
    """TF Serving's REST predict API over plain HTTP (standard library only)."""

    def __init__(self, url: str = DEFAULT_REST_URL, model: str = MODEL_NAME,
                 version: int | None = None, timeout: float = 30.0, label: str | None = None):
        self.url, self.model, self.version, self.timeout = url, model, version, timeout
        self.label = label

    def served_version(self) -> int | None:
        """The version answering unversioned requests (the newest AVAILABLE), for the
        capture log: TF Serving's REST answers do not say which version answered."""
        if self.version is not None:
            return self.version
        url = rest_url(self.url, self.model).removesuffix(":predict")
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as answer:
                status = json.loads(answer.read()).get("model_version_status", [])
        except (OSError, ValueError, AttributeError):
            return None
        available = [int(s["version"]) for s in status if s.get("state") == "AVAILABLE"]
        return max(available, default=None)

    def predict(self, serialized: Sequence[bytes]) -> list[float]:
        body = json.dumps(rest_body(serialized)).encode("utf-8")
        request = urllib.request.Request(
            rest_url(self.url, self.model, self.version, self.label), data=body,
            headers={"Content-Type": "application/json"}, method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                payload = json.loads(answer.read())
        except urllib.error.HTTPError as error:
            message = _rest_error(error)
            raise ServerError(f"TF Serving answered HTTP {error.code}: {message}") from None
        except (TimeoutError, urllib.error.URLError, ConnectionError) as error:
            reason = getattr(error, "reason", error)
            raise ServerUnreachable(
                f"cannot reach TF Serving at {self.url} (REST): {_reason(reason)}; {START_HINT}"
            ) from None
        except json.JSONDecodeError:
            raise ServerError(f"TF Serving at {self.url} did not answer with JSON") from None
        return probabilities_from_rest(payload, len(serialized))


def _rest_error(error: urllib.error.HTTPError) -> str:
    try:
        return str(json.loads(error.read()).get("error", "")).strip() or error.reason
    except (ValueError, AttributeError):
        return str(error.reason)


def _reason(reason: object) -> str:
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, TimeoutError):
        return "no answer in time"
    if isinstance(reason, socket.gaierror):
        return "unknown host"
    return str(reason).strip() or type(reason).__name__


class GrpcClient:
    """TF Serving's gRPC PredictionService/Predict, with tensorflow-serving-api."""

    def __init__(self, target: str = DEFAULT_GRPC_TARGET, model: str = MODEL_NAME,
                 version: int | None = None, timeout: float = 30.0, label: str | None = None):
        import grpc
        from tensorflow_serving.apis import prediction_service_pb2_grpc

        self.target, self.model, self.version, self.timeout = target, model, version, timeout
        self.label = label
        self._grpc = grpc
        self._channel = grpc.insecure_channel(target, options=[
            ("grpc.max_send_message_length", GRPC_MAX_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", GRPC_MAX_MESSAGE_BYTES),
        ])
        self._stub = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self.last_version: int | None = None  # the version that gave the last answer

    def predict(self, serialized: Sequence[bytes]) -> list[float]:
        request = predict_request(serialized, self.model, SIGNATURE_NAME, self.version,
                                  self.label)
        try:
            response = self._stub.Predict(request, timeout=self.timeout)
        except self._grpc.RpcError as error:
            code, details = error.code(), (error.details() or "").strip()
            if code == self._grpc.StatusCode.UNAVAILABLE:
                raise ServerUnreachable(
                    f"cannot reach TF Serving at {self.target} (gRPC): "
                    f"{details.splitlines()[0] if details else 'unavailable'}; {START_HINT}"
                ) from None
            if code == self._grpc.StatusCode.DEADLINE_EXCEEDED:
                raise ServerUnreachable(
                    f"no answer from TF Serving at {self.target} (gRPC) within {self.timeout:g} s"
                ) from None
            raise ServerError(f"TF Serving answered {code.name}: {details}") from None
        if response.model_spec.HasField("version"):
            self.last_version = response.model_spec.version.value
        return probabilities_from_grpc(response, len(serialized))

    def close(self) -> None:
        self._channel.close()


def predict_all(client, examples: Sequence[bytes], batch_size: int,
                on_batch=None) -> list[float]:
    """Probabilities for every example, sending at most `batch_size` per request;
    `on_batch(start, probabilities)` sees each answer (the capture log)."""
    probabilities: list[float] = []
    for start in range(0, len(examples), batch_size):
        answer = client.predict(examples[start:start + batch_size])
        if on_batch is not None:
            on_batch(start, answer)
        probabilities.extend(answer)
    return probabilities


# --------------------------------------------------------------------------- CLI


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m serving.client",
        description="Send taxi rows to TF Serving and print one probability of a big tip per row.",
    )
    parser.add_argument("input", nargs="?", default="-",
                        help="CSV file with a header, or JSON lines; '-' or nothing: stdin")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--rest", metavar="URL", default=None,
                       help=f"REST endpoint (default: {DEFAULT_REST_URL})")
    where.add_argument("--grpc", metavar="HOST:PORT", default=None,
                       help=f"use gRPC instead, e.g. {DEFAULT_GRPC_TARGET}")
    parser.add_argument("--format", choices=("auto", "csv", "jsonl"), default="auto",
                        help="input format (default: guessed from the first line)")
    parser.add_argument("--model", default=MODEL_NAME, help="model name (default: %(default)s)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--version", type=int, default=None,
                       help="model version (default: the newest the server has)")
    which.add_argument("--label", default=None,
                       help="model version by label, e.g. stable or canary "
                            "(python -m serving.rollout)")
    parser.add_argument("--batch-size", type=int, default=MAX_BATCH_SIZE,
                        help="examples per request, at most the server's max_batch_size "
                             "(default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="seconds to wait for each answer (default: %(default)s)")
    parser.add_argument("--schema", default=str(DEFAULT_SCHEMA),
                        help="schema giving each column's type (default: schema/schema.pbtxt)")
    parser.add_argument("--capture", metavar="DIR", default=None,
                        help="log a sample of requests and answers to DIR (PredictionLog "
                             "TFRecords, see serving/capture.py) for python -m monitoring.check")
    parser.add_argument("--capture-rate", type=float, default=1.0,
                        help="share of rows logged (default: %(default)s)")
    parser.add_argument("--capture-id-column", metavar="NAME", default=None,
                        help="a column of row ids, logged with each row and not sent, to join "
                             "labels on later (monitoring.check --as-span)")
    args = parser.parse_args(argv)
    if not 0 < args.capture_rate <= 1:
        parser.error("--capture-rate must be in (0, 1]")
    if not 1 <= args.batch_size <= MAX_BATCH_SIZE:
        parser.error(f"--batch-size must be between 1 and {MAX_BATCH_SIZE} "
                     "(TF Serving rejects larger requests)")
    return args


def _read_lines(source: str) -> list[str]:
    if source == "-":
        return sys.stdin.read().splitlines(keepends=True)
    path = Path(source)
    if not path.is_file():
        raise ClientError(f"input not found: {source}")
    return path.read_text(encoding="utf-8").splitlines(keepends=True)


def run(args: argparse.Namespace, out: io.TextIOBase) -> int:
    columns = load_columns(args.schema)
    id_column = args.capture_id_column
    if id_column:  # read, logged, never sent
        columns[id_column] = Column(id_column, "bytes_list", serving=False)
    lines = _read_lines(args.input)
    fmt = args.format if args.format != "auto" else (
        "jsonl" if next((x for x in lines if x.strip()), "").lstrip().startswith("{") else "csv")
    examples, dropped = read_examples(lines, columns, fmt)
    dropped = [d for d in dropped if d != id_column]
    if dropped:
        print(f"note: not sent (not a serving input): {', '.join(dropped)}", file=sys.stderr)
    if not examples:
        raise ClientError("no rows to send")
    if args.grpc:
        client = GrpcClient(args.grpc, args.model, args.version, args.timeout, args.label)
    else:
        client = RestClient(args.rest or DEFAULT_REST_URL, args.model, args.version,
                            args.timeout, args.label)
    on_batch = writer = None
    if args.capture:
        from serving.capture import client_capture, row_ids

        ids = row_ids(lines, columns, fmt, id_column) if id_column else None
        on_batch, writer = client_capture(args, client, examples, ids)
    try:
        for probability in predict_all(client, examples, args.batch_size, on_batch):
            out.write(f"{probability:.6g}\n")
    finally:
        if writer is not None:
            writer.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return run(args, sys.stdout)
    except BadRows as error:
        for problem in error.problems[:MAX_REPORTED_BAD_ROWS]:
            print(f"error: {problem}", file=sys.stderr)
        hidden = len(error.problems) - MAX_REPORTED_BAD_ROWS
        if hidden > 0:
            print(f"error: ... and {hidden} more bad row(s)", file=sys.stderr)
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except ClientError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
