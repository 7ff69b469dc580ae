"""Read a uniform sample of a split's examples, whatever order they were written in.

The Trainer and FeatureSelection hold a bounded number of a split's rows in
memory. When ExampleGen marked the split's rows as being in random order (the
streaming executor's shuffled shards, pipeline/components/csv_example_gen.py),
its first rows are a uniform sample and reading a prefix costs only those
rows. Any other split promises no order: TFX's stock executor, which runs
under distributed Beam runners, may write rows in the input files' order, so
a prefix could hold only the first days of the data or a single label. There
every row is read and each kept with the same probability, max_rows / rows:
a uniform sample again, at the cost of a pass over the split (two when
ExampleGen recorded no row count). The Beam components (StatisticsGen,
Transform, the Evaluator) sample whole shards instead, and only of marked
splits (pipeline/components/sampling.py); both decide from the same
`SplitLayout`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

# In the Trainer's custom_config, set by its executor (pipeline/components/sampling.py):
# {split name: SplitLayout's fields}.
SPLIT_LAYOUTS_KEY = "split_layouts"
# ExampleGen's output (both executors): gzipped TFRecord files of tf.Examples.
COMPRESSION = "GZIP"
_PARALLEL_READS = 4


@dataclass(frozen=True)
class SplitLayout:
    """How a split was written. The default, knowing nothing, is the safe one."""

    shuffled: bool = False  # rows in random order (ExampleGen's mark): a prefix is uniform
    rows: int | None = None  # the split's rows, when ExampleGen recorded them


def layouts(custom_config: Mapping | None) -> dict[str, SplitLayout]:
    """{split: SplitLayout} the Trainer's executor put in `custom_config` ({} if none)."""
    found = (custom_config or {}).get(SPLIT_LAYOUTS_KEY) or {}
    return {split: SplitLayout(**fields) for split, fields in found.items()}


def _files(patterns: Iterable[str]) -> list[str]:
    files = sorted(f for pattern in patterns for f in tf.io.gfile.glob(pattern))
    if not files:
        raise ValueError(f"no example files match {list(patterns)}")
    return files


def _records(files: list[str]) -> tf.data.Dataset:
    return tf.data.TFRecordDataset(
        files, compression_type=COMPRESSION, num_parallel_reads=_PARALLEL_READS
    )


def count_records(files: list[str]) -> int:
    """Records in `files` (decompressed, not parsed)."""
    return int(_records(files).reduce(np.int64(0), lambda count, _: count + 1))


def sample_records(
    patterns: Iterable[str], max_rows: int | None, layout: SplitLayout, seed: int = 0
) -> tf.data.Dataset:
    """Serialized examples of the split in `patterns`: every one when `max_rows`
    is None or the split holds no more; else a uniform sample of about
    `max_rows` (exactly `max_rows`, its first rows, when the split is shuffled).
    The same files and seed give the same sample."""
    files = _files(patterns)
    records = _records(files)
    if max_rows is None:
        return records
    if layout.shuffled:
        return records.take(max_rows)
    rows = layout.rows if layout.rows is not None else count_records(files)
    if rows <= max_rows:
        return records
    share = max_rows / rows

    def kept(index: tf.Tensor, _record: tf.Tensor) -> tf.Tensor:
        key = tf.stack([tf.constant(seed, tf.int64), index])
        return tf.random.stateless_uniform([], seed=key, dtype=tf.float64) < share

    return records.enumerate().filter(kept).map(lambda _index, record: record)
