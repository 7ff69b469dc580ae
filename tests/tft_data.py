"""Raw rows for unit tests, typed by the curated schema, and a real tf.Transform run."""

from __future__ import annotations

import csv
import itertools
import tempfile
from pathlib import Path

import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import metadata_io, schema_utils
from tfx.utils import io_utils

from models import preprocessing

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_PATH = ROOT / "schema" / "schema.pbtxt"
DATA_PATH = ROOT / "data" / "data.csv"


def raw_feature_spec() -> dict:
    schema = io_utils.SchemaReader().read(str(SCHEMA_PATH))
    return schema_utils.schema_as_feature_spec(schema).feature_spec


def typed_row(row: dict[str, str], spec: dict) -> dict[str, list]:
    """A CSV row as a tf.Transform instance dict: empty cells become empty lists."""
    typed = {}
    for name, feature in spec.items():
        cell = row.get(name, "")
        if cell == "":
            typed[name] = []
        elif feature.dtype == tf.int64:
            typed[name] = [int(float(cell))]
        elif feature.dtype == tf.float32:
            typed[name] = [float(cell)]
        else:
            typed[name] = [cell.encode()]
    return typed


def csv_rows(limit: int) -> list[dict[str, list]]:
    spec = raw_feature_spec()
    with open(DATA_PATH, newline="") as f:
        reader = csv.DictReader(f)
        return [typed_row(row, spec) for row in itertools.islice(reader, limit)]


def to_example(row: dict[str, list]) -> bytes:
    """A raw instance dict as a serialized tf.Example (absent features left out)."""
    feature = {}
    for name, values in row.items():
        if not values:
            continue
        if isinstance(values[0], bytes):
            feature[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=values))
        elif isinstance(values[0], int):
            feature[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=values))
        else:
            feature[name] = tf.train.Feature(float_list=tf.train.FloatList(value=values))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def analyze_and_transform(rows: list[dict], output_dir: str | None = None):
    """Run the real preprocessing_fn over `rows` with tf.Transform on Beam.

    Returns the transformed rows; when `output_dir` is given the transform
    graph is written there too (a TFTransformOutput directory).
    """
    spec = raw_feature_spec()
    metadata = tft.DatasetMetadata.from_feature_spec(spec)
    rows = [{key: row.get(key, []) for key in spec} for row in rows]
    with tft_beam.Context(temp_dir=tempfile.mkdtemp()):
        (transformed, _), transform_fn = (rows, metadata) | tft_beam.AnalyzeAndTransformDataset(
            preprocessing.preprocessing_fn
        )
        if output_dir:
            _ = transform_fn | tft_beam.WriteTransformFn(output_dir)
            # TFX's Transform also records the raw schema; serving needs it.
            metadata_io.write_metadata(
                metadata, str(Path(output_dir) / tft.TFTransformOutput.RAW_METADATA_DIR)
            )
    return transformed
