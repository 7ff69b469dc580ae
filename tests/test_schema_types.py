"""The curated schema's types win over what a file's values look like (issue 22
item 5), and ExampleGen reads the CSV once when the schema types every column
(issue 26 item 3).

A `tips` column written as `0` and `5` looks INT to CsvExampleGen's type
inference; the schema says FLOAT, so both of our ExampleGen paths (streaming,
and the stock Beam executor they fall back to) write floats and TFDV finds no
type anomaly. Text in `fare` is a real type change: it stays text, and TFDV
(the gate's ExampleValidator) refuses it.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest
import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.proto import example_gen_pb2

from pipeline.components import csv_columns, csv_example_gen
from tests.test_csv_example_gen import _run, _split

# Every test runs ExampleGen's executor (Beam) and TFDV: the slow tier.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "schema" / "schema.pbtxt"
HEADER, *ROWS = list(csv.reader(open(ROOT / "data" / "data.csv", newline="")))
TIPS, FARE = HEADER.index("tips"), HEADER.index("fare")
# Partitioning by a feature is one configuration left to the stock executor.
FALLBACK = example_gen_pb2.SplitConfig(
    splits=[
        example_gen_pb2.SplitConfig.Split(name="train", hash_buckets=1),
        example_gen_pb2.SplitConfig.Split(name="eval", hash_buckets=1),
    ],
    partition_feature_name="payment_type",
)
PATHS = pytest.mark.parametrize("fallback", [False, True], ids=["streaming", "stock-fallback"])


def _write(folder: Path, rows: list[list[str]]) -> Path:
    folder.mkdir(parents=True)
    with open(folder / "data.csv", "w", newline="") as f:
        csv.writer(f).writerows([HEADER, *rows])
    return folder


def _whole_number_rows(n: int = 400) -> list[list[str]]:
    """Rows whose `tips` and `fare` are whole numbers written without a point."""
    rows = [list(r) for r in ROWS[:n]]
    for row in rows:
        row[TIPS] = "5" if float(row[TIPS]) >= 2 else "0"
        row[FARE] = str(round(float(row[FARE])))
    return rows


def _kinds(examples, column: str) -> set[str | None]:
    return {
        kind
        for split in ("train", "eval")
        for row in _split(examples, split)
        for name, kind, _ in row
        if name == column
    }


def _type_anomalies(examples) -> dict[str, str]:
    """{column: anomaly description} of TFDV's type anomalies against the schema."""
    stats = tfdv.generate_statistics_from_tfrecord(os.path.join(examples.uri, "Split-*", "*.gz"))
    anomalies = tfdv.validate_statistics(stats, tfdv.load_schema_text(str(SCHEMA)))
    return {
        name: info.description
        for name, info in anomalies.anomaly_info.items()
        if any(
            r.type == anomalies_pb2.AnomalyInfo.UNEXPECTED_DATA_TYPE for r in info.reason
        )
    }


@PATHS
def test_whole_numbers_in_a_float_column_are_read_as_floats(tmp_path: Path, fallback: bool):
    data = _write(tmp_path / "data", _whole_number_rows())
    config = FALLBACK if fallback else None
    examples = _run(
        csv_example_gen.Executor, data, tmp_path / "out", config, schema_file=str(SCHEMA)
    )
    assert _kinds(examples, "tips") == {"float_list"}
    assert _kinds(examples, "fare") == {"float_list"}
    # Columns the schema types INT stay INT; without the schema, tips looks INT.
    assert _kinds(examples, "trip_start_hour") == {"int64_list"}
    assert _type_anomalies(examples) == {}
    untyped = _run(csv_example_gen.Executor, data, tmp_path / "untyped", config)
    assert _kinds(untyped, "tips") == {"int64_list"}


@PATHS
def test_text_in_a_float_column_is_still_refused(tmp_path: Path, fallback: bool):
    rows = _whole_number_rows()
    rows[-1][FARE] = "ten dollars"  # in the last rows read, after the first blocks
    data = _write(tmp_path / "data", rows)
    config = FALLBACK if fallback else None
    examples = _run(
        csv_example_gen.Executor, data, tmp_path / "out", config, schema_file=str(SCHEMA)
    )
    assert _kinds(examples, "fare") == {"bytes_list"}
    assert _kinds(examples, "tips") == {"float_list"}  # the schema still wins elsewhere
    assert set(_type_anomalies(examples)) == {"fare"}


def test_no_type_pass_when_the_schema_types_every_column(tmp_path: Path, monkeypatch):
    passes = []
    real = csv_columns.infer_types

    def counted(files, column_names, columns):
        passes.append(list(columns))
        return real(files, column_names, columns)

    monkeypatch.setattr(csv_columns, "infer_types", counted)
    data = _write(tmp_path / "data", [list(r) for r in ROWS[:300]])
    _run(csv_example_gen.Executor, data, tmp_path / "typed", schema_file=str(SCHEMA))
    assert passes == []
    # A column the schema does not know still gets its type pass, that column alone.
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "data.csv").write_text(
        (data / "data.csv").read_text().replace("\n", ",1\n").replace(",tips,1", ",tips,extra", 1)
    )
    examples = _run(csv_example_gen.Executor, extra, tmp_path / "out", schema_file=str(SCHEMA))
    assert passes == [["extra"]]
    assert _kinds(examples, "extra") == {"int64_list"}


def test_a_contradicting_value_types_every_column_from_its_values(tmp_path: Path, monkeypatch):
    """The second try after a contradiction is as if there were no schema, but
    for the columns whose values all read as their schema type."""
    monkeypatch.setattr(csv_columns, "BLOCK_BYTES", 4096)  # the bad value in a late block
    rows = _whole_number_rows(1000)
    rows[-1][HEADER.index("trip_start_hour")] = "7.5"
    data = _write(tmp_path / "data", rows)
    examples = _run(csv_example_gen.Executor, data, tmp_path / "out", schema_file=str(SCHEMA))
    assert _kinds(examples, "trip_start_hour") == {"float_list"}
    assert _kinds(examples, "tips") == {"float_list"}
    assert set(_type_anomalies(examples)) == {"trip_start_hour"}
