"""The model version that answered the requests, and what it was trained and evaluated on.

Found through ML Metadata's lineage (`review.lineage.model_lineage`): the
PushedModel of that version -> the Pusher -> the model -> upstream to the
StatisticsGen whose train split the model was trained on and the ExampleGen
whose eval split it was evaluated on. The eval split's probabilities, the
reference for the served ones, are computed once per version with the pushed
SavedModel itself and cached under `<output-dir>/monitoring/`.
"""

from __future__ import annotations

import glob
import os
from collections import Counter
from dataclasses import dataclass

import numpy as np
from tensorflow_metadata.proto.v0 import statistics_pb2

from metadata import names
from metadata.artifacts import load_statistics
from metadata.graph import MetadataGraph
from review.lineage import LineageError, model_lineage

EVAL_ROWS = 20_000  # eval examples scored for the reference probabilities, at most
_BATCH = 1024


@dataclass
class ServedModel:
    version: str
    model_dir: str
    pushed_id: int  # the PushedModel artifact in ML Metadata
    training: statistics_pb2.DatasetFeatureStatisticsList  # train split
    eval_examples: list[str]  # the eval split's files
    how: str  # how the version was chosen, in words


def answering_version(versions: list[int | None], wanted: str | None) -> tuple[str | None, str]:
    """(version, how it was chosen): --version, else the one that answered most rows."""
    if wanted:
        return str(wanted), f"version {wanted} (given with --version)"
    known = Counter(v for v in versions if v is not None)
    if not known:
        return None, "the newest pushed version (the log does not say which version answered)"
    version, count = known.most_common(1)[0]
    share = count / len(versions)
    return str(version), f"version {version}, which answered {share:.0%} of the logged rows"


def _output_uri(lineage, component: str, key: str) -> str:
    step = lineage.step(component)
    if step is None or not step.outputs.get(key):
        raise LineageError(f"the lineage of version {lineage.version} has no {component} {key}")
    return step.outputs[key][0].uri


def served_model(graph: MetadataGraph, version: str | None, how: str) -> ServedModel:
    """The served version's training statistics and eval data; LineageError if unknown."""
    lineage = model_lineage(graph, version)
    splits = load_statistics(_output_uri(lineage, names.STATISTICS_GEN, "statistics"))
    if "train" not in splits:
        raise LineageError(f"no train statistics recorded for version {lineage.version}")
    training = statistics_pb2.DatasetFeatureStatisticsList(datasets=[splits["train"]])
    examples = _output_uri(lineage, names.EXAMPLE_GEN, "examples")
    return ServedModel(
        version=lineage.version, model_dir=lineage.destination, pushed_id=lineage.pushed.id,
        training=training, how=how if version else f"version {lineage.version}, {how}",
        eval_examples=sorted(glob.glob(os.path.join(examples, "Split-eval", "*"))),
    )


def eval_probabilities(model: ServedModel, cache_dir: str) -> np.ndarray | None:
    """The served model's probabilities on (up to EVAL_ROWS of) its eval split, cached."""
    path = os.path.join(cache_dir, f"eval_probabilities-{model.version}.npy")
    if os.path.exists(path):
        return np.load(path)
    if not model.eval_examples or not os.path.isdir(model.model_dir):
        return None
    import tensorflow as tf

    from models import contract
    from serving.examples import without_label

    serve = tf.saved_model.load(model.model_dir).signatures[contract.SIGNATURE_NAME]
    records = tf.data.TFRecordDataset(model.eval_examples, compression_type="GZIP")
    rows = [without_label(r) for r in records.take(EVAL_ROWS).as_numpy_iterator()]
    values = np.concatenate([
        serve(examples=tf.constant(rows[i:i + _BATCH]))[contract.OUTPUT_KEY].numpy().reshape(-1)
        for i in range(0, len(rows), _BATCH)
    ]) if rows else np.array([])
    os.makedirs(cache_dir, exist_ok=True)
    np.save(path + ".tmp.npy", values)
    os.replace(path + ".tmp.npy", path)
    return values
