"""The columnar CSV-to-tf.Example conversion behind `csv_example_gen.Executor`.

Up to three passes over the CSV files, streamed in blocks of `BLOCK_BYTES` so
memory does not grow with the input (the design, and why, is in
`pipeline/components/csv_example_gen.py`): infer the type of each column the
schema does not type, over the whole column; encode each block as tf.Examples
and spill it to a random shard of its hash split; then write each shard
shuffled as gzipped TFRecord files. An empty cell becomes an empty value list,
as in TFX's CsvExampleGen.
"""

from __future__ import annotations

import csv
import hashlib
import os
import resource
import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import tensorflow as tf
from absl import logging
from tfx.dsl.io import fileio
from tfx_bsl.coders import example_coder

from pipeline.components import csv_lines
from pipeline.components.csv_lines import BadLine, find_bad_line
from pipeline.components.csv_shuffle import (
    SHUFFLE_MEMORY_BYTES,
    SHUFFLE_SEED,
    WORKERS,
    write_shuffled,
)

# CSV bytes pyarrow parses per step (about 65k taxi rows). Memory in pass 2
# holds up to `WORKERS + 1` such blocks with their serialized examples.
BLOCK_BYTES = 8 * 1024**2
# Spill files of pass 2, each a uniformly random subset of its split: files
# of `SHARD_BYTES` of CSV up to `MAX_SHARDS` per split; past that, more files
# of up to `SPILL_CSV_BYTES`, so pass 3 shuffles each one in memory (examples
# take about 4x the bytes of their CSV) instead of dealing it to pieces on
# disk first, which reads and writes every example once more; past
# `MAX_SPILL_FILES` per split (all are open at once), the files grow again
# and pass 3 deals them, still in bounded memory.
SHARD_BYTES = 4 * 1024**2
MAX_SHARDS = 64
SPILL_CSV_BYTES = SHUFFLE_MEMORY_BYTES // 5
MAX_SPILL_FILES = 1024
# Open files kept free for everything else of the process (Beam, TF, logs).
SPARE_OPEN_FILES = 256
# CsvExampleGen's types, in the order a column falls through them.
INT, FLOAT, STRING = pa.int64(), pa.float64(), pa.binary()
TYPE_ORDER = (INT, FLOAT, STRING)

T = TypeVar("T")
R = TypeVar("R")


def read_header(path: str) -> list[str]:
    """The column names of a CSV file, read as the preflight reads them
    (`csv_lines.read_header`: quotes removed, no UTF-8 byte-order mark)."""
    with fileio.open(path, "rb") as f:
        return csv_lines.read_header(csv.reader(csv_lines.decoded_lines(f, path)), path)


def shared_header(files: list[str]) -> list[str]:
    column_names = read_header(files[0])
    for path in files[1:]:
        if read_header(path) != column_names:
            raise RuntimeError(
                f"Files in the same split have different headers: {files[0]}, {path}."
            )
    return column_names


class SchemaContradiction(ValueError):
    """A value cannot be read as the type the schema gives its column."""


