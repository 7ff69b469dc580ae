"""Pass 3 of the streaming CsvExampleGen (csv_columns.py): each spilled file,
a uniformly random subset of its split, written as gzipped TFRecord shards in
a seeded random order, in memory bounded whatever the input size.

A spilled file up to `SHUFFLE_MEMORY_BYTES` of serialized examples is
shuffled in memory and cut into shards; pass 2 sizes its spill files so that
they fit (csv_columns.py). A larger one (past ~12 GiB of CSV in a split, when
pass 2 reaches its cap of open spill files per split) is first dealt
row by row to a random shard-sized file on disk, and each of those is
shuffled alone: dealing each row to an independent random piece, then
shuffling each piece, puts the rows in a uniformly random order across the
pieces, as shuffling the file whole would. So every output shard is a uniform
random subset of its split, in random order, and any set of shards, or the
first rows of one, is a uniform sample (sampling.py, the Trainer).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import tensorflow as tf
from tfx.components.example_gen import write_split

SHUFFLE_SEED = 0
WORKERS = os.cpu_count() or 1
# Output shards hold at most about this many bytes of serialized examples
# (~35k taxi rows): the grain of a sample (sampling.py); several shards also
# let Beam's workers share the reading (a gzip file cannot be split).
OUTPUT_SHARD_BYTES = 16 * 1024**2
# A spilled file up to this size is shuffled in memory (one per worker).
SHUFFLE_MEMORY_BYTES = 64 * 1024**2
# Records per TFRecord write loop (Python bytes objects alive at once).
WRITE_CHUNK = 8192
# Shard file names: <prefix>-00003-of-00064.gz
SHARD_DIGITS = 5


def write_shuffled(spilled: list[str], split_dir: str, spilled_bytes: list[int]) -> list[str]:
    """Each spilled file (with `spilled_bytes` of examples) as the same number
    of gzipped TFRecord shards of `split_dir`, at most about
    `OUTPUT_SHARD_BYTES` each; spilled files are removed once written."""
    pieces = max(1, -(-max(spilled_bytes, default=0) // OUTPUT_SHARD_BYTES))
    shards = len(spilled) * pieces
    name = write_split.DEFAULT_TF_RECORD_FILE_NAME
    paths = [
        os.path.join(split_dir, f"{name}-{i:0{SHARD_DIGITS}d}-of-{shards:0{SHARD_DIGITS}d}.gz")
        for i in range(shards)
    ]

    def write(k: int) -> None:
        rng = np.random.default_rng([SHUFFLE_SEED, k])
        outputs = paths[k * pieces : (k + 1) * pieces]
        if spilled_bytes[k] <= SHUFFLE_MEMORY_BYTES:
            records = _read_spilled(spilled[k])
            order = rng.permutation(len(records))
            for path, part in zip(outputs, np.array_split(order, pieces), strict=True):
                _write_records(path, records.take(pa.array(part)))
            return
        for path, piece in zip(outputs, _deal(spilled[k], pieces, rng), strict=True):
            records = _read_spilled(piece)
            _write_records(path, records.take(pa.array(rng.permutation(len(records)))))

    # One spilled file per worker at a time.
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        list(pool.map(write, range(len(spilled))))
    return paths


def _read_spilled(path: str) -> pa.Array:
    """A spilled file's records, the file removed."""
    with pa.ipc.open_stream(path) as reader:
        records = reader.read_all().column(0).combine_chunks()
    os.remove(path)
    return records


def _deal(path: str, pieces: int, rng: np.random.Generator) -> list[str]:
    """The records of spilled file `path`, each to a random one of `pieces`
    new spilled files beside it, a batch at a time; `path` is removed."""
    schema = pa.schema([("record", pa.large_binary())])
    options = pa.ipc.IpcWriteOptions(compression="lz4")
    paths = [f"{path}.{i}" for i in range(pieces)]
    writers = [pa.ipc.new_stream(p, schema, options=options) for p in paths]
    try:
        with pa.ipc.open_stream(path) as reader:
            for batch in reader:
                piece_of = rng.integers(0, pieces, batch.num_rows)
                order = np.argsort(piece_of, kind="stable")
                records = batch.column(0).take(pa.array(order))
                ends = np.cumsum(np.bincount(piece_of, minlength=pieces))
                for i, (start, end) in enumerate(zip(np.r_[0, ends[:-1]], ends, strict=True)):
                    if end > start:
                        writers[i].write_batch(
                            pa.record_batch([records.slice(start, end - start)], schema=schema)
                        )
    finally:
        for writer in writers:
            writer.close()
    os.remove(path)
    return paths


def _write_records(path: str, records: pa.Array) -> None:
    """`records` as a gzipped TFRecord file, a chunk of Python bytes at a time."""
    # zlib's fastest level: half the time of the default for files about
    # 1.3x as large, which downstream readers decompress faster.
    options = tf.io.TFRecordOptions(compression_type="GZIP", compression_level=1)
    with tf.io.TFRecordWriter(path, options) as writer:
        for start in range(0, len(records), WRITE_CHUNK):
            for record in records.slice(start, WRITE_CHUNK).to_pylist():
                writer.write(record)
