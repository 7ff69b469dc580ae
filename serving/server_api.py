"""TF Serving's APIs as this project calls them: predict requests, and which
versions a server has loaded.

The shapes are TF Serving's documented ones: REST `POST
/v1/models/<name>[/versions/<v>]:predict` with `{"signature_name": ...,
"instances": [{"b64": <serialized tf.Example>}, ...]}`, gRPC
`tensorflow.serving.PredictionService/Predict` with a `PredictRequest` whose
input `examples` is a 1-D DT_STRING tensor, and REST `GET
/v1/models/<name>[/versions/<v>]` for the model's status. The client sends
requests, the capture log and the Pusher's warm-up file record them, and the
client and the rollout ask for the status; none of those needs the client's
command line to do it.
"""

from __future__ import annotations

import base64
import json
import urllib.request
from collections.abc import Sequence

from models.contract import INPUT_KEY, MODEL_NAME, OUTPUT_KEY, SIGNATURE_NAME


def available_versions(base_url: str, model: str = MODEL_NAME, version: int | None = None,
                       timeout: float = 30.0) -> set[int]:
    """The versions the server reports AVAILABLE (REST model status), only `version`
    if given; empty when it cannot be asked or answers with something else."""
    url = rest_url(base_url, model, version).removesuffix(":predict")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            statuses = json.loads(answer.read()).get("model_version_status", [])
        return {int(s["version"]) for s in statuses if s.get("state") == "AVAILABLE"}
    except (OSError, ValueError, AttributeError, KeyError, TypeError):
        return set()


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


def predict_request(
    serialized: Sequence[bytes],
    model: str = MODEL_NAME,
    signature: str = SIGNATURE_NAME,
    version: int | None = None,
    label: str | None = None,
):
    """The gRPC PredictRequest: input `examples` as a 1-D DT_STRING tensor; the model
    version by number or by label (TF Serving's ModelSpec.version_label)."""
    from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = version
    if label is not None:
        request.model_spec.version_label = label
    request.inputs[INPUT_KEY].CopyFrom(
        tensor_pb2.TensorProto(
            dtype=types_pb2.DT_STRING,
            tensor_shape=tensor_shape_pb2.TensorShapeProto(
                dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=len(serialized))]
            ),
            string_val=list(serialized),
        )
    )
    request.output_filter.append(OUTPUT_KEY)
    return request
