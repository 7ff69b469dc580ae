"""A streaming, columnar executor for CsvExampleGen: same output, bounded memory.

TFX's CsvExampleGen builds every tf.train.Example in a Python loop, a few
dozen microseconds per row, then hashes and writes each record through Beam:
on large inputs that is more than the rest of the data processing, and Beam's
direct runner holds gigabytes per worker (measurements: docs/benchmarks.md).
This executor does the same job with columnar libraries TFX already depends
on (the conversion is in `csv_columns.py`), streaming the CSV in blocks of
`BLOCK_BYTES`, so its memory does not grow with the input:

1. Types. A column the curated schema types (`schema_file`) is read as that
   type: `tips` written as `0` and `5` in one file is FLOAT, as the schema
   says, not INT, so the validation gate refuses only real type changes.
   Only the other columns need a type pass: pyarrow reads every block (cells
   as strings) and each such column gets the type CsvExampleGen would give it
   over the *whole* column: INT if every value parses as an integer, else
   FLOAT if every value parses as a number, else STRING. A column can only
   move down that list, so one pass that keeps the current type per column,
   block by block, decides it; a float in the last block still makes the
   whole column FLOAT. A column that is empty in every row gets
   CsvExampleGen's kind-less feature. When every column is in the schema, as
   in this pipeline, there is no type pass. If a value contradicts its
   column's schema type (text in `fare`), pass 2 is done again after a type
   pass over every column, and the schema's type is kept only where every
   value reads as it: the gate then sees the file's real types and names the
   column.
2. Examples. pyarrow reads the blocks again; each is cast to those types,
   serialized by tfx_bsl's C++ encoder (an empty cell becomes an empty value
   list, as in CsvExampleGen), sent to a split by a hash of the row's cells as
   in the base executor, and to a random shard of that split. Shards are
   spilled to temporary Arrow files as blocks come.
3. Shuffle. Each spilled shard (a uniformly random subset of its split) is
   read back, put in a seeded random order and written as gzipped TFRecord
   files of at most about 16 MiB of examples each, the layout downstream
   components read (`csv_shuffle.py`: a spilled shard too large to shuffle in
   memory is first dealt at random into shard-sized files on disk). Shard
   order and row order are both random, so the first rows of a split are a
   uniform sample of it: the Trainer and FeatureSelection read only a prefix.

Memory holds a few blocks in pass 2 and, in pass 3, at most 64 MiB of
examples per worker, whatever the input size: spilled shards are sized to
be shuffled in memory (their count follows the input size, up to
`MAX_SPILL_FILES` per split) and output shards stay small, which is also the
grain of a sample (sampling.py).

This executor is for Beam's direct runner on one machine. With a distributed
runner (Dataflow, Flink, Spark, portable...) in the Beam flags, and for
configurations it does not implement (partitioning by a feature, Parquet
output, other payload formats), the stock Beam executor runs instead, so the
cluster spreads the work over its workers whatever the input size.

Both paths drop a UTF-8 byte-order mark in front of a file's header, which
spreadsheet programs write and TFX's header reader would keep as part of the
first column's name, and both let the schema's types win in the same way
(`schema_wins`).

Rows land in the same splits on every run, but not in the same ones as with
the stock executor, which hashes the serialized example.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
from collections.abc import Iterable
from typing import Any

import apache_beam as beam
import numpy as np
import pyarrow as pa
from absl import logging
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx import types
from tfx.components.example_gen import utils as example_gen_utils
from tfx.components.example_gen import write_split
from tfx.components.example_gen.csv_example_gen import component as stock_component
from tfx.components.example_gen.csv_example_gen import executor as stock_executor
from tfx.components.util import examples_utils
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_artifacts, standard_component_specs
from tfx.types.component_spec import ExecutionParameter
from tfx.utils import io_utils, proto_utils
from tfx_bsl.coders import csv_decoder

from pipeline.components import tfx_internals
from pipeline.components.beam_runner import is_local_runner
from pipeline.components.csv_columns import (
    FLOAT,
    INT,
    STRING,
    convert,
    read_header,
    schema_wins,
)

# On the output Examples: 1 when every shard of a split is a uniform random
# subset of it, so any set of shards is a uniform sample (sampling.py).
SHUFFLED_SHARDS_PROPERTY = "shuffled_shards"
# On the output Examples: {split name: rows}.
SPLIT_ROWS_PROPERTY = "split_rows"
INPUT_BASE_PROPERTY = "input_base"
# Parameters: the curated schema whose column types win, and its digest (so an
# edited schema re-runs ExampleGen, as in schema_import.py).
SCHEMA_FILE_KEY = "schema_file"
SCHEMA_SHA256_KEY = "schema_sha256"
# The schema's types, and TFX's CSV column types, as the types of csv_columns.py.
SCHEMA_TYPES = {schema_pb2.INT: INT, schema_pb2.FLOAT: FLOAT, schema_pb2.BYTES: STRING}
CSV_TYPES = {
    csv_decoder.ColumnType.INT: INT,
    csv_decoder.ColumnType.FLOAT: FLOAT,
    csv_decoder.ColumnType.STRING: STRING,
}


class Executor(stock_executor.Executor):
    """CsvExampleGen's executor with a streaming, columnar path for local runs."""

    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        input_config = example_gen_pb2.Input()
        proto_utils.json_to_proto(
            exec_properties[standard_component_specs.INPUT_CONFIG_KEY], input_config
        )
        output_config = example_gen_pb2.Output()
        proto_utils.json_to_proto(
            exec_properties[standard_component_specs.OUTPUT_CONFIG_KEY], output_config
        )
        input_base = exec_properties[standard_component_specs.INPUT_BASE_KEY]
        files_by_split = {
            split.name: _glob(input_base, split.pattern) for split in input_config.splits
        }
        reason = stock_executor_reason(
            self._beam_pipeline_args, exec_properties, output_config, files_by_split
        )
        if reason:
            logging.info("Using the stock Beam CsvExampleGen executor: %s.", reason)
            super().Do(input_dict, output_dict, exec_properties)
            return
        logging.info("Using the streaming columnar CsvExampleGen executor.")

        examples = artifact_utils.get_single_instance(
            output_dict[standard_component_specs.EXAMPLES_KEY]
        )
        split_names = example_gen_utils.generate_output_split_names(input_config, output_config)
        examples.split_names = artifact_utils.encode_split_names(split_names)
        split_dirs = [artifact_utils.get_split_uri([examples], name) for name in split_names]
        known = schema_column_types(exec_properties.get(SCHEMA_FILE_KEY))
        if output_config.split_config.splits:
            (files,) = files_by_split.values()
            buckets = np.cumsum([s.hash_buckets for s in output_config.split_config.splits])
            counts = convert(files, split_dirs, buckets, known)
        else:
            counts = [
                count
                for files, split_dir in zip(files_by_split.values(), split_dirs, strict=True)
                for count in convert(files, [split_dir], np.array([1]), known)
            ]
        release_memory()
        for name, count in zip(split_names, counts, strict=True):
            logging.info("Wrote %d examples to split %s.", count, name)
        examples.set_int_custom_property(SHUFFLED_SHARDS_PROPERTY, 1)
        examples.set_string_custom_property(INPUT_BASE_PROPERTY, input_base)  # the model card
        examples.set_json_value_custom_property(
            SPLIT_ROWS_PROPERTY, dict(zip(split_names, map(int, counts), strict=True))
        )

        examples_utils.set_payload_format(examples, example_gen_pb2.FORMAT_TF_EXAMPLE)
        examples_utils.set_file_format(
            examples, write_split.to_file_format_str(example_gen_pb2.FORMAT_TFRECORDS_GZIP)
        )

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
        """The stock path's CSV reader, with the header read as `read_header` does."""
        return _CsvToExampleWithoutBom