def convert(
    files: list[str],
    split_dirs: list[str],
    bucket_ends: np.ndarray,
    known_types: Mapping[str, pa.DataType] | None = None,
) -> list[int]:
    """Writes the rows of `files` to `split_dirs` (hash buckets up to each of
    `bucket_ends`); returns the number of rows in each split.

    Columns in `known_types` (the curated schema's types) are read as that
    type without a type pass; if a value contradicts it, every column is typed
    from its values after all (`schema_wins`), so the validation gate sees and
    names the change. Shards are spilled to the local temporary folder
    (TMPDIR), whatever file system the output is on: about as many bytes as
    the gzipped output.
    """
    column_names = shared_header(files)
    known = [(known_types or {}).get(name) for name in column_names]
    unknown = [name for name, to in zip(column_names, known, strict=True) if to is None]
    inferred = infer_types(files, column_names, unknown) if unknown else {}
    column_types = [
        inferred.get(name) if to is None else to
        for name, to in zip(column_names, known, strict=True)
    ]
    csv_bytes = sum(fileio.stat(f).length for f in files)
    shares = np.diff(bucket_ends, prepend=0) / bucket_ends[-1]
    shards = open_files_for(spill_files(csv_bytes * share) for share in shares)
    with tempfile.TemporaryDirectory(prefix="csv_example_gen-") as spill_dir:
        try:
            counts, spilled_bytes = spill(
                files, column_names, column_types, bucket_ends, shards, spill_dir
            )
        except SchemaContradiction as contradiction:
            logging.info("%s; typing every column from its values.", contradiction)
            inferred = infer_types(files, column_names, column_names)
            column_types = [
                schema_wins(inferred[name], to)
                for name, to in zip(column_names, known, strict=True)
            ]
            counts, spilled_bytes = spill(
                files, column_names, column_types, bucket_ends, shards, spill_dir
            )
        for split, split_dir in enumerate(split_dirs):
            fileio.makedirs(split_dir)
            write_shuffled(
                [_spill_path(spill_dir, split, k) for k in range(shards[split])],
                split_dir,
                spilled_bytes[split, : shards[split]].tolist(),
            )
    return counts


