"""Large splits are read as uniform samples (pipeline/components/sampling.py).

Real executors on the shipped rows: the streaming CsvExampleGen executor with
small shards, then TFX's StatisticsGen and Transform executors through this
project's subclasses, with a sample budget below the train split's size.
"""

from __future__ import annotations

import fnmatch
import glob
import os
from pathlib import Path

import pytest
import tensorflow as tf
import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import statistics_pb2
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_artifacts, standard_component_specs
from tfx.utils import json_utils, proto_utils

from metadata import graph, names
from pipeline.components import (
    csv_columns,
    csv_example_gen,
    drift,
    evaluator,
    sampling,
    tfx_internals,
)
from pipeline.configs import PREPROCESSING_FN, PROJECT_ROOT

DATA = PROJECT_ROOT / "data"
SCHEMA = PROJECT_ROOT / "schema" / "schema.pbtxt"
BEAM_ARGS = ["--direct_running_mode=in_memory", "--direct_num_workers=1"]


def _names(shards: int) -> list[str]:
    return [f"data_tfrecord-{i:05d}-of-{shards:05d}.gz" for i in range(shards)]


@pytest.mark.parametrize(
    "shards, fraction, matched",
    [
        (23, 0.25, 6), (64, 0.1, 7), (64, 0.13, 9), (23, 0.5, 13), (64, 0.31, 20), (5, 0.5, 3),
        (64, 0.7, 46), (576, 0.005, 3), (2240, 0.00625, 20), (2240, 0.05, 200), (9000, 0.3, 2700),
    ],
)
def test_a_shard_glob_matches_at_least_the_fraction(shards: int, fraction: float, matched: int):
    pattern, count = sampling.shard_glob(shards, fraction)
    names = [n for n in _names(shards) if fnmatch.fnmatch(n, pattern)]
    assert count == len(names) == matched
    assert len(names) >= fraction * shards


@pytest.mark.parametrize("shards, fraction", [(1, 0.5), (23, 0.96), (64, 0.95), (4, 0.9)])
def test_no_glob_when_the_sample_would_be_every_shard(shards: int, fraction: float):
    assert sampling.shard_glob(shards, fraction) is None


@pytest.fixture(scope="module")
def examples(tmp_path_factory) -> standard_artifacts.Examples:
    """The shipped rows through the streaming executor, in shards of ~64 KiB of CSV."""
    out = tmp_path_factory.mktemp("examples")
    patch = pytest.MonkeyPatch()
    patch.setattr(csv_columns, "SHARD_BYTES", 64 * 1024)
    examples = standard_artifacts.Examples()
    examples.uri = str(out)
    split = example_gen_pb2.SplitConfig.Split
    output = example_gen_pb2.Output(split_config=example_gen_pb2.SplitConfig(
        splits=[split(name="train", hash_buckets=4), split(name="eval", hash_buckets=1)]))
    exec_properties = {
        standard_component_specs.INPUT_BASE_KEY: str(DATA),
        standard_component_specs.INPUT_CONFIG_KEY: proto_utils.proto_to_json(
            example_gen_pb2.Input(splits=[example_gen_pb2.Input.Split(name="all", pattern="*.csv")])
        ),
        standard_component_specs.OUTPUT_CONFIG_KEY: proto_utils.proto_to_json(output),
        standard_component_specs.OUTPUT_DATA_FORMAT_KEY: example_gen_pb2.FORMAT_TF_EXAMPLE,
    }
    context = csv_example_gen.Executor.Context(
        beam_pipeline_args=BEAM_ARGS, tmp_dir=str(out / "tmp"))
    try:
        csv_example_gen.Executor(context).Do(
            {}, {standard_component_specs.EXAMPLES_KEY: [examples]}, exec_properties)
    finally:
        patch.undo()
    return examples


def _records(files: list[str]) -> int:
    return sum(1 for _ in tf.data.TFRecordDataset(files, compression_type="GZIP"))


def _split_files(examples, split: str) -> list[str]:
    return sorted(glob.glob(os.path.join(artifact_utils.get_split_uri([examples], split), "*")))


def test_the_streaming_executor_records_its_shards_as_random_and_its_split_sizes(examples):
    rows = examples.get_json_value_custom_property(csv_example_gen.SPLIT_ROWS_PROPERTY)
    assert examples.get_int_custom_property(csv_example_gen.SHUFFLED_SHARDS_PROPERTY) == 1
    assert {s: _records(_split_files(examples, s)) for s in ("train", "eval")} == dict(rows)
    assert len(_split_files(examples, "train")) > 10


def _statistics(examples, tmp_path: Path, sample_rows: int) -> standard_artifacts.ExampleStatistics:
    statistics = standard_artifacts.ExampleStatistics()
    statistics.uri = str(tmp_path / "statistics")
    context = sampling.StatisticsExecutor.Context(
        beam_pipeline_args=BEAM_ARGS, tmp_dir=str(tmp_path))
    sampling.StatisticsExecutor(context).Do(
        {"examples": [examples]},
        {"statistics": [statistics]},
        {"exclude_splits": "[]", sampling.SAMPLE_ROWS_KEY: sample_rows},
    )
    return statistics


def _num_examples(statistics, split: str) -> int:
    path = os.path.join(artifact_utils.get_split_uri([statistics], split), "FeatureStats.pb")
    return tfdv.load_stats_binary(path).datasets[0].num_examples


