"""The streaming CsvExampleGen executor writes what TFX's stock executor writes.

Both executors run for real (the stock one through Beam's in-memory runner) on
CSVs with the awkward cases: empty cells, quoted commas and line breaks,
integer and float columns, a column mixing integers and floats, a column whose
type changes in the last block read, a column empty in every row, several
files, a UTF-8 byte-order mark.
"""

from __future__ import annotations

import glob
import json
import os
import resource
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import tensorflow as tf
from tfx.components.example_gen.csv_example_gen import executor as stock
from tfx.components.util import examples_utils
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_artifacts, standard_component_specs
from tfx.utils import proto_utils

from pipeline.components import beam_runner, csv_columns, csv_example_gen, csv_shuffle

CSV = "\n".join(
    [
        "trip_id,fare,miles,payment_type,company,note",
        "1,5.25,1,Cash,Flash Cab,plain",
        '2,,2.5,Credit Card,"Taxi, Inc.",',
        '3,12,,Cash,,"two',
        'lines"',
        '4,7.0,0.3,,Blue Ribbon,"say ""hi"""',
        "5,3.5,10,Credit Card,Flash Cab,plain",
        "",
    ]
)


def _rows(n: int) -> str:
    lines = [
        f"{i},{i % 17}.5,{i % 5},{'Cash' if i % 3 else 'Credit Card'},C{i % 4},x" for i in range(n)
    ]
    return "trip_id,fare,miles,payment_type,company,note\n" + "\n".join(lines) + "\n"


def _run(
    executor_class,
    data_dir: Path,
    out_dir: Path,
    split_config=None,
    beam_args=None,
    schema_file: str | None = None,
) -> standard_artifacts.Examples:
    examples = standard_artifacts.Examples()
    examples.uri = str(out_dir)
    output = example_gen_pb2.Output(
        split_config=split_config
        or example_gen_pb2.SplitConfig(
            splits=[
                example_gen_pb2.SplitConfig.Split(name="train", hash_buckets=4),
                example_gen_pb2.SplitConfig.Split(name="eval", hash_buckets=1),
            ]
        )
    )
    exec_properties = {
        standard_component_specs.INPUT_BASE_KEY: str(data_dir),
        standard_component_specs.INPUT_CONFIG_KEY: proto_utils.proto_to_json(
            example_gen_pb2.Input(
                splits=[example_gen_pb2.Input.Split(name="single_split", pattern="*.csv")]
            )
        ),
        standard_component_specs.OUTPUT_CONFIG_KEY: proto_utils.proto_to_json(output),
        standard_component_specs.OUTPUT_DATA_FORMAT_KEY: example_gen_pb2.FORMAT_TF_EXAMPLE,
    }
    if schema_file:
        exec_properties[csv_example_gen.SCHEMA_FILE_KEY] = schema_file
    context = executor_class.Context(
        beam_pipeline_args=beam_args or ["--direct_running_mode=in_memory"],
        tmp_dir=str(out_dir / "tmp"),
    )
    outputs = {standard_component_specs.EXAMPLES_KEY: [examples]}
    executor_class(context).Do({}, outputs, exec_properties)
    return examples


def _split(examples: standard_artifacts.Examples, split: str) -> Counter:
    """The split's examples, as comparable (feature, kind, values) tuples."""
    files = glob.glob(os.path.join(artifact_utils.get_split_uri([examples], split), "*.gz"))
    assert files, f"no files in split {split}"
    rows = Counter()
    for record in tf.data.TFRecordDataset(files, compression_type="GZIP"):
        example = tf.train.Example.FromString(record.numpy())
        row = []
        for name, feature in example.features.feature.items():
            kind = feature.WhichOneof("kind")  # None: a feature without values or type
            row.append((name, kind, tuple(getattr(feature, kind).value) if kind else ()))
        rows[tuple(sorted(row))] += 1
    return rows


@pytest.fixture()
def data_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "a.csv").write_text(CSV)
    return folder


@pytest.mark.slow
def test_same_examples_and_properties_as_the_stock_executor(data_dir: Path, tmp_path: Path):
    ours = _run(csv_example_gen.Executor, data_dir, tmp_path / "ours")
    theirs = _run(stock.Executor, data_dir, tmp_path / "stock")
    # Splits may differ (different hash keys); the union must be identical.
    everything = _split(ours, "train") + _split(ours, "eval")
    assert everything == _split(theirs, "train") + _split(theirs, "eval")
    assert examples_utils.get_payload_format(ours) == examples_utils.get_payload_format(theirs)
    assert examples_utils.get_file_format(ours) == examples_utils.get_file_format(theirs)
    assert ours.split_names == theirs.split_names