def spill_files(split_csv_bytes: float) -> int:
    """How many spill files pass 2 deals a split of `split_csv_bytes` of CSV to."""
    files = -(-split_csv_bytes // SHARD_BYTES)
    if files > MAX_SHARDS:
        files = min(MAX_SPILL_FILES, max(MAX_SHARDS, -(-split_csv_bytes // SPILL_CSV_BYTES)))
    return max(1, int(files))


def open_files_for(shards: Iterable[int]) -> list[int]:
    """`shards` (spill files per split), fewer in proportion when this process
    may not open them all at once: the soft limit on open files is first
    raised towards the hard one (often 1024 soft, far more hard)."""
    shards = list(shards)
    wanted = sum(shards) + SPARE_OPEN_FILES
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        raised = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
        soft = raised
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return shards
    room = max(len(shards), soft - SPARE_OPEN_FILES)
    return [max(1, n * room // sum(shards)) for n in shards]


def read_blocks(
    files: list[str], column_names: list[str], columns: list[str] | None = None
) -> Iterator[pa.RecordBatch]:
    """Every row of `files`, a block at a time, all cells as strings (null if
    empty); only `columns` if given (the others are parsed, not converted)."""
    for path in files:
        try:
            yield from _file_blocks(path, column_names, columns)
        except pa.ArrowInvalid as error:  # a ragged row, or bytes that are not UTF-8
            # Found again row by row, so only a bad file pays for the line number.
            with _open(path) as f:
                located = find_bad_line(f, path)
            if located:
                raise BadLine(located) from None
            raise ValueError(f"{path} is not valid CSV: {error}") from None


def _open(path: str):
    """A local path through Python's own file (faster line by line); others
    through TFX's fileio, so gs:// and other remote paths work too."""
    return open(path, "rb") if "://" not in path else fileio.open(path, "rb")


def _file_blocks(
    path: str, column_names: list[str], columns: list[str] | None
) -> Iterator[pa.RecordBatch]:
    # A local path lets pyarrow read natively.
    source = path if "://" not in path else fileio.open(path, "rb")
    reader = pa_csv.open_csv(
        source,
        read_options=pa_csv.ReadOptions(
            column_names=column_names, skip_rows=1, block_size=BLOCK_BYTES
        ),
        # Quoted cells may span lines, as CsvExampleGen allows.
        parse_options=pa_csv.ParseOptions(newlines_in_values=True, ignore_empty_lines=True),
        convert_options=pa_csv.ConvertOptions(
            column_types={name: pa.string() for name in column_names},
            strings_can_be_null=True,
            null_values=[""],
            quoted_strings_can_be_null=True,
            include_columns=columns,
        ),
    )
    try:
        yield from (batch for batch in reader if batch.num_rows)
    finally:
        reader.close()


def infer_types(
    files: list[str], column_names: list[str], columns: list[str]
) -> dict[str, pa.DataType | None]:
    """The type of each of `columns` over all rows of `files`, as CsvExampleGen
    infers it (None: empty in every row, a feature without a kind)."""
    level = [0] * len(columns)  # index into TYPE_ORDER; only ever grows
    seen = [False] * len(columns)
    for batch in read_blocks(files, column_names, columns):
        for i, column in enumerate(batch.columns):
            seen[i] = seen[i] or column.null_count < len(column)
            while level[i] < len(TYPE_ORDER) - 1 and not _casts(column, TYPE_ORDER[level[i]]):
                level[i] += 1
    return {
        name: TYPE_ORDER[lv] if s else None
        for name, lv, s in zip(columns, level, seen, strict=True)
    }


def schema_wins(inferred: pa.DataType | None, known: pa.DataType | None) -> pa.DataType | None:
    """A column's type when the schema says `known` and its values look like
    `inferred`: the schema's where every value reads as it (whole numbers in a
    FLOAT column, digits in a STRING one, or no value at all), else the
    values' (text in a FLOAT column stays text, for the gate to refuse)."""
    if known is None:
        return inferred
    if inferred is None or TYPE_ORDER.index(inferred) <= TYPE_ORDER.index(known):
        return known
    return inferred


def _casts(column: pa.Array, to: pa.DataType, sample_rows: int = 4096) -> bool:
    """Whether every value parses as `to`. A failed cast of a whole block costs
    more than one of its first rows, so those are tried first."""
    for values in (column.slice(0, sample_rows), column):
        try:
            pc.cast(values, to)
        except pa.ArrowInvalid:
            return False
    return True


def spill(
    files: list[str],
    column_names: list[str],
    column_types: list[pa.DataType | None],
    bucket_ends: np.ndarray,
    shards: list[int],
    spill_dir: str,
) -> tuple[list[int], np.ndarray]:
    """Pass 2: serialized examples of every row, spilled to a random shard of
    their split as Arrow files; returns the rows per split and the bytes of
    examples per spill file ([split, shard])."""
    encoder = example_coder.RecordBatchToExamplesEncoder()
    kindless = _kindless_features(column_names, column_types)
    shard_counts = np.array(shards)
    schema = pa.schema([("record", pa.large_binary())])
    options = pa.ipc.IpcWriteOptions(compression="lz4")
    writers = {
        (split, k): pa.ipc.new_stream(_spill_path(spill_dir, split, k), schema, options=options)
        for split, n in enumerate(shards)
        for k in range(n)
    }

    def prepare(numbered: tuple[int, pa.RecordBatch]) -> tuple[pa.Array, np.ndarray, np.ndarray]:
        number, batch = numbered
        records = encode(batch, column_types, encoder, kindless)
        split_of = split_by_hash(row_keys(batch), bucket_ends)
        # Seeded per block, so the shards are the same on every run.
        shard_of = np.random.default_rng([SHUFFLE_SEED, number]).integers(
            0, shard_counts[split_of]
        )
        return records, split_of, shard_of

    counts = np.zeros(len(shards), dtype=np.int64)
    width = max(shards)  # key of a (split, shard): split * width + shard
    spilled_bytes = np.zeros((len(shards), width), dtype=np.int64)
    try:
        blocks = enumerate(read_blocks(files, column_names))
        for records, split_of, shard_of in _bounded_map(prepare, blocks, WORKERS):
            order = np.lexsort((shard_of, split_of))
            grouped = records.take(pa.array(order))
            keys = split_of[order] * width + shard_of[order]
            bounds = np.flatnonzero(np.diff(keys)) + 1
            for start, end in zip(np.r_[0, bounds], np.r_[bounds, len(keys)], strict=True):
                split, k = divmod(int(keys[start]), width)
                writers[split, k].write_batch(
                    pa.record_batch([grouped.slice(start, end - start)], schema=schema)
                )
            counts += np.bincount(split_of, minlength=len(shards))
            lengths = np.asarray(pc.binary_length(grouped))
            spilled_bytes.flat += np.bincount(
                keys, weights=lengths, minlength=spilled_bytes.size
            ).astype(np.int64)
    finally:
        for writer in writers.values():
            writer.close()
    return counts.tolist(), spilled_bytes


def _spill_path(spill_dir: str, split: int, shard: int) -> str:
    return os.path.join(spill_dir, f"split-{split}-shard-{shard:05d}.arrows")


def _bounded_map(fn: Callable[[T], R], items: Iterable[T], workers: int) -> Iterator[R]:
    """`map(fn, items)` on `workers` threads, in order, with at most `workers + 1`
    results pending (ThreadPoolExecutor.map would read all of `items` at once).
    Threads help: pyarrow and tfx_bsl's encoder release the GIL for most of
    their work."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending = deque()
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) > workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def encode(
    batch: pa.RecordBatch,
    column_types: list[pa.DataType | None],
    encoder: example_coder.RecordBatchToExamplesEncoder | None = None,
    kindless: bytes = b"",
) -> pa.Array:
    """Serialized tf.Examples, one per row, with the given column types."""
    typed = [
        (name, _as_value_lists(_cast(column, to, name)))
        for name, column, to in zip(batch.schema.names, batch.columns, column_types, strict=True)
        if to is not None
    ]
    encoder = encoder or example_coder.RecordBatchToExamplesEncoder()
    if typed:
        names, arrays = zip(*typed, strict=True)
        records = encoder.encode(pa.RecordBatch.from_arrays(list(arrays), list(names)))
    else:
        records = [b""] * batch.num_rows
    if kindless:
        # Serialized protos concatenate into their merge: each example gains
        # the always-empty columns as features without a kind.
        records = [record + kindless for record in records]
    return pa.array(records, pa.large_binary())


def _kindless_features(
    column_names: list[str], column_types: list[pa.DataType | None]
) -> bytes:
    """CsvExampleGen's features for columns empty in every row: present, no kind."""
    empty = [name for name, to in zip(column_names, column_types, strict=True) if to is None]
    if not empty:
        return b""
    features = {name: tf.train.Feature() for name in empty}
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()


def _cast(column: pa.Array, to: pa.DataType, name: str = "") -> pa.Array:
    try:
        if to == FLOAT:
            # Through float64 so values round to float32 as Python's float() would.
            return pc.cast(pc.cast(column, FLOAT), pa.float32(), safe=False)
        return pc.cast(column, to)
    except pa.ArrowInvalid as error:
        raise SchemaContradiction(f"column {name} is not all {to}: {error}") from None


def _as_value_lists(values: pa.Array) -> pa.ListArray:
    """One-element lists, and an empty list where the cell was empty."""
    present = values.is_valid()
    offsets = np.zeros(len(values) + 1, dtype=np.int32)
    np.cumsum(np.asarray(present), out=offsets[1:])
    return pa.ListArray.from_arrays(pa.array(offsets), values.filter(present))


def row_keys(batch: pa.RecordBatch) -> list[bytes]:
    """Each row's cells joined by commas: what decides the row's split.

    Not the serialized example, as in the base executor: the C++ encoder
    writes features in an order that changes from call to call.
    """
    joined = pc.binary_join_element_wise(
        *batch.columns, ",", null_handling="replace", null_replacement=""
    )
    return joined.cast(pa.binary()).to_pylist()


def split_by_hash(keys: list[bytes], bucket_ends: np.ndarray) -> np.ndarray:
    """Each key's split, as BaseExampleGenExecutor does: sha256 of the key, bucketed."""
    total = int(bucket_ends[-1])
    buckets = [int.from_bytes(hashlib.sha256(key).digest(), "big") % total for key in keys]
    return np.searchsorted(bucket_ends, buckets, side="right")
