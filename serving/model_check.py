"""Would stock TF Serving load this SavedModel and answer its warm-up requests?

The pipeline's Pusher runs this module as a separate process before it pushes
(serving/serving_check.py):

    python -m serving.model_check MODEL_DIR [--probability-output probability]

Why a separate process: TF Serving is a C++ binary holding the ops of core
TensorFlow and nothing else. A model that needs an op registered by a Python
library (tensorflow-text, tensorflow-decision-forests, ...) loads fine in the
training process, where that library is imported, and fails in TF Serving.
This process imports only TensorFlow (and tensorflow-serving-api's protobuf
messages, to read the warm-up file as TF Serving reads it), so a model that
passes here needs nothing beyond core TensorFlow.

It checks what TF Serving does, in TF Serving's order:
  1. the MetaGraph tagged `serve` exists and holds the signature;
  2. every op of the graph and of its functions is registered in core
     TensorFlow, and none is a Python-callback op (tf.py_function, whose
     kernel is Python code that TF Serving does not have);
  3. the model loads the TF1 way TF Serving loads it (restore the variables,
     run the init op that fills the vocabulary tables from assets);
  4. every warm-up record is a valid Predict request for the signature, and the
     session answers it with one finite value per example (TF Serving replays
     these records before a version takes traffic, and fails the load if one
     fails or if there are more than 1000).
Finally it fails if one of the op-registering libraries got imported after
all, because then the check would prove nothing.

Prints one JSON line on stdout (`ok`, `reason`, measurements) and exits 0 when
the model passes, 1 when it does not. Of the project it imports only what
imports nothing itself (the serving contract, `metadata.errors`), so the
process holds TensorFlow and nothing that registers ops.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

from metadata.errors import first_line
from models.contract import MAX_WARMUP_RECORDS, SAVED_MODEL_FILE, SIGNATURE_NAME, WARMUP_FILE

SERVE_TAG = "serve"

# Ops that core TensorFlow registers but whose kernels call back into the
# Python interpreter of the process that built the graph.
PYTHON_CALLBACK_OPS = {
    "EagerPyFunc": "tf.py_function",
    "PyFunc": "tf.numpy_function / tf.compat.v1.py_func",
    "PyFuncStateless": "tf.numpy_function / tf.compat.v1.py_func",
}
# Python packages that register TensorFlow ops (or pull in packages that do)
# when imported. None may be imported here, or the check proves nothing.
OP_REGISTERING_PACKAGES = (
    "apache_beam",
    "sentencepiece",
    "struct2tensor",
    "tensorflow_addons",
    "tensorflow_decision_forests",
    "tensorflow_io",
    "tensorflow_model_analysis",
    "tensorflow_recommenders_addons",
    "tensorflow_text",
    "tensorflow_transform",
    "tf_keras",
    "tfx",
    "tfx_bsl",
)


class ModelCheckError(Exception):
    """The model would not load or answer in TF Serving; the message says why."""


def read_meta_graph(model_dir: str):
    """The MetaGraphDef TF Serving loads: the one tagged `serve`."""
    from tensorflow.core.protobuf import saved_model_pb2
    from tensorflow.io import gfile

    path = os.path.join(model_dir, SAVED_MODEL_FILE)
    if not gfile.exists(path):
        raise ModelCheckError(f"no saved_model.pb in {model_dir}")
    saved_model = saved_model_pb2.SavedModel()
    with gfile.GFile(path, "rb") as f:
        saved_model.ParseFromString(f.read())
    for meta_graph in saved_model.meta_graphs:
        if SERVE_TAG in meta_graph.meta_info_def.tags:
            return meta_graph
    raise ModelCheckError(f"no MetaGraph tagged '{SERVE_TAG}' (TF Serving loads only that one)")


def graph_ops(meta_graph) -> set[str]:
    """Every op type the graph and its function library use (calls excluded)."""
    graph = meta_graph.graph_def
    functions = {f.signature.name for f in graph.library.function}
    ops = {node.op for node in graph.node}
    for function in graph.library.function:
        ops.update(node.op for node in function.node_def)
    return ops - functions


def check_ops(ops: set[str]) -> None:
    """Fail unless core TensorFlow alone can run every op in `ops`."""
    from tensorflow.python.framework import op_def_registry

    unknown = sorted(op for op in ops if op_def_registry.get(op) is None)
    if unknown:
        raise ModelCheckError(
            f"ops not registered in core TensorFlow: {', '.join(unknown)} (a Python library "
            "registered them when the model was exported; stock TF Serving does not have them)"
        )
    callbacks = sorted(op for op in ops if op in PYTHON_CALLBACK_OPS)
    if callbacks:
        sources = ", ".join(f"{op} ({PYTHON_CALLBACK_OPS[op]})" for op in callbacks)
        raise ModelCheckError(
            f"the graph calls back into Python: {sources}; TF Serving has no Python to run it"
        )


def signature_def(meta_graph, name: str):
    if name not in meta_graph.signature_def:
        known = ", ".join(sorted(meta_graph.signature_def)) or "none"
        raise ModelCheckError(f"no signature '{name}' (the model has: {known})")
    return meta_graph.signature_def[name]


def load_session(model_dir: str):
    """A TF1 session with the model loaded as TF Serving loads it (tags {serve})."""
    import tensorflow as tf

    graph = tf.Graph()
    session = tf.compat.v1.Session(graph=graph)
    try:
        with graph.as_default():
            tf.compat.v1.saved_model.loader.load(session, [SERVE_TAG], model_dir)
    except Exception as error:  # noqa: BLE001 - any load failure is the answer
        session.close()
        raise ModelCheckError(f"loading failed: {first_line(error)}") from error
    return session


def read_warmup_records(path: str) -> list:
    """The PredictionLog records of a warm-up file, as TF Serving reads them."""
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    if not tf.io.gfile.exists(path):
        raise ModelCheckError(f"no warm-up file at {path}")
    records = []
    for number, raw in enumerate(tf.compat.v1.io.tf_record_iterator(path), start=1):
        if number > MAX_WARMUP_RECORDS:
            raise ModelCheckError(
                f"more than {MAX_WARMUP_RECORDS} warm-up records; TF Serving refuses the model"
            )
        log = prediction_log_pb2.PredictionLog()
        try:
            log.ParseFromString(raw)
        except Exception as error:  # noqa: BLE001 - protobuf raises DecodeError
            raise ModelCheckError(f"warm-up record {number} is not a PredictionLog") from error
        if log.WhichOneof("log_type") != "predict_log":
            raise ModelCheckError(f"warm-up record {number} is not a Predict request")
        records.append(log.predict_log.request)
    if not records:
        raise ModelCheckError(f"the warm-up file {path} holds no records")
    return records


def run_request(session, signature, request, number: int) -> tuple[int, dict]:
    """Answer one Predict request as TF Serving's Predict does: (batch size, outputs)."""
    import tensorflow as tf

    sent, expected = set(request.inputs), set(signature.inputs)
    if sent != expected:
        raise ModelCheckError(
            f"warm-up record {number}: inputs {sorted(sent)} do not match the signature's "
            f"{sorted(expected)}"
        )
    feeds, batch = {}, None
    for key, tensor in request.inputs.items():
        spec = signature.inputs[key]
        if tensor.dtype != spec.dtype:
            raise ModelCheckError(f"warm-up record {number}: input '{key}' has the wrong dtype")
        value = tf.make_ndarray(tensor)
        batch = value.shape[0] if value.ndim else 1
        feeds[spec.name] = value
    names = list(request.output_filter) or sorted(signature.outputs)
    unknown = [name for name in names if name not in signature.outputs]
    if unknown:
        raise ModelCheckError(f"warm-up record {number}: unknown outputs {unknown}")
    try:
        values = session.run([signature.outputs[n].name for n in names], feed_dict=feeds)
    except Exception as error:  # noqa: BLE001 - any run failure is the answer
        raise ModelCheckError(f"warm-up record {number} failed: {first_line(error)}") from error
    for name, value in zip(names, values, strict=True):
        if value.ndim == 0 or value.shape[0] != batch:
            raise ModelCheckError(
                f"warm-up record {number}: output '{name}' has shape {value.shape} "
                f"for a batch of {batch}"
            )
    return batch, dict(zip(names, values, strict=True))


