"""The serving contract: what the exported model promises and what its users rely on.

The trainer exports these signatures, the Evaluator scores through them, the
Pusher writes warm-up requests for them, and the client and TF Serving's
configuration (serving/) call them. Each name is defined here once, so none
of those places can drift from the others.

A leaf module: it imports nothing from the project and no TensorFlow, so the
serving client, the report and the tests can read it without loading a model
library.
"""

from __future__ import annotations

# TF Serving model name: <serving base>/<MODEL_NAME>/<version>.
MODEL_NAME = "chicago_taxi"

# The signature TF Serving and every client call: a 1-D string tensor
# INPUT_KEY of serialized tf.Examples (raw columns, no label) ->
# OUTPUT_KEY, the probability of a big tip, one float per example.
SIGNATURE_NAME = "serving_default"
INPUT_KEY = "examples"
OUTPUT_KEY = "probability"
# The Evaluator's preprocessing signature: raw examples including the label
# source -> transformed features including the label.
TRANSFORM_SIGNATURE_NAME = "transform_features"

# The SavedModel's graph: a version folder holding it is complete (the Pusher
# copies it last where it cannot rename atomically; readers wait for it).
SAVED_MODEL_FILE = "saved_model.pb"
# Files the trainer and the Pusher put beside the SavedModel, in assets.extra/.
EXTRA_ASSETS_DIR = "assets.extra"
# The input contract in words and column types, for people and tools.
INPUT_SPEC_FILE = f"{EXTRA_ASSETS_DIR}/input_spec.json"
# The model card the Pusher writes into every pushed version (Markdown, and JSON beside it).
MODEL_CARD_FILE = f"{EXTRA_ASSETS_DIR}/model_card.md"
MODEL_CARD_JSON = f"{EXTRA_ASSETS_DIR}/model_card.json"
# Warm-up requests: TF Serving replays them before a version takes traffic
# and refuses a file of more than MAX_WARMUP_RECORDS records.
WARMUP_FILE = f"{EXTRA_ASSETS_DIR}/tf_serving_warmup_requests"
MAX_WARMUP_RECORDS = 1000
# TF Serving rejects a request holding more examples than the batcher's
# max_batch_size (serving/batching_parameters.txt): clients send no more,
# and the Pusher's warm-up requests go up to exactly this size.
MAX_BATCH_SIZE = 256
