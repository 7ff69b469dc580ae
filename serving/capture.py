"""Log a sample of served requests and their answers, as TF Serving's own PredictionLog.

Open-source TF Serving cannot log requests (its `logging_config` needs a
request-logger that only Google's build provides), so whoever sends the
requests logs them: `serving.client --capture DIR`, a batch-prediction command
through `CaptureWriter.log(rows, probabilities)`, or the nginx sidecar
(`serving/proxy_log.py` reads what it writes). Each record is a
`tensorflow.serving.PredictionLog` holding a `PredictLog` (the request exactly
as sent, plus the answer and the version that gave it), the format of the
warm-up file the Pusher writes, so any TF Serving tooling reads it.

Files are TFRecords named `requests-<UTC time>-<pid>-<n>.tfrecord`, written as
`*.partial` and renamed when rotated (by size or age) or closed: a reader
(`read_captured`) never sees half a file. An id per row that the caller wants
to join labels on later (`monitoring.check --as-span`) is logged as the extra
request input `capture_ids`, which is never sent to the server: drop it before
replaying a record.
"""

from __future__ import annotations

import argparse
import os
import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from serving import INPUT_KEY, MODEL_NAME, OUTPUT_KEY, SIGNATURE_NAME
from serving.server_api import predict_request

ID_INPUT = "capture_ids"  # logged only: the caller's row ids
FILE_PREFIX = "requests-"
FILE_SUFFIX = ".tfrecord"
PARTIAL_SUFFIX = ".partial"
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_SECONDS = 3600.0


@dataclass
class Captured:
    """Logged rows, one entry per row in every list."""

    examples: list[bytes] = field(default_factory=list)
    probabilities: list[float | None] = field(default_factory=list)
    versions: list[int | None] = field(default_factory=list)
    ids: list[str | None] = field(default_factory=list)

    def extend(self, other: Captured) -> None:
        self.examples += other.examples
        self.probabilities += other.probabilities
        self.versions += other.versions
        self.ids += other.ids


def _serialized(row: object, columns) -> bytes:
    """A row as a serialized tf.Example: bytes as they are, a proto, or a dict of raw values."""
    if isinstance(row, bytes):
        return row
    if hasattr(row, "SerializeToString"):
        return row.SerializeToString()
    if isinstance(row, dict):
        from serving.examples import row_values, to_example

        problems: list = []
        values = row_values(row, columns, 0, problems)
        if values is None:
            raise ValueError(problems[0].message)
        return to_example(values, columns)
    raise TypeError(f"cannot log a row of type {type(row).__name__}")