@pytest.mark.slow
def test_types_and_empty_cells_follow_csv_example_gen(data_dir: Path, tmp_path: Path):
    ours = _run(csv_example_gen.Executor, data_dir, tmp_path / "ours")
    rows = {
        dict((n, v) for n, _, v in row)["trip_id"]: {n: (k, v) for n, k, v in row}
        for row in _split(ours, "train") + _split(ours, "eval")
    }
    assert rows[(2,)]["fare"] == ("float_list", ())  # an empty cell: present, no value
    assert rows[(3,)]["fare"] == ("float_list", (12.0,))  # "12" in a float column
    assert rows[(1,)]["miles"] == ("float_list", (1.0,))  # "1" with "2.5" elsewhere: FLOAT
    assert rows[(2,)]["company"] == ("bytes_list", (b"Taxi, Inc.",))
    assert rows[(3,)]["note"] == ("bytes_list", (b"two\nlines",))
    assert rows[(4,)]["note"] == ("bytes_list", (b'say "hi"',))


@pytest.mark.slow
def test_split_is_by_row_content_and_repeatable(tmp_path: Path):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "a.csv").write_text(_rows(2000) + _rows(2000).split("\n", 1)[1])  # every row twice
    first = _run(csv_example_gen.Executor, folder, tmp_path / "first")
    second = _run(csv_example_gen.Executor, folder, tmp_path / "second")
    train, evaluation = _split(first, "train"), _split(first, "eval")
    assert (train, evaluation) == (_split(second, "train"), _split(second, "eval"))
    assert not set(train) & set(evaluation), "a duplicated row landed in both splits"
    assert all(count == 2 for count in (train + evaluation).values())
    assert 0.15 < sum(evaluation.values()) / 4000 < 0.25


@pytest.mark.slow
def test_shards_cover_the_split_in_shuffled_order(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(csv_columns, "SHARD_BYTES", 4096)
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "a.csv").write_text(_rows(3000))
    examples = _run(csv_example_gen.Executor, folder, tmp_path / "out")
    split_dir = artifact_utils.get_split_uri([examples], "train")
    files = sorted(glob.glob(os.path.join(split_dir, "*.gz")))
    assert len(files) > 2
    ids = [
        tf.train.Example.FromString(r.numpy()).features.feature["trip_id"].int64_list.value[0]
        for r in tf.data.TFRecordDataset(files, compression_type="GZIP")
    ]
    assert len(ids) == len(set(ids)) and ids != sorted(ids)


@pytest.mark.slow
@pytest.mark.parametrize("in_memory", [True, False], ids=["in-memory", "dealt-on-disk"])
def test_large_spilled_shards_become_several_shuffled_output_shards(
    tmp_path: Path, monkeypatch, in_memory: bool
):
    """Pass 3 cuts a spilled shard into output shards of bounded size, in memory
    or (past the memory budget) by dealing rows to pieces on disk first; every
    row lands exactly once, in a random order."""
    monkeypatch.setattr(csv_columns, "SHARD_BYTES", 4096)
    monkeypatch.setattr(csv_columns, "MAX_SHARDS", 2)
    monkeypatch.setattr(csv_shuffle, "OUTPUT_SHARD_BYTES", 8 * 1024)
    monkeypatch.setattr(csv_shuffle, "SHUFFLE_MEMORY_BYTES", 10**9 if in_memory else 1024)
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "a.csv").write_text(_rows(3000))
    examples = _run(csv_example_gen.Executor, folder, tmp_path / "out")
    files = sorted(glob.glob(os.path.join(artifact_utils.get_split_uri([examples], "train"), "*")))
    assert len(files) > 2 * 4 and len(files) % 2 == 0  # 2 spilled shards, several pieces each
    ids = [
        tf.train.Example.FromString(r.numpy()).features.feature["trip_id"].int64_list.value[0]
        for r in tf.data.TFRecordDataset(files, compression_type="GZIP")
    ]
    evaluation = sum(_split(examples, "eval").values())
    assert len(ids) == len(set(ids)) == 3000 - evaluation and ids != sorted(ids)


@pytest.mark.slow
def test_a_large_split_is_spilled_to_files_that_pass_3_shuffles_in_memory(
    tmp_path: Path, monkeypatch
):
    """Past `MAX_SHARDS` spill files a split gets more of them, each small enough
    for pass 3 to shuffle in memory: no example is read and written once more
    by dealing a spilled file to pieces on disk (issue 26: at 100M rows that
    extra round trip made ExampleGen's time per row grow)."""
    monkeypatch.setattr(csv_columns, "SHARD_BYTES", 4096)
    monkeypatch.setattr(csv_columns, "MAX_SHARDS", 2)
    monkeypatch.setattr(csv_columns, "SPILL_CSV_BYTES", 6 * 1024)
    monkeypatch.setattr(csv_shuffle, "SHUFFLE_MEMORY_BYTES", 100 * 1024)
    dealt = []
    real_deal = csv_shuffle._deal
    monkeypatch.setattr(csv_shuffle, "_deal", lambda *a: dealt.append(a[0]) or real_deal(*a))
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "a.csv").write_text(_rows(3000))
    examples = _run(csv_example_gen.Executor, folder, tmp_path / "out")
    assert dealt == []
    files = glob.glob(os.path.join(artifact_utils.get_split_uri([examples], "train"), "*"))
    assert len(files) > 2 * 4  # more spill files than MAX_SHARDS
    rows = sum(1 for _ in tf.data.TFRecordDataset(files, compression_type="GZIP"))
    assert rows + sum(_split(examples, "eval").values()) == 3000


