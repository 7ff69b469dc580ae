"""A malformed row anywhere in a file is named by its file and line, with the
preflight's message, also where the streaming CsvExampleGen finds it (issue 22
item 4): past the preflight's 64 MiB head, and only a bad file pays for
finding the line."""

from __future__ import annotations

import glob
from pathlib import Path

import numpy as np
import pytest

from pipeline import preflight
from pipeline.components import csv_columns, csv_lines


def _convert(folder: Path, out: Path) -> list[int]:
    return csv_columns.convert(
        sorted(str(p) for p in folder.glob("*.csv")), [str(out / "train")], np.array([1])
    )


def _wide_rows(count: int) -> list[str]:
    """Rows of about 1 KiB: a big file in few rows, cheap to convert."""
    return [f"{i},{'x' * 1000},{i % 7}" for i in range(count)]


def test_a_bad_row_past_64_mib_is_named_with_its_line(tmp_path: Path):
    folder = tmp_path / "data"
    folder.mkdir()
    rows = _wide_rows(70_000)  # 70 MiB, past the preflight's head
    rows[-100] = rows[-100].rsplit(",", 1)[0]  # one field short
    path = folder / "data.csv"
    path.write_text("id,text,n\n" + "\n".join(rows) + "\n")
    line = len(rows) - 100 + 2  # the header is line 1
    assert path.stat().st_size > preflight.CHECKED_BYTES
    preflight.check_csv(path)  # its head is fine: the preflight cannot see the row
    with pytest.raises(ValueError) as refused:
        _convert(folder, tmp_path / "out")
    assert str(refused.value) == f"{path} line {line}: 2 fields, the header has 3"
    assert not glob.glob(str(tmp_path / "out" / "**" / "*.gz"), recursive=True)


def test_the_executor_and_the_preflight_give_the_same_message(tmp_path: Path):
    """Also after a quoted cell spanning lines and an empty line."""
    folder = tmp_path / "data"
    folder.mkdir()
    path = folder / "data.csv"
    path.write_text('id,text,n\n1,"two\nlines",3\n\n2,b,4\n3,c\n4,d,5\n')
    with pytest.raises(preflight.InputError) as by_preflight:
        preflight.check_csv(path)
    with pytest.raises(ValueError) as by_executor:
        _convert(folder, tmp_path / "out")
    assert str(by_executor.value) == str(by_preflight.value)
    assert str(by_preflight.value) == f"{path} line 6: 2 fields, the header has 3"


def test_bytes_that_are_not_utf8_are_named_with_their_line(tmp_path: Path):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "data.csv").write_bytes(b"id,text\n1,a\n2,caf\xe9\n3,c\n")
    with pytest.raises(ValueError, match=r"data\.csv line 3 is not UTF-8 text"):
        _convert(folder, tmp_path / "out")


def test_a_good_file_never_pays_for_finding_a_line(tmp_path: Path, monkeypatch):
    def never(*args):
        raise AssertionError("a good file was read row by row")

    monkeypatch.setattr(csv_columns, "find_bad_line", never)
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "data.csv").write_text("id,text,n\n" + "\n".join(_wide_rows(2000)) + "\n")
    assert _convert(folder, tmp_path / "out") == [2000]


def test_find_bad_line_reads_a_good_file_to_its_end(tmp_path: Path):
    path = tmp_path / "ok.csv"
    path.write_bytes(b"\xef\xbb\xbfid,text\r\n1,\"a,b\"\r\n\r\n2,c\r\n")
    with open(path, "rb") as f:
        assert csv_lines.find_bad_line(f, path) is None


def test_the_run_prints_a_bad_row_as_the_preflight_does():
    from local.run import failure_text

    error = csv_lines.BadLine("data/data.csv line 53: 15 fields, the header has 18")
    assert failure_text(error) == "error: data/data.csv line 53: 15 fields, the header has 18"


# ------------------------------------------------------------ the header (issue 25)


def test_a_quoted_header_reaches_the_examples_without_its_quotes(tmp_path: Path):
    """The preflight, the streaming executor and TFX's reader on a distributed
    runner (through csv_columns.read_header) read the same names."""
    import tensorflow as tf

    folder = tmp_path / "data"
    folder.mkdir()
    path = folder / "data.csv"
    path.write_bytes(b'\xef\xbb\xbf"id","text","n"\r\n"1","a,b","3"\r\n2,c,4\r\n')
    header, rows = preflight.check_csv(path)
    assert header == csv_columns.read_header(str(path)) == ["id", "text", "n"]
    assert rows == 2
    assert _convert(folder, tmp_path / "out") == [2]
    [shard, *_] = sorted(glob.glob(str(tmp_path / "out" / "train" / "*.gz")))
    record = next(iter(tf.data.TFRecordDataset(shard, compression_type="GZIP")))
    example = tf.train.Example.FromString(record.numpy())
    assert sorted(example.features.feature) == ["id", "n", "text"]


@pytest.mark.parametrize("name", ["fare, in dollars", "fare\nin dollars"])
def test_a_column_name_holding_a_comma_or_a_line_break_is_refused_in_one_line(
    tmp_path: Path, name: str
):
    path = tmp_path / "data.csv"
    quoted = name.replace("\n", "\r\n")  # as a spreadsheet writes it
    path.write_text(f'id,"{quoted}",n\n1,2,3\n', newline="")
    with pytest.raises(preflight.InputError) as by_preflight:
        preflight.check_csv(path)
    with pytest.raises(csv_lines.BadLine) as by_executor:
        csv_columns.read_header(str(path))
    assert str(by_executor.value) == str(by_preflight.value)
    message = str(by_preflight.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: the column name ")
    assert message.endswith("holds a comma or a line break; rename that column")
