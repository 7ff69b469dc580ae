"""Serve what the pipeline pushes with TensorFlow Serving.

The names and numbers below are the serving contract. The pipeline's Pusher,
the client, and the TF Serving configuration files in this folder (checked by
tests/test_serving_deploy.py) all use these, so they cannot drift apart.
"""

from __future__ import annotations

from pipeline.configs import MODEL_NAME

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

# The exported model's serving signature (see models/signatures.py).
SIGNATURE_NAME = "serving_default"
INPUT_KEY = "examples"
OUTPUT_KEY = "probability"

# TF Serving rejects a request holding more examples than the batcher's
# max_batch_size (batching_parameters.txt), so the client never sends more.
MAX_BATCH_SIZE = 256
# Warm-up requests live here inside a SavedModel; TF Serving replays them
# before a version takes traffic and refuses a file of more than 1000 records.
WARMUP_FILE = "assets.extra/tf_serving_warmup_requests"
MAX_WARMUP_RECORDS = 1000

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
]