@pytest.mark.slow
def test_statistics_of_a_large_split_come_from_a_sample_of_its_shards(examples, tmp_path: Path):
    rows = examples.get_json_value_custom_property(csv_example_gen.SPLIT_ROWS_PROPERTY)
    budget = rows["eval"] + 1  # the train split is over it, the eval split is not
    statistics = _statistics(examples, tmp_path, budget)
    pattern, fraction = sampling.split_sample(examples, "train", budget)
    sampled_files = glob.glob(os.path.join(examples.uri, pattern))
    assert 1 < len(sampled_files) < len(_split_files(examples, "train"))
    assert _num_examples(statistics, "train") == _records(sampled_files) >= budget
    assert _num_examples(statistics, "eval") == rows["eval"]
    rates = json_utils.loads(
        statistics.get_json_value_custom_property(sampling.SAMPLE_RATE_PROPERTY))
    assert rates == {"train": fraction, "eval": 1.0} and 0 < fraction < 1
    # The recorded input artifact is untouched: readers downstream see every shard.
    assert not examples.has_custom_property("custom_split_pattern")


@pytest.mark.slow
def test_statistics_read_every_row_when_sampling_is_off(examples, tmp_path: Path):
    rows = examples.get_json_value_custom_property(csv_example_gen.SPLIT_ROWS_PROPERTY)
    statistics = _statistics(examples, tmp_path, 0)
    assert {s: _num_examples(statistics, s) for s in ("train", "eval")} == dict(rows)


def test_output_without_the_mark_is_read_whole(examples, tmp_path: Path):
    """The stock executor's shards (distributed runners) are not known to be random."""
    unmarked = standard_artifacts.Examples()
    unmarked.uri = examples.uri
    unmarked.split_names = examples.split_names
    assert sampling.split_sample(unmarked, "train", 10) is None


@pytest.mark.slow
def test_transform_analyzes_only_the_sample(examples, tmp_path: Path):
    budget = 2000
    schema = standard_artifacts.Schema()
    schema.uri = str(SCHEMA.parent)
    graph = standard_artifacts.TransformGraph()
    graph.uri = str(tmp_path / "graph")
    cache = standard_artifacts.TransformCache()
    cache.uri = str(tmp_path / "cache")
    context = sampling.TransformExecutor.Context(
        beam_pipeline_args=BEAM_ARGS, tmp_dir=str(tmp_path))
    # The paths TFX's processor is handed, seen from outside the executor's own
    # substitution (an empty substitution records them).
    with tfx_internals.transform_analyze_paths({}) as analyzed:
        sampling.TransformExecutor(context).Do(
            {"examples": [examples], "schema": [schema]},
            {"transform_graph": [graph], "updated_analyzer_cache": [cache]},
            {"preprocessing_fn": PREPROCESSING_FN, "custom_config": "null",
             "disable_statistics": 1, "force_tf_compat_v1": 0, sampling.SAMPLE_ROWS_KEY: budget},
        )
    pattern, _ = sampling.split_sample(examples, "train", budget)
    train_dir = artifact_utils.get_split_uri([examples], "train")
    assert analyzed == [os.path.join(examples.uri, pattern)]
    assert len(glob.glob(analyzed[0])) < len(_split_files(examples, "train"))
    assert not fnmatch.fnmatch(os.path.join(train_dir, "x"), analyzed[0])
    assert os.path.isdir(os.path.join(graph.uri, "transform_fn"))


def test_the_evaluator_scores_a_sample_of_a_large_eval_split(examples):
    rows = examples.get_json_value_custom_property(csv_example_gen.SPLIT_ROWS_PROPERTY)
    eval_dir = artifact_utils.get_split_uri([examples], "eval")
    substitutes = evaluator.sample_patterns(examples, rows["eval"] // 3)
    sample = substitutes[os.path.join(eval_dir, "*")]
    assert 0 < len(glob.glob(sample)) < len(_split_files(examples, "eval"))
    assert os.path.join(eval_dir, "*") not in evaluator.sample_patterns(examples, rows["eval"])
    assert evaluator.sample_patterns(examples, 0) == {}


@pytest.mark.slow
def test_readers_find_the_sample_rate_under_the_name_statistics_gen_records(examples, tmp_path):
    statistics = _statistics(examples, tmp_path, examples.get_json_value_custom_property(
        csv_example_gen.SPLIT_ROWS_PROPERTY)["eval"] + 1)
    assert names.SAMPLE_RATE_BY_SPLIT == sampling.SAMPLE_RATE_PROPERTY
    rates = graph.sample_rates(statistics.mlmd_artifact)
    assert set(rates) == {"train", "eval"} and 0 < rates["train"] < 1 and rates["eval"] == 1.0


def test_the_gate_says_what_the_statistics_describe():
    stats = statistics_pb2.DatasetFeatureStatisticsList(
        datasets=[statistics_pb2.DatasetFeatureStatistics(num_examples=1_081_214)])
    text = drift.comparison(None, stats, None, None, train_rows=9_895_664)
    assert "9,895,664 train rows, statistics of a uniform sample of 1,081,214" in text
    assert "statistics of" not in drift.comparison(None, stats, None, None, train_rows=1_081_214)