def test_spill_files_follow_the_split_size_up_to_the_open_file_cap():
    sizes = [csv_columns.spill_files(n) for n in (10**5, 10**8, 10**9, 10**10, 10**13)]
    assert sizes == sorted(sizes) and sizes[0] >= 1 and sizes[1] <= csv_columns.MAX_SHARDS
    for csv_bytes in (10**9, 10**10):  # 10M and 100M taxi rows: shuffled in memory
        files = csv_columns.spill_files(csv_bytes)
        assert csv_bytes / files <= csv_columns.SPILL_CSV_BYTES
    assert sizes[-1] == csv_columns.MAX_SPILL_FILES


@pytest.mark.slow
def test_spill_files_shrink_to_what_the_process_may_open():
    """A soft limit on open files below what 951 spill files need is raised
    (here the hard limit allows it); under a hard limit of 400 they become at
    most 400 - SPARE_OPEN_FILES, in proportion."""
    script = (
        "import json, resource\n"
        "from pipeline.components import csv_columns as c\n"
        "hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (100, hard))\n"
        "kept = c.open_files_for([760, 191])\n"
        "soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (100, 400))\n"
        "shrunk = c.open_files_for([760, 191])\n"
        "print(json.dumps([shrunk, kept, soft, hard]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    shrunk, kept, soft, hard = json.loads(done.stdout.strip().splitlines()[-1])
    assert sum(shrunk) <= 400 - csv_columns.SPARE_OPEN_FILES and shrunk[0] > shrunk[1] >= 1
    if hard == resource.RLIM_INFINITY or hard >= 951 + csv_columns.SPARE_OPEN_FILES:
        assert kept == [760, 191] and soft >= 951 + csv_columns.SPARE_OPEN_FILES


@pytest.mark.slow
def test_unsupported_configurations_fall_back_to_the_stock_executor(data_dir: Path, tmp_path: Path):
    by_feature = example_gen_pb2.SplitConfig(
        splits=[
            example_gen_pb2.SplitConfig.Split(name="train", hash_buckets=1),
            example_gen_pb2.SplitConfig.Split(name="eval", hash_buckets=1),
        ],
        partition_feature_name="payment_type",
    )
    ours = _run(csv_example_gen.Executor, data_dir, tmp_path / "ours", by_feature)
    theirs = _run(stock.Executor, data_dir, tmp_path / "stock", by_feature)
    assert _split(ours, "train") == _split(theirs, "train")
    assert _split(ours, "eval") == _split(theirs, "eval")
    assert not ours.has_custom_property(csv_example_gen.SHUFFLED_SHARDS_PROPERTY)


def _everything(examples: standard_artifacts.Examples) -> Counter:
    return _split(examples, "train") + _split(examples, "eval")


@pytest.mark.slow
def test_a_type_change_in_the_last_block_types_the_whole_column(tmp_path: Path, monkeypatch):
    """An INT column with one float in its last row is FLOAT in every row; a
    FLOAT column with one word is STRING; a column empty in every row is a
    feature without a kind, as in CsvExampleGen."""
    monkeypatch.setattr(csv_columns, "BLOCK_BYTES", 4096)  # about 40 blocks
    folder = tmp_path / "data"
    folder.mkdir()
    lines = [f"{i},{i % 17}.5,,x{i % 3}" for i in range(4000)]
    lines[-1] = "3999,n/a,,x0"
    lines[-2] = "2.5,1.5,,x1"
    (folder / "a.csv").write_text("trip_id,fare,empty,company\n" + "\n".join(lines) + "\n")
    ours = _everything(_run(csv_example_gen.Executor, folder, tmp_path / "ours"))
    assert ours == _everything(_run(stock.Executor, folder, tmp_path / "stock"))
    first = {name: (kind, values) for name, kind, values in next(iter(ours))}
    assert first["trip_id"][0] == "float_list"
    assert first["fare"][0] == "bytes_list"
    assert first["empty"] == (None, ())


@pytest.mark.slow
def test_several_files_give_what_the_stock_executor_gives(tmp_path: Path):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "a.csv").write_text(CSV)
    (folder / "b.csv").write_text(_rows(300))
    (folder / "c.csv").write_text(CSV.replace("Flash Cab", "Sun Taxi"))
    ours = _everything(_run(csv_example_gen.Executor, folder, tmp_path / "ours"))
    assert ours == _everything(_run(stock.Executor, folder, tmp_path / "stock"))
    assert sum(ours.values()) == 5 + 300 + 5