class _CsvToExampleWithoutBom(stock_executor._CsvToExample):
    """TFX's CSV-to-Example transform, reading headers without a byte-order mark
    and typing columns as the schema says where the values allow (the header
    reader and type inferrer are swapped for the duration of `expand` only).
    `_CsvToExample` is private to TFX: declared in tfx_internals.INTERNALS."""

    def __init__(self, exec_properties: dict[str, Any], split_pattern: str):
        super().__init__(exec_properties, split_pattern)
        self._known = schema_column_types(exec_properties.get(SCHEMA_FILE_KEY))

    def expand(self, pipeline: beam.Pipeline) -> beam.pvalue.PCollection:
        inferrer = functools.partial(SchemaTypedInferrer, known=self._known)
        with (
            tfx_internals.csv_header_reader(read_header),
            tfx_internals.csv_column_type_inferrer(inferrer),
        ):
            return super().expand(pipeline)


class SchemaTypedInferrer(csv_decoder.ColumnTypeInferrer):
    """tfx_bsl's CSV type inference, then `schema_wins` for the schema's columns."""

    def __init__(self, column_names: list[str], skip_blank_lines: bool, known: dict):
        super().__init__(column_names, skip_blank_lines=skip_blank_lines)
        self._known = known

    def extract_output(self, accumulator: dict) -> list[csv_decoder.ColumnInfo]:
        by_type = {to: kind for kind, to in CSV_TYPES.items()}
        return [
            info._replace(type=by_type.get(
                schema_wins(CSV_TYPES.get(info.type), self._known.get(info.name)), info.type
            ))
            for info in super().extract_output(accumulator)
        ]


