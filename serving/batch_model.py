"""A pushed version scored in-process through its serving signature, a block at a time.

The model is loaded with TensorFlow alone (`tf.saved_model.load`) and called
through the very signature TF Serving serves (`serving_default`: serialized
tf.Examples -> probability), so a batch prediction is the prediction the
server would give. The tf.Examples are built inside TensorFlow, a whole block
at once, with `tf.io.encode_proto` (FloatList/Int64List/BytesList -> Feature ->
the Features map entries -> Example), instead of one Python protobuf object
per row: the Python side only hands over one array per column.

An absent cell leaves its feature out of that row's Example, as the client
does; entries are packed per row so absent ones are not written.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from serving import INPUT_KEY, OUTPUT_KEY, SIGNATURE_NAME
from serving.batch_input import Block
from serving.examples import Column

# Rows per call of the signature: large enough that TensorFlow's per-call cost
# vanishes, small enough that the parsed and transformed features stay small.
SCORE_BATCH_ROWS = 16384
_LIST_TYPES = {
    "float_list": ("tensorflow.FloatList", "float32"),
    "int64_list": ("tensorflow.Int64List", "int64"),
    "bytes_list": ("tensorflow.BytesList", "string"),
}


class BlockEncoder:
    """Blocks of typed columns -> serialized tf.Examples, inside TensorFlow."""

    def __init__(self, columns: list[Column]):
        import tensorflow as tf

        self.tf = tf
        self.columns = columns
        specs = [tf.TensorSpec([None], _LIST_TYPES[c.kind][1]) for c in columns]
        self.specs = specs + [tf.TensorSpec([None], tf.bool) for _ in columns]
        self._encode = tf.function(self._encode_examples, input_signature=self.specs)

    def _encode_examples(self, *tensors):
        """Serialized tf.Examples for columns (values..., present...) of one batch."""
        tf = self.tf
        count = len(self.columns)
        values, present = tensors[:count], tensors[count:]
        rows = tf.shape(values[0])[0] if count else 0
        ones = tf.ones([rows, 1], tf.int32)
        entries = []
        for column, value, here in zip(self.columns, values, present, strict=True):
            message, _ = _LIST_TYPES[column.kind]
            sizes = tf.cast(here, tf.int32)[:, None]
            typed_list = tf.io.encode_proto(sizes, [value[:, None]], ["value"], message)
            feature = tf.io.encode_proto(ones, [typed_list[:, None]], [column.kind],
                                         "tensorflow.Feature")
            keys = tf.fill([rows, 1], column.name)
            entries.append(tf.io.encode_proto(
                tf.ones([rows, 2], tf.int32), [keys, feature[:, None]], ["key", "value"],
                "tensorflow.Features.FeatureEntry"))
        entries = tf.stack(entries, axis=1)
        missing = tf.cast(tf.logical_not(tf.stack(present, axis=1)), tf.int32)
        order = tf.argsort(missing, axis=1, stable=True)  # present entries first
        packed = tf.gather(entries, order, batch_dims=1)
        counts = tf.reduce_sum(1 - missing, axis=1, keepdims=True)
        features = tf.io.encode_proto(counts, [packed], ["feature"], "tensorflow.Features")
        return tf.io.encode_proto(ones, [features[:, None]], ["features"], "tensorflow.Example")

    def _tensors(self, block: Block, start: int, stop: int) -> list:
        tensors = []
        for column in self.columns:
            if column.name in block.values:
                tensors.append(block.values[column.name][start:stop])
            else:  # a serving column the input does not have: absent everywhere
                kind = _LIST_TYPES[column.kind][1]
                tensors.append(np.full(stop - start, b"", object) if kind == "string"
                               else np.zeros(stop - start, kind))
        for column in self.columns:
            here = block.present.get(column.name)
            tensors.append(here[start:stop] if here is not None
                           else np.zeros(stop - start, bool))
        return [self.tf.constant(t) for t in tensors]

    def examples(self, block: Block, start: int = 0, stop: int | None = None) -> list[bytes]:
        """The serialized tf.Examples of a block's rows (what the signature is sent)."""
        stop = block.num_rows if stop is None else stop
        return list(self._encode(*self._tensors(block, start, stop)).numpy())

class Scorer(BlockEncoder):
    """One loaded pushed version, scoring blocks through its serving signature."""

    def __init__(self, version_dir: str, columns: list[Column]):
        super().__init__(columns)
        self.version_dir = version_dir
        self.model = self.tf.saved_model.load(version_dir)
        self.signature = self.model.signatures[SIGNATURE_NAME]
        self._score = self.tf.function(self._score_examples, input_signature=self.specs)

    def _score_examples(self, *tensors):
        examples = self._encode_examples(*tensors)
        return tf_reshape(self.tf, self.signature(**{INPUT_KEY: examples})[OUTPUT_KEY])

    def probabilities(self, block: Block) -> np.ndarray:
        """One probability per row of the block."""
        parts = [self._score(*self._tensors(block, start, min(start + SCORE_BATCH_ROWS,
                                                              block.num_rows))).numpy()
                 for start in range(0, block.num_rows, SCORE_BATCH_ROWS)]
        return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def tf_reshape(tf, probability):
    """The signature's [batch, 1] probability as [batch]."""
    return tf.reshape(probability, [-1])


def score_blocks(scorer: Scorer, blocks: Iterable[Block]) -> Iterator[tuple[Block, np.ndarray]]:
    """(block of input rows, their probabilities) for each block: the one place
    every scored row passes, for whatever else wants it (e.g. request capture)."""
    for block in blocks:
        yield block, scorer.probabilities(block)
