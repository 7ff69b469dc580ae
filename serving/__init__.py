"""Serve what the pipeline pushes with TensorFlow Serving.

The model's side of the serving contract (model name, signature, input and
output keys, warm-up file, batch limit) is defined once in `models.contract`
and re-exported here; below are the model server's own settings. The
pipeline's Pusher, the client, and the TF Serving configuration files in this
folder (checked by tests/test_serving_deploy.py) all use these, so they cannot
drift apart.
"""

from __future__ import annotations

from models.contract import (
    INPUT_KEY,
    MAX_BATCH_SIZE,
    MAX_WARMUP_RECORDS,
    MODEL_NAME,
    OUTPUT_KEY,
    SAVED_MODEL_FILE,
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
    "SAVED_MODEL_FILE",
    "SIGNATURE_NAME",
    "TF_SERVING_IMAGE",
    "WARMUP_FILE",
]