def prediction_log(examples: Sequence[bytes], probabilities: Sequence[float],
                   model: str = MODEL_NAME, version: int | None = None,
                   ids: Sequence[str] | None = None, sampling_rate: float = 1.0):
    """One PredictionLog: the request as sent, the probabilities answered, the version."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    request = predict_request(list(examples), model, SIGNATURE_NAME, version)
    if ids is not None:
        request.inputs[ID_INPUT].CopyFrom(
            tf.make_tensor_proto([str(i).encode("utf-8") for i in ids], dtype=tf.string))
    response = predict_pb2.PredictResponse()
    response.model_spec.name, response.model_spec.signature_name = model, SIGNATURE_NAME
    if version is not None:
        response.model_spec.version.value = int(version)
    # As TF Serving answers by default: the values in float_val, not tensor_content.
    answer = tf.make_tensor_proto(0.0, dtype=tf.float32, shape=[len(probabilities)])
    del answer.float_val[:]
    answer.float_val.extend(float(p) for p in probabilities)
    response.outputs[OUTPUT_KEY].CopyFrom(answer)
    log = prediction_log_pb2.PredictionLog(
        predict_log=prediction_log_pb2.PredictLog(request=request, response=response))
    log.log_metadata.model_spec.CopyFrom(response.model_spec)
    log.log_metadata.sampling_config.sampling_rate = sampling_rate
    return log


def checked_rate(rate: float) -> float:
    """A share of rows to log, which must be in (0, 1]."""
    if not 0.0 < rate <= 1.0:
        raise ValueError(f"sample rate must be in (0, 1], got {rate}")
    return rate


def _rate_option(text: str) -> float:
    try:
        return checked_rate(float(text))
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_cli_options(parser: argparse.ArgumentParser, id_column_help: str) -> None:
    """--capture, --capture-rate and --capture-id-column, as every command that
    scores rows (serving.client, serving.batch_predict) offers them."""
    parser.add_argument("--capture", metavar="DIR", default=None,
                        help="log a sample of rows and their probabilities to DIR as TF Serving "
                             "PredictionLogs (serving/capture.py), for python -m monitoring.check")
    parser.add_argument("--capture-rate", type=_rate_option, default=1.0,
                        help="share of rows --capture logs (default: %(default)s)")
    parser.add_argument("--capture-id-column", metavar="COLUMN", default=None,
                        help=id_column_help)


class CaptureWriter:
    """Appends a random sample of rows to rotating TFRecord files of PredictionLogs.

    `sample_rate` is the share of rows kept (each row drawn independently, so
    statistics of the log describe the traffic); a file is closed and a new one
    started past `max_bytes` or `max_seconds`. Use as a context manager, or
    call `close()`: until then the current file is `*.partial`.
    """

    def __init__(self, folder: str | os.PathLike, sample_rate: float = 1.0,
                 max_bytes: int = DEFAULT_MAX_BYTES, max_seconds: float = DEFAULT_MAX_SECONDS,
                 model: str = MODEL_NAME, seed: int | None = None, clock=time.time):
        self.folder, self.sample_rate = Path(folder), checked_rate(sample_rate)
        self.max_bytes, self.max_seconds, self.model = max_bytes, max_seconds, model
        self._random, self._clock = random.Random(seed), clock
        self._writer = self._path = None
        self._opened, self._bytes, self._count = 0.0, 0, 0
        self.folder.mkdir(parents=True, exist_ok=True)
        self._columns = None

    def log(self, rows: Iterable[object], probabilities: Sequence[float],
            version: int | None = None, ids: Sequence[object] | None = None) -> int:
        """Log the sampled share of `rows` (serialized or proto tf.Examples, or dicts of
        raw values typed by the schema) with their answers; the number of rows logged."""
        rows = rows if isinstance(rows, Sequence) else list(rows)  # indexed where sampled
        if len(rows) != len(probabilities) or (ids is not None and len(ids) != len(rows)):
            raise ValueError(f"{len(rows)} rows but {len(probabilities)} probabilities"
                             + ("" if ids is None else f" and {len(ids)} ids"))
        keep = [i for i in range(len(rows)) if self._random.random() < self.sample_rate]
        if not keep:
            return 0
        if self._columns is None and any(isinstance(rows[i], dict) for i in keep):
            from serving.examples import load_columns

            self._columns = load_columns()
        log = prediction_log(
            [_serialized(rows[i], self._columns) for i in keep],
            [probabilities[i] for i in keep], self.model, version,
            None if ids is None else [ids[i] for i in keep], self.sample_rate)
        self._write(log.SerializeToString())
        return len(keep)

    def _write(self, record: bytes) -> None:
        import tensorflow as tf

        if self._writer is not None and (
            self._bytes >= self.max_bytes or self._clock() - self._opened >= self.max_seconds
        ):
            self._finish()
        if self._writer is None:
            self._count += 1
            stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(self._clock()))
            name = f"{FILE_PREFIX}{stamp}-{os.getpid()}-{self._count}{FILE_SUFFIX}"
            self._path = self.folder / name
            self._writer = tf.io.TFRecordWriter(str(self._path) + PARTIAL_SUFFIX)
            self._opened, self._bytes = self._clock(), 0
        self._writer.write(record)
        self._writer.flush()
        self._bytes += len(record) + 16  # TFRecord framing: length, two CRCs

    def _finish(self) -> None:
        self._writer.close()
        os.replace(str(self._path) + PARTIAL_SUFFIX, self._path)
        self._writer = None

    def close(self) -> None:
        if self._writer is not None:
            self._finish()

    def __enter__(self) -> CaptureWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# --------------------------------------------------------------------------- serving.client


def row_ids(lines: Sequence[str], columns: dict, fmt: str,
            id_column: str) -> list[str | None]:
    """The id column's value of each row, in the order read_examples reads the rows."""
    from serving.examples import csv_rows, json_rows

    problems: list = []
    rows = json_rows(lines, problems) if fmt == "jsonl" else csv_rows(lines, columns, problems)
    return [None if cells.get(id_column) in (None, "") else str(cells[id_column])
            for _, cells in rows]


