"""A split without ExampleGen's shuffled mark is never read as a prefix.

TFX's stock CsvExampleGen executor (the one distributed Beam runners use)
promises no row order and sets no mark; the worst case it allows is rows in
the input files' order. Here the split is written sorted (by hour, and by
label), so a prefix would hold only early hours or one label: FeatureSelection
and the Trainer must read a uniform sample of it, and a prefix only of a
split that carries the mark.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from tfx.types import artifact_utils, standard_artifacts
from tfx.utils import io_utils

from models import split_reader
from pipeline.components import csv_example_gen, sampling
from pipeline.components import feature_selection as fs
from tests.tft_data import SCHEMA_PATH, csv_rows, to_example

ROWS = 3000
HOUR = "trip_start_hour"

# What the Trainer's executor handed run_fn (see `_record_layouts`).
_SEEN: list[dict] = []


def _write_split(uri: str, split: str, rows: list[dict], files: int = 3) -> None:
    """`rows` in this order, as gzipped TFRecord files of a split, in file order."""
    split_dir = os.path.join(uri, f"Split-{split}")
    os.makedirs(split_dir)
    options = tf.io.TFRecordOptions(compression_type="GZIP")
    for i, chunk in enumerate(np.array_split(np.arange(len(rows)), files)):
        name = f"data_tfrecord-{i:05d}-of-{files:05d}.gz"
        with tf.io.TFRecordWriter(os.path.join(split_dir, name), options) as writer:
            for index in chunk:
                writer.write(to_example(rows[index]))


def _hour(row: dict) -> int:
    return row[HOUR][0] if row[HOUR] else -1


@pytest.fixture(scope="module")
def sorted_rows() -> list[dict]:
    """The shipped rows, sorted by hour: a prefix holds only the early hours."""
    return sorted(csv_rows(ROWS), key=_hour)


def _examples(root: Path, rows: list[dict], marked: bool) -> standard_artifacts.Examples:
    examples = standard_artifacts.Examples()
    examples.uri = str(root)
    examples.split_names = artifact_utils.encode_split_names(["train", "eval"])
    _write_split(examples.uri, "train", rows)
    _write_split(examples.uri, "eval", rows[:50])
    if marked:  # as the streaming executor records it
        examples.set_int_custom_property(csv_example_gen.SHUFFLED_SHARDS_PROPERTY, 1)
        examples.set_json_value_custom_property(
            csv_example_gen.SPLIT_ROWS_PROPERTY, {"train": len(rows), "eval": 50})
    return examples


def test_the_layout_comes_from_example_gens_mark(tmp_path, sorted_rows):
    unmarked = _examples(tmp_path / "a", sorted_rows[:10], marked=False)
    marked = _examples(tmp_path / "b", sorted_rows[:10], marked=True)
    assert sampling.split_layout(unmarked, "train") == split_reader.SplitLayout(False, None)
    assert sampling.split_layout(marked, "train") == split_reader.SplitLayout(True, 10)


def _hours(table) -> np.ndarray:
    values, present = fs._column(table, HOUR)
    return values[present]


def test_feature_selection_samples_an_unmarked_split_uniformly(tmp_path, sorted_rows):
    schema = io_utils.SchemaReader().read(str(SCHEMA_PATH))
    examples = _examples(tmp_path, sorted_rows, marked=False)
    table = fs._read_table(examples, schema, max_rows=ROWS // 4)
    every = np.array([_hour(r) for r in sorted_rows if r[HOUR]])
    prefix = every[: ROWS // 4]
    assert prefix.max() < np.median(every)  # what a prefix would have measured
    hours = _hours(table)
    assert 0.8 * ROWS / 4 < table.num_rows < 1.2 * ROWS / 4
    assert abs(np.median(hours) - np.median(every)) <= 1
    assert hours.max() == every.max() and hours.min() == every.min()
    again = fs._read_table(examples, schema, max_rows=ROWS // 4)
    np.testing.assert_array_equal(_hours(again), hours)  # the same sample each time


def test_feature_selection_reads_a_prefix_of_a_marked_split(tmp_path, sorted_rows):
    schema = io_utils.SchemaReader().read(str(SCHEMA_PATH))
    examples = _examples(tmp_path, sorted_rows, marked=True)
    table = fs._read_table(examples, schema, max_rows=ROWS // 4)
    assert table.num_rows == ROWS // 4


def test_a_small_unmarked_split_is_read_whole(tmp_path, sorted_rows):
    examples = _examples(tmp_path, sorted_rows[:100], marked=False)
    pattern = io_utils.all_files_pattern(artifact_utils.get_split_uri([examples], "train"))
    records = split_reader.sample_records([pattern], 500, split_reader.SplitLayout())
    assert sum(1 for _ in records) == 100


def _record_layouts(fn_args) -> None:
    """A run_fn that writes an empty model and keeps what it was told."""
    _SEEN.append(split_reader.layouts(fn_args.custom_config))
    tf.io.gfile.makedirs(fn_args.serving_model_dir)


def test_the_trainer_tells_run_fn_how_each_split_was_written(tmp_path, sorted_rows):
    for name, marked in (("unmarked", False), ("marked", True)):
        examples = _examples(tmp_path / name, sorted_rows[:20], marked=marked)
        model, model_run = standard_artifacts.Model(), standard_artifacts.ModelRun()
        model.uri, model_run.uri = str(tmp_path / name / "model"), str(tmp_path / name / "run")
        _SEEN.clear()
        sampling.TrainerExecutor().Do(
            {"examples": [examples]},
            {"model": [model], "model_run": [model_run]},
            {"run_fn": f"{__name__}._record_layouts", "train_args": '{"num_steps": 1}',
             "eval_args": '{"num_steps": 1}', "custom_config": json.dumps({"seed": 3})},
        )
        (layouts,) = _SEEN
        rows = {"train": 20, "eval": 50} if marked else {"train": None, "eval": None}
        assert layouts == {s: split_reader.SplitLayout(marked, rows[s]) for s in rows}


def test_the_pipelines_trainer_is_the_one_that_tells(tmp_path):
    from pipeline.configs import PipelineConfig
    from pipeline.pipeline import create_components

    config = PipelineConfig(output_dir=str(tmp_path))
    (trainer,) = [c for c in create_components(config) if c.id == "Trainer"]
    assert trainer.executor_spec.executor_class is sampling.TrainerExecutor
