"""The client builds exactly TF Serving's documented requests (serving/server_api.py) and
reports bad input clearly.

Reference shapes: TF Serving's REST API (`POST /v1/models/<name>[/versions/<v>]:predict`,
row format with binary values as {"b64": ...}) and its gRPC API
(`tensorflow.serving.PredictionService/Predict`, `PredictRequest` from
tensorflow-serving-api).
"""

from __future__ import annotations

import base64
import json
import socket

import pytest

from models import contract
from serving import client, server_api

SCHEMA_COLUMNS = client.load_columns()
HEADER = (
    "pickup_community_area,fare,trip_start_month,trip_start_hour,trip_start_day,"
    "trip_start_timestamp,pickup_latitude,pickup_longitude,dropoff_latitude,dropoff_longitude,"
    "trip_miles,pickup_census_tract,dropoff_census_tract,payment_type,company,trip_seconds,"
    "dropoff_community_area,tips"
)
GOOD_ROW = ",12.45,5,19,6,1400269500,,,,,0.0,,,Credit Card,Taxi Affiliation Services,300,,0.0"


def parse_example(serialized: bytes):
    from tensorflow.core.example import example_pb2

    return example_pb2.Example.FromString(serialized)


# --------------------------------------------------------------------------- requests


def test_rest_body_is_tf_serving_row_format_with_base64_values():
    body = server_api.rest_body([b"first", b"\x00\xffbinary"])
    assert list(body) == ["signature_name", "instances"]
    assert body["signature_name"] == contract.SIGNATURE_NAME
    assert body["instances"] == [
        {"b64": base64.b64encode(b"first").decode("ascii")},
        {"b64": base64.b64encode(b"\x00\xffbinary").decode("ascii")},
    ]
    assert json.loads(json.dumps(body)) == body  # plain JSON, nothing else


def test_rest_url_is_the_documented_predict_path():
    assert server_api.rest_url("http://host:8501") == (
        f"http://host:8501/v1/models/{contract.MODEL_NAME}:predict")
    assert server_api.rest_url("http://host:8501/", version=7) == (
        f"http://host:8501/v1/models/{contract.MODEL_NAME}/versions/7:predict"
    )


def test_grpc_request_is_a_predict_request_field_by_field():
    from tensorflow.core.framework import types_pb2
    from tensorflow_serving.apis import predict_pb2

    request = server_api.predict_request([b"a", b"bc"])
    assert isinstance(request, predict_pb2.PredictRequest)
    assert request.DESCRIPTOR.full_name == "tensorflow.serving.PredictRequest"
    assert request.model_spec.name == contract.MODEL_NAME
    assert request.model_spec.signature_name == contract.SIGNATURE_NAME
    assert not request.model_spec.HasField("version")  # the newest version
    assert list(request.inputs) == [contract.INPUT_KEY]
    tensor = request.inputs[contract.INPUT_KEY]
    assert tensor.dtype == types_pb2.DT_STRING
    assert [d.size for d in tensor.tensor_shape.dim] == [2]
    assert not tensor.tensor_shape.unknown_rank
    assert list(tensor.string_val) == [b"a", b"bc"]
    assert tensor.tensor_content == b""
    assert list(request.output_filter) == [contract.OUTPUT_KEY]
    # Nothing else is set.
    assert {f.name for f, _ in request.ListFields()} == {"model_spec", "inputs", "output_filter"}
    assert {f.name for f, _ in request.model_spec.ListFields()} == {"name", "signature_name"}
    assert server_api.predict_request([b"a"], version=12).model_spec.version.value == 12


def test_grpc_method_is_prediction_service_predict():
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    class RecordingChannel:
        def __init__(self):
            self.methods = {}

        def unary_unary(self, method, request_serializer, response_deserializer):
            self.methods[method] = request_serializer
            return method

    channel = RecordingChannel()
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    assert stub.Predict == "/tensorflow.serving.PredictionService/Predict"
    request = server_api.predict_request([b"a"])
    assert channel.methods[stub.Predict](request) == request.SerializeToString()