def client_capture(args, client, examples: Sequence[bytes], ids: list[str | None] | None):
    """The on_batch callback logging each answered batch to --capture, and the writer."""
    writer = CaptureWriter(args.capture, args.capture_rate)
    version = client.served_version() if hasattr(client, "served_version") else None

    def on_batch(start: int, probabilities: list[float]) -> None:
        batch = examples[start:start + len(probabilities)]
        writer.log(batch, probabilities, version or getattr(client, "last_version", None),
                   None if ids is None else ids[start:start + len(probabilities)])

    return on_batch, writer


def from_prediction_log(log) -> Captured:
    """The rows of one PredictionLog (a predict log; other kinds hold no rows here)."""
    import tensorflow as tf

    result = Captured()
    if log.WhichOneof("log_type") != "predict_log":
        return result
    request, response = log.predict_log.request, log.predict_log.response
    if INPUT_KEY not in request.inputs:
        return result
    examples = list(tf.make_ndarray(request.inputs[INPUT_KEY]).reshape(-1))
    n = len(examples)
    probabilities: list[float | None] = [None] * n
    if OUTPUT_KEY in response.outputs:
        values = tf.make_ndarray(response.outputs[OUTPUT_KEY]).reshape(-1)
        if values.size == n:
            probabilities = [float(v) for v in values]
    spec = response.model_spec if response.HasField("model_spec") else request.model_spec
    version = spec.version.value if spec.HasField("version") else None
    ids: list[str | None] = [None] * n
    if ID_INPUT in request.inputs:
        ids = [i.decode("utf-8") for i in tf.make_ndarray(request.inputs[ID_INPUT]).reshape(-1)]
    return Captured(examples, probabilities, [version] * n, ids)


def capture_files(folder: str | os.PathLike) -> list[Path]:
    """The finished capture files of `folder` (client TFRecords and proxy logs), oldest first."""
    from serving.proxy_log import is_proxy_log

    folder = Path(folder)
    found = [p for p in folder.rglob("*") if p.is_file()
             and (p.name.endswith(FILE_SUFFIX) or is_proxy_log(p.name))]
    return sorted(found, key=lambda p: (p.stat().st_mtime, p.name))


def read_captured(folder: str | os.PathLike) -> Captured:
    """Every row logged in `folder`: client/batch TFRecords and nginx sidecar logs alike."""
    import tensorflow as tf

    from serving.proxy_log import is_proxy_log, read_proxy_log

    result = Captured()
    for path in capture_files(folder):
        if is_proxy_log(path.name):
            logs = (prediction_log(*call) for call in read_proxy_log(path))
        else:
            from tensorflow_serving.apis import prediction_log_pb2

            logs = (prediction_log_pb2.PredictionLog.FromString(r)
                    for r in tf.data.TFRecordDataset(str(path)).as_numpy_iterator())
        for log in logs:
            result.extend(from_prediction_log(log))
    return result