def check_probabilities(values, output: str, number: int) -> None:
    """Fail unless every value of `output` is a probability."""
    if output not in values:
        raise ModelCheckError(f"warm-up record {number}: no output '{output}'")
    flat = [float(v) for v in values[output].reshape(-1)]
    bad = [v for v in flat if not (math.isfinite(v) and 0.0 <= v <= 1.0)]
    if bad:
        raise ModelCheckError(
            f"warm-up record {number}: '{output}' holds {len(bad)} values outside [0, 1], "
            f"e.g. {bad[0]}"
        )


def imported_op_libraries() -> list[str]:
    """Op-registering packages present in this process (should be none)."""
    return sorted(name for name in OP_REGISTERING_PACKAGES if name in sys.modules)


def check(
    model_dir: str, signature_name: str, warmup: str, probability_output: str | None
) -> dict:
    """Run every check; a dict of measurements, or ModelCheckError."""
    started = time.time()
    meta_graph = read_meta_graph(model_dir)
    signature = signature_def(meta_graph, signature_name)
    ops = graph_ops(meta_graph)
    check_ops(ops)
    requests = read_warmup_records(warmup)
    session = load_session(model_dir)
    loaded = time.time()
    examples, first_ms = 0, None
    try:
        for number, request in enumerate(requests, start=1):
            if request.model_spec.signature_name not in ("", signature_name):
                raise ModelCheckError(
                    f"warm-up record {number} asks for signature "
                    f"'{request.model_spec.signature_name}', not '{signature_name}'"
                )
            request_started = time.time()
            batch, values = run_request(session, signature, request, number)
            if first_ms is None:
                first_ms = (time.time() - request_started) * 1000
            if probability_output:
                check_probabilities(values, probability_output, number)
            examples += batch
    finally:
        session.close()
    libraries = imported_op_libraries()
    if libraries:
        raise ModelCheckError(
            f"the check process imported {', '.join(libraries)}, so it cannot vouch for "
            "a core-TensorFlow-only server"
        )
    return {
        "ops": len(ops),
        "warmup_records": len(requests),
        "examples": examples,
        "load_seconds": round(loaded - started, 3),
        "first_request_ms": round(first_ms or 0.0, 1),
        "seconds": round(time.time() - started, 3),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m serving.model_check",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", help="SavedModel directory (a version directory)")
    parser.add_argument("--signature", default=SIGNATURE_NAME)
    parser.add_argument("--warmup", default=None,
                        help=f"warm-up file (default: MODEL_DIR/{WARMUP_FILE})")
    parser.add_argument("--probability-output", default=None,
                        help="an output whose values must all lie in [0, 1]")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    warmup = args.warmup or os.path.join(args.model_dir, WARMUP_FILE)
    started = time.time()
    import tensorflow  # noqa: F401 - timed apart from the checks

    imported = time.time() - started
    try:
        result = {"ok": True, "reason": "", "import_seconds": round(imported, 3)}
        result.update(check(args.model_dir, args.signature, warmup, args.probability_output))
    except ModelCheckError as error:
        result = {"ok": False, "reason": str(error)}
    result["imported_op_libraries"] = imported_op_libraries()
    print(json.dumps(result), flush=True)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