def schema_column_types(schema_file: str | None) -> dict[str, Any]:
    """{column: type} for every feature the schema file types ({} without one)."""
    if not schema_file:
        return {}
    schema = io_utils.parse_pbtxt_file(schema_file, schema_pb2.Schema())
    return {f.name: SCHEMA_TYPES[f.type] for f in schema.feature if f.type in SCHEMA_TYPES}


def release_memory() -> None:
    """Give memory the conversion freed back to the system. A local run
    executes ExampleGen in the runner's own process, which lives on beside
    the Beam workers of the later components; freed but kept memory would
    count in the run's peak."""
    pa.default_memory_pool().release_unused()
    with contextlib.suppress(OSError, AttributeError):  # not glibc
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def stock_executor_reason(
    beam_pipeline_args: Iterable[str],
    exec_properties: dict[str, Any],
    output_config: example_gen_pb2.Output,
    files_by_split: dict[str, list[str]],
) -> str:
    """Why the stock Beam executor must run ("" if the columnar path applies)."""
    if not is_local_runner(beam_pipeline_args):
        return "a distributed Beam runner spreads the work over its workers"
    payload = exec_properties.get(standard_component_specs.OUTPUT_DATA_FORMAT_KEY)
    if payload not in (None, example_gen_pb2.FORMAT_TF_EXAMPLE):
        return f"payload format {payload}"
    file_format = exec_properties.get(standard_component_specs.OUTPUT_FILE_FORMAT_KEY)
    if file_format not in (
        None,
        example_gen_pb2.FILE_FORMAT_UNSPECIFIED,
        example_gen_pb2.FORMAT_TFRECORDS_GZIP,
    ):
        return f"file format {file_format}"
    if output_config.split_config.HasField("partition_feature_name"):
        return "splitting by a feature"
    if output_config.split_config.splits and len(files_by_split) != 1:
        return "several input splits with an output split config"
    return ""


def _glob(input_base: str, pattern: str) -> list[str]:
    files = sorted(fileio.glob(os.path.join(input_base, pattern)))
    if not files:
        raise RuntimeError(
            f"Split pattern {os.path.join(input_base, pattern)} does not match any files."
        )
    return files


class CsvExampleGenSpec(standard_component_specs.FileBasedExampleGenSpec):
    """CsvExampleGen's parameters plus the schema whose types win, and its digest."""

    PARAMETERS = {
        **standard_component_specs.FileBasedExampleGenSpec.PARAMETERS,
        SCHEMA_FILE_KEY: ExecutionParameter(type=str, optional=True),
        SCHEMA_SHA256_KEY: ExecutionParameter(type=str, optional=True),
    }


# The class was named CsvExampleGen; ML Metadata and every cache key know its
# nodes by that type name (tfx_internals.recorded_as).
@tfx_internals.recorded_as("pipeline.components.csv_example_gen.CsvExampleGen")
class StreamingCsvExampleGen(stock_component.CsvExampleGen):
    """TFX's CsvExampleGen (same outputs) with the streaming executor above,
    reading the columns `schema_file` types as that type."""

    SPEC_CLASS = CsvExampleGenSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)

    def __init__(
        self,
        input_base: str,
        input_config: example_gen_pb2.Input,
        output_config: example_gen_pb2.Output,
        schema_file: str | None = None,
        schema_sha256: str | None = None,
    ):
        optional = {SCHEMA_FILE_KEY: schema_file, SCHEMA_SHA256_KEY: schema_sha256}
        spec = CsvExampleGenSpec(
            input_base=input_base,
            input_config=input_config,
            output_config=output_config,
            custom_config=None,
            range_config=None,
            # The stock component's defaults.
            output_data_format=example_gen_pb2.FORMAT_TF_EXAMPLE,
            output_file_format=example_gen_pb2.FORMAT_TFRECORDS_GZIP,
            examples=types.Channel(type=standard_artifacts.Examples),
            **{key: value for key, value in optional.items() if value is not None},
        )
        # The stock __init__ builds the stock spec, which has no schema; the
        # class stays a FileBasedExampleGen, which Kubeflow V2 compiles as an
        # ExampleGen (an internal: tfx_internals.INTERNALS).
        base_beam_component.BaseBeamComponent.__init__(self, spec=spec)