def test_grpc_answers_are_read_in_either_tensor_encoding():
    import numpy as np
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    output = contract.OUTPUT_KEY
    packed = predict_pb2.PredictResponse()
    packed.outputs[output].CopyFrom(tf.make_tensor_proto(np.array([0.25, 0.5], "float32")))
    assert packed.outputs[output].tensor_content  # packed bytes
    listed = predict_pb2.PredictResponse()
    listed.outputs[output].CopyFrom(tf.make_tensor_proto([0.25, 0.5], tf.float32, [2]))
    listed.outputs[output].ClearField("tensor_content")
    listed.outputs[output].float_val.extend([0.25, 0.5])
    for response in (packed, listed):
        assert client.probabilities_from_grpc(response, 2) == [0.25, 0.5]
    with pytest.raises(client.ServerError, match=r"shape \[2\] for 3 examples"):
        client.probabilities_from_grpc(packed, 3)


def test_answers_are_read_as_one_probability_per_example():
    assert client.probabilities_from_rest({"predictions": [0.25, 0.5]}, 2) == [0.25, 0.5]
    assert client.probabilities_from_rest({"predictions": [[0.25], [0.5]]}, 2) == [0.25, 0.5]
    with pytest.raises(client.ServerError, match="expected 3 predictions"):
        client.probabilities_from_rest({"predictions": [0.25, 0.5]}, 3)
    with pytest.raises(client.ServerError, match="expected one number"):
        client.probabilities_from_rest({"predictions": [[0.1, 0.9]]}, 1)


# --------------------------------------------------------------------------- rows


def test_a_csv_row_becomes_an_example_typed_by_the_schema():
    examples, dropped = client.read_examples([HEADER + "\n", GOOD_ROW + "\n"], SCHEMA_COLUMNS)
    assert dropped == ["tips"]  # the label source is not a serving input
    features = parse_example(examples[0]).features.feature
    assert features["fare"].float_list.value == pytest.approx([12.45])
    assert list(features["trip_start_hour"].int64_list.value) == [19]
    assert list(features["trip_start_timestamp"].int64_list.value) == [1400269500]
    assert list(features["payment_type"].bytes_list.value) == [b"Credit Card"]
    assert "tips" not in features
    assert "pickup_latitude" not in features  # empty cell: absent, as in training data


def test_json_lines_become_the_same_examples_as_csv():
    csv_examples, _ = client.read_examples([HEADER + "\n", GOOD_ROW + "\n"], SCHEMA_COLUMNS)
    row = {
        "fare": 12.45, "trip_start_month": 5, "trip_start_hour": 19, "trip_start_day": 6,
        "trip_start_timestamp": 1400269500, "pickup_latitude": None, "trip_miles": 0.0,
        "payment_type": "Credit Card", "company": "Taxi Affiliation Services",
        "trip_seconds": 300, "tips": 0.0,
    }
    json_examples, _ = client.read_examples([json.dumps(row) + "\n"], SCHEMA_COLUMNS)
    assert parse_example(json_examples[0]) == parse_example(csv_examples[0])


def run_cli(capsys, *args: str, stdin: str | None = None, monkeypatch=None) -> tuple[int, str, str]:
    if stdin is not None:
        import io

        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = client.main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_bad_csv_rows_are_reported_by_line_and_nothing_is_sent(tmp_path, capsys):
    rows = [
        HEADER,
        GOOD_ROW,
        GOOD_ROW.replace("12.45", "twelve"),  # line 3: text in a FLOAT column
        GOOD_ROW.replace(",300,", ",300.5,"),  # line 4: a fraction in an INT column
        GOOD_ROW + ",extra",  # line 5: one field too many
        GOOD_ROW,
    ]
    path = tmp_path / "rows.csv"
    path.write_text("\n".join(rows) + "\n")
    # Port 9 (discard) is never contacted: the input is refused first.
    code, out, err = run_cli(capsys, str(path), "--rest", "http://127.0.0.1:9")
    assert code == 2
    assert out == ""
    assert err.splitlines() == [
        "error: line 3: column 'fare': 'twelve' is not a number",
        "error: line 4: column 'trip_seconds': '300.5' is not an integer",
        "error: line 5: 19 fields, but the header has 18",
        "error: 3 bad row(s); nothing was sent",
    ]


