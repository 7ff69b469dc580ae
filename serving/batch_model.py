"""A pushed version scored in-process through its serving signature, a block at a time.

The model is loaded with TensorFlow alone (`tf.saved_model.load`) and called
through the very signature TF Serving serves (`serving_default`: serialized
tf.Examples -> probability), so a batch prediction is the prediction the
server would give. The tf.Examples of a batch are written at once by
`serving/example_bytes.py` (vectorized numpy, no protobuf object per row): an
absent cell leaves its feature out of that row's Example, as the client does.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator

import numpy as np

from serving import INPUT_KEY, OUTPUT_KEY, SIGNATURE_NAME, example_bytes
from serving.batch_input import Block
from serving.examples import Column

# Rows per call of the signature: large enough that TensorFlow's per-call cost
# vanishes, small enough that the parsed and transformed features stay small.
SCORE_BATCH_ROWS = 16384


class BlockEncoder:
    """Blocks of typed columns -> serialized tf.Examples for a fixed list of serving columns."""

    def __init__(self, columns: list[Column]):
        self.columns = columns

    def examples(self, block: Block, start: int = 0, stop: int | None = None) -> np.ndarray:
        """The serialized tf.Examples of rows [start, stop) (what the signature is sent)."""
        stop = block.num_rows if stop is None else stop
        parts = []
        for column in self.columns:
            if column.name in block.values:
                values = block.values[column.name][start:stop]
                present = block.present[column.name][start:stop]
            else:  # a serving column the input does not have: absent everywhere
                values, present = np.zeros(stop - start), np.zeros(stop - start, bool)
                if column.kind == "bytes_list":
                    values = np.full(stop - start, b"", object)
            parts.append((column.name, column.kind, values, present))
        return example_bytes.encode(parts)


class Scorer(BlockEncoder):
    """One loaded pushed version, scoring blocks through its serving signature."""

    def __init__(self, version_dir: str, columns: list[Column]):
        import tensorflow as tf

        super().__init__(columns)
        self.tf = tf
        self.version_dir = version_dir
        started = time.perf_counter()
        self.model = tf.saved_model.load(version_dir)
        self.signature = self.model.signatures[SIGNATURE_NAME]
        # Where the time goes, reported by batch_predict.
        self.seconds = {"load": time.perf_counter() - started, "encode": 0.0, "model": 0.0}

    def probabilities(self, block: Block) -> np.ndarray:
        """One probability per row of the block."""
        parts = []
        for start in range(0, block.num_rows, SCORE_BATCH_ROWS):
            began = time.perf_counter()
            examples = self.examples(block, start, min(start + SCORE_BATCH_ROWS, block.num_rows))
            encoded = time.perf_counter()
            output = self.signature(**{INPUT_KEY: self.tf.constant(examples)})[OUTPUT_KEY]
            parts.append(output.numpy().reshape(-1))
            self.seconds["encode"] += encoded - began
            self.seconds["model"] += time.perf_counter() - encoded
        return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def score_blocks(scorer: Scorer, blocks: Iterable[Block]) -> Iterator[tuple[Block, np.ndarray]]:
    """(block of input rows, their probabilities) for each block: the one place
    every scored row passes, for whatever else wants it (e.g. request capture)."""
    for block in blocks:
        yield block, scorer.probabilities(block)
