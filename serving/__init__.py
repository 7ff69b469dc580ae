"""Serve what the pipeline pushes with TensorFlow Serving.

The model's side of the serving contract (model name, signature, input and
output keys, warm-up file, batch limit) is defined once in `models.contract`
and re-exported here; below are the model server's own settings. The
pipeline's Pusher, the client, and the TF Serving configuration files in this
folder (checked by tests/test_serving_deploy.py) all use these, so they cannot
drift apart.
"""

from __future__ import annotations

from collections.abc import Sequence

from models.contract import (
    INPUT_KEY,
    MAX_BATCH_SIZE,
    MAX_WARMUP_RECORDS,
    MODEL_NAME,
    OUTPUT_KEY,
    SIGNATURE_NAME,
    WARMUP_FILE,
)

# The TF Serving release the compose file and Kubernetes manifests run; its
# TensorFlow must match the one the model is exported with (2.16).
TF_SERVING_IMAGE = "tensorflow/serving:2.16.1"
GRPC_PORT = 8500
REST_PORT = 8501
# Where the model server finds things inside its container.
CONFIG_DIR = "/config"
MODELS_DIR = "/models"
MODEL_BASE_PATH = f"{MODELS_DIR}/{MODEL_NAME}"
PROMETHEUS_PATH = "/monitoring/prometheus/metrics"


def predict_request(
    serialized: Sequence[bytes],
    model: str = MODEL_NAME,
    signature: str = SIGNATURE_NAME,
    version: int | None = None,
    label: str | None = None,
):
    """The gRPC PredictRequest: input `examples` as a 1-D DT_STRING tensor; the model
    version by number or by label (TF Serving's ModelSpec.version_label).

    Here, below the client and the capture log that both build it, so neither
    imports the other for it."""
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


__all__ = [
    "CONFIG_DIR",
    "GRPC_PORT",
    "INPUT_KEY",
    "MAX_BATCH_SIZE",
    "MAX_WARMUP_RECORDS",
    "MODELS_DIR",
    "MODEL_BASE_PATH",
    "MODEL_NAME",
    "OUTPUT_KEY",
    "PROMETHEUS_PATH",
    "REST_PORT",
    "SIGNATURE_NAME",
    "TF_SERVING_IMAGE",
    "WARMUP_FILE",
    "predict_request",
]
