"""Batch predictions' input side: CSV blocks, bad rows with file and line, tf.Examples.

No model is needed: the blocks are checked against the schema, and the
tf.Examples built inside TensorFlow must equal the ones the serving client
builds row by row (serving/examples.py), which TF Serving is sent.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from serving import batch_input
from serving.batch_input import BadInput, ReadCounts, read_blocks
from serving.examples import load_columns, read_examples

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data" / "data.csv"


@pytest.fixture(scope="module")
def columns():
    return load_columns()


def write(tmp_path: Path, text: str, name: str = "in.csv") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def blocks(path: str, columns, keep=(), skip=False, block_bytes=1 << 20):
    counts = ReadCounts()
    return list(read_blocks(path, columns, list(keep), counts, skip, block_bytes)), counts


def test_every_row_of_the_shipped_data_is_read_in_several_blocks(columns):
    found, counts = blocks(str(DATA), columns, block_bytes=256 * 1024)
    assert len(found) > 3
    assert counts.rows == sum(b.num_rows for b in found) == 15002 and counts.bad == []


def test_a_bad_cell_stops_with_file_and_line(tmp_path, columns):
    header = DATA.read_text().splitlines()[0]
    good = DATA.read_text().splitlines()[1]
    bad = good.replace("Credit Card", "Credit Card").split(",")
    bad[1] = "twelve"  # fare
    path = write(tmp_path, "\n".join([header, good, good, ",".join(bad), good]) + "\n")
    with pytest.raises(BadInput) as error:
        blocks(path, columns)
    assert str(error.value) == (f"{path} line 4: column 'fare': 'twelve' is not a number "
                                "(nothing written; --skip-bad-rows skips bad rows)")


def test_skipping_counts_wrong_field_counts_and_bad_cells_by_line(tmp_path, columns):
    header = DATA.read_text().splitlines()[0]
    good = DATA.read_text().splitlines()[1]
    cells = good.split(",")
    bad_int = ",".join(["1.5", *cells[1:]])  # pickup_community_area is INT
    short = ",".join(cells[:-3])
    path = write(tmp_path, "\n".join([header, good, short, good, bad_int, good]) + "\n")
    found, counts = blocks(path, columns, skip=True)
    assert counts.rows == 3 and sum(b.num_rows for b in found) == 3
    assert [(p.line, p.path) for p in counts.bad] == [(3, path), (5, path)]
    assert "15 fields, but the header has 18" in counts.bad[0].message
    assert "'1.5' is not an integer" in counts.bad[1].message


def test_unknown_columns_are_refused_unless_kept(tmp_path, columns):
    text = DATA.read_text().splitlines()
    lines = ["trip_id," + text[0]] + [f"t{i}," + line for i, line in enumerate(text[1:4])]
    path = write(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(BadInput, match="line 1: unknown column 'trip_id'"):
        blocks(path, columns)
    found, _ = blocks(path, columns, keep=["trip_id"])
    assert found[0].rows.column("trip_id").to_pylist() == ["t0", "t1", "t2"]


def test_blocks_encode_to_the_clients_examples(columns):
    tf = pytest.importorskip("tensorflow")
    from serving.batch_model import BlockEncoder

    lines = DATA.read_text().splitlines(keepends=True)[:301]
    expected, _ = read_examples(lines, columns)
    found, _ = blocks(str(DATA), columns)
    encoder = BlockEncoder([c for c in columns.values() if c.serving])
    ours = list(encoder.examples(found[0], 0, 300))
    parse = tf.train.Example.FromString
    assert [parse(e) for e in ours] == [parse(e) for e in expected]


def test_float32_overflow_and_nan_are_bad_cells(tmp_path, columns):
    header = DATA.read_text().splitlines()[0]
    cells = DATA.read_text().splitlines()[1].split(",")
    rows = [",".join([cells[0], value, *cells[2:]]) for value in ("1e39", "nan", "12.5")]
    path = write(tmp_path, "\n".join([header, *rows]) + "\n")
    found, counts = blocks(path, columns, skip=True)
    assert [p.line for p in counts.bad] == [2, 3]
    assert np.allclose(found[0].values["fare"], [12.5])


def test_a_missing_file_is_one_line(columns):
    with pytest.raises(batch_input.ClientError, match="input not found: /nope.csv"):
        blocks("/nope.csv", columns)


def test_the_wire_format_matches_protobuf_for_edge_values(columns):
    from serving import example_bytes
    from serving.examples import to_example

    parse = pytest.importorskip("tensorflow").train.Example.FromString
    ints = np.array([0, 1, 127, 128, 300, -1, -5, 2**40, -(2**63)], np.int64)
    floats = np.array([0.0, -1.5, 3.4e38, 1e-30, 12.5, 0.1, 7.0, -0.0, 2.0], np.float32)
    texts = ["", "Cash", "é" * 200, "x", "Credit Card", "a,b", "", "q", "z"]
    present = np.array([True, False, True, True, True, True, True, True, False])
    ours = example_bytes.encode([
        ("trip_seconds", "int64_list", ints, present),
        ("fare", "float_list", floats, np.ones(9, bool)),
        ("company", "bytes_list", np.array([t.encode() for t in texts], object), ~present),
    ])
    for i in range(9):
        values = {"fare": float(floats[i])}
        if present[i]:
            values["trip_seconds"] = int(ints[i])
        else:
            values["company"] = texts[i].encode()
        assert parse(ours[i]) == parse(to_example(values, columns)), i
