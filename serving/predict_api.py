"""TF Serving's Predict API, as this model is called: the REST URL and body, and
the gRPC `PredictRequest`.

The shapes are TF Serving's documented ones: REST `POST
/v1/models/<name>[/versions/<v>]:predict` with `{"signature_name": ...,
"instances": [{"b64": <serialized tf.Example>}, ...]}`, and gRPC
`tensorflow.serving.PredictionService/Predict` with a `PredictRequest` whose
input `examples` is a 1-D DT_STRING tensor. The client sends them, the capture
log and the Pusher's warm-up file record them; none of those needs the
client's command line to build one.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

from models.contract import INPUT_KEY, MODEL_NAME, OUTPUT_KEY, SIGNATURE_NAME


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