def test_an_unknown_csv_column_is_reported_on_the_header_line(tmp_path, capsys):
    path = tmp_path / "rows.csv"
    path.write_text(HEADER + ",driver_rating\n" + GOOD_ROW + ",5\n")
    code, _, err = run_cli(capsys, str(path))
    assert code == 2
    assert err.splitlines()[0] == "error: line 1: unknown column 'driver_rating'"


def test_bad_json_lines_are_reported_by_line(capsys, monkeypatch):
    lines = "\n".join([
        json.dumps({"fare": 10.0, "payment_type": "Cash"}),
        json.dumps({"fare": 10.0, "colour": "red"}),
        "",
        json.dumps({"fare": "ten", "payment_type": 3}),
        "{not json",
    ]) + "\n"
    code, out, err = run_cli(capsys, stdin=lines, monkeypatch=monkeypatch)
    assert code == 2 and out == ""
    assert err.splitlines() == [
        "error: line 2: unknown column 'colour'",
        "error: line 4: column 'fare': 'ten' is not a number",
        "error: line 4: column 'payment_type': expected text, got 3",
        "error: line 5: not JSON: Expecting property name enclosed in double quotes",
        "error: 4 bad row(s); nothing was sent",
    ]


# --------------------------------------------------------------------------- unreachable


@pytest.fixture()
def closed_port() -> int:
    """A local port with nothing listening on it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def rows_file(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text(HEADER + "\n" + GOOD_ROW + "\n")
    return path


def test_an_unreachable_rest_server_is_one_clear_line(capsys, closed_port, rows_file):
    url = f"http://127.0.0.1:{closed_port}"
    code, out, err = run_cli(capsys, str(rows_file), "--rest", url)
    assert code == 1 and out == ""
    lines = [line for line in err.splitlines() if not line.startswith("note:")]
    assert lines == [
        f"error: cannot reach TF Serving at {url} (REST): connection refused; "
        "is it running? (docker compose -f serving/docker-compose.yaml up)"
    ]


def test_an_unreachable_grpc_server_is_one_clear_line(capsys, closed_port, rows_file):
    target = f"127.0.0.1:{closed_port}"
    code, out, err = run_cli(capsys, str(rows_file), "--grpc", target, "--timeout", "10")
    assert code == 1 and out == ""
    lines = [line for line in err.splitlines() if not line.startswith("note:")]
    assert len(lines) == 1
    assert lines[0].startswith(f"error: cannot reach TF Serving at {target} (gRPC): ")
    assert lines[0].endswith("is it running? (docker compose -f serving/docker-compose.yaml up)")


def test_batch_size_cannot_exceed_the_server_max_batch_size(capsys):
    with pytest.raises(SystemExit) as exit_info:
        client.parse_args(["--batch-size", str(contract.MAX_BATCH_SIZE + 1)])
    assert exit_info.value.code == 2
    assert "TF Serving rejects larger requests" in capsys.readouterr().err


def test_a_version_label_is_tf_servings_labels_path_and_model_spec_field():
    assert server_api.rest_url("http://host:8501", label="stable") == (
        "http://host:8501/v1/models/chicago_taxi/labels/stable:predict")
    request = server_api.predict_request([b""], label="canary")
    assert request.model_spec.version_label == "canary"
    assert not request.model_spec.HasField("version")
    assert client.parse_args(["--label", "stable"]).label == "stable"
    with pytest.raises(SystemExit):
        client.parse_args(["--label", "stable", "--version", "3"])