@pytest.mark.slow
@pytest.mark.parametrize("fallback", [False, True], ids=["streaming", "stock-fallback"])
def test_a_utf8_byte_order_mark_is_not_part_of_the_first_column(
    data_dir: Path, tmp_path: Path, fallback: bool
):
    """Both of our paths read a file saved with a BOM as they read it without one."""
    with_bom = tmp_path / "bom"
    with_bom.mkdir()
    (with_bom / "a.csv").write_bytes(b"\xef\xbb\xbf" + CSV.encode("utf-8"))
    config = None
    if fallback:  # partitioning by a feature is left to the stock executor
        config = example_gen_pb2.SplitConfig(
            splits=[
                example_gen_pb2.SplitConfig.Split(name="train", hash_buckets=1),
                example_gen_pb2.SplitConfig.Split(name="eval", hash_buckets=1),
            ],
            partition_feature_name="payment_type",
        )
    ours = _run(csv_example_gen.Executor, with_bom, tmp_path / "ours", config)
    plain = _run(csv_example_gen.Executor, data_dir, tmp_path / "plain", config)
    assert _split(ours, "train") == _split(plain, "train")
    assert _split(ours, "eval") == _split(plain, "eval")
    assert any(name == "trip_id" for row in _split(ours, "train") for name, _, _ in row)


@pytest.mark.slow
def test_a_ragged_row_after_the_preflight_head_fails_naming_the_file(
    tmp_path: Path, monkeypatch
):
    monkeypatch.setattr(csv_columns, "BLOCK_BYTES", 4096)
    folder = tmp_path / "data"
    folder.mkdir()
    text = _rows(3000).replace("\n2999,", "\n2999,extra,")
    (folder / "a.csv").write_text(text)
    with pytest.raises(ValueError, match=r"a\.csv line 3001: 7 fields, the header has 6$"):
        _run(csv_example_gen.Executor, folder, tmp_path / "out")
    assert not glob.glob(str(tmp_path / "out" / "*" / "*.gz")), "nothing may be written"


@pytest.mark.parametrize(
    "beam_args, local",
    [
        ([], True),
        (["--direct_running_mode=multi_processing", "--direct_num_workers=2"], True),
        (["--runner=DirectRunner"], True),
        (["--runner=direct"], True),
        (["--runner=BundleBasedDirectRunner"], True),
        (["--runner=SwitchingDirectRunner"], True),
        (["--runner=DataflowRunner", "--project=p", "--region=r"], False),
        (["--runner=dataflow"], False),
        (["--runner", "FlinkRunner", "--flink_master=localhost:8081"], False),
        (["--runner=SparkRunner"], False),
        (["--runner=PortableRunner", "--job_endpoint=localhost:8099"], False),
        (["--runner=apache_beam.runners.dataflow.dataflow_runner.DataflowRunner"], False),
    ],
)
def test_only_beams_direct_runner_takes_the_columnar_path(beam_args: list[str], local: bool):
    """With a distributed runner, ExampleGen stays a Beam pipeline the cluster runs."""
    assert beam_runner.is_local_runner(beam_args) is local
    reason = csv_example_gen.stock_executor_reason(
        beam_args, {}, example_gen_pb2.Output(), {"single_split": ["a.csv"]}
    )
    assert (reason == "") is local


@pytest.mark.slow
def test_a_portable_runner_runs_the_stock_beam_pipeline(data_dir: Path, tmp_path: Path, caplog):
    """Beam's portable runner, with an embedded job server, stands in for a cluster."""
    caplog.set_level("INFO")
    portable = ["--runner=PortableRunner", "--job_endpoint=embed", "--environment_type=LOOPBACK"]
    ours = _run(csv_example_gen.Executor, data_dir, tmp_path / "ours", beam_args=portable)
    assert "Using the stock Beam CsvExampleGen executor" in caplog.text
    theirs = _run(stock.Executor, data_dir, tmp_path / "stock")
    assert _split(ours, "train") == _split(theirs, "train")
    assert _split(ours, "eval") == _split(theirs, "eval")
    # Its shards are not known to be random: StatisticsGen and Transform read
    # all of them (pipeline/components/sampling.py), as a cluster should.
    assert not ours.has_custom_property(csv_example_gen.SHUFFLED_SHARDS_PROPERTY)
