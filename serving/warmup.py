"""The warm-up file the Pusher writes into every pushed version.

TF Serving replays `assets.extra/tf_serving_warmup_requests` (PredictionLog
records) while it loads a version, so the first real request does not pay the
one-off cost of the first session run (docs/benchmarks.md). The requests are
real examples of the eval split as a client sends them (the label source
`tips` removed: `serving.examples.without_label`), one request per batch size
1, 2, 4, ... up to the batcher's max_batch_size.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from models import contract
from serving.server_api import predict_request

# Batch sizes of the warm-up requests: every power of two up to max_batch_size.
WARMUP_BATCH_SIZES: tuple[int, ...] = tuple(
    2**i for i in range(contract.MAX_BATCH_SIZE.bit_length()) if 2**i <= contract.MAX_BATCH_SIZE
)


def read_records(split_dir: str, limit: int) -> list[bytes]:
    """Up to `limit` serialized tf.Examples of a split folder, in file order."""
    import tensorflow as tf

    files = sorted(tf.io.gfile.glob(os.path.join(split_dir, "*")))
    records: list[bytes] = []
    for path in files:
        compression = "GZIP" if path.endswith(".gz") else ""
        for record in tf.data.TFRecordDataset(path, compression_type=compression):
            records.append(record.numpy())
            if len(records) >= limit:
                return records
    return records


def warmup_logs(examples: Sequence[bytes], batch_sizes: Sequence[int] = WARMUP_BATCH_SIZES):
    """One PredictionLog per batch size, filled with consecutive examples.

    Examples are reused from the start when there are fewer than the sizes
    add up to, so every batch size is still warmed up.
    """
    from tensorflow_serving.apis import prediction_log_pb2

    if not examples:
        raise ValueError("no examples to build warm-up requests from")
    if len(batch_sizes) > contract.MAX_WARMUP_RECORDS:
        raise ValueError(f"TF Serving reads at most {contract.MAX_WARMUP_RECORDS} warm-up records")
    logs, position = [], 0
    for size in batch_sizes:
        batch = [examples[(position + i) % len(examples)] for i in range(size)]
        position += size
        request = predict_request(batch, contract.MODEL_NAME, contract.SIGNATURE_NAME)
        logs.append(
            prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
        )
    return logs


def write_warmup(model_dir: str, logs) -> str:
    """Write `logs` as the model's TFRecord warm-up file; its path."""
    import tensorflow as tf

    path = os.path.join(model_dir, contract.WARMUP_FILE)
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.TFRecordWriter(path) as writer:
        for log in logs:
            writer.write(log.SerializeToString())
    return path
