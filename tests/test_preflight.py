"""Preflight reads the head of each CSV row by row and estimates the rows of
a larger file from its size; the rest is checked by CsvExampleGen's first
pass (tests/test_csv_example_gen.py)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from pipeline import preflight

HEADER = "trip_id,fare,note"


def _python_count(path: Path) -> int:
    with open(path, newline="", encoding="utf-8") as f:
        return sum(1 for _ in csv.reader(f)) - 1


def _write(path: Path, rows: list[str], end: str = "\n") -> Path:
    path.write_bytes((HEADER + end + end.join(rows) + end).encode("utf-8"))
    return path


def _rows(n: int) -> list[str]:
    """Rows of one length (the estimate assumes the head is typical), some multi-line."""
    quoted = '"say ""hi""\nacross, lines"'
    return [f"{i:06d},1.5,{quoted}" if i % 7 == 0 else f"{i:06d},,x" for i in range(n)]


def test_a_file_within_the_checked_head_is_counted_exactly(tmp_path: Path):
    path = _write(tmp_path / "a.csv", _rows(5000), end="\r\n")
    assert preflight.check_csv(path) == (HEADER.split(","), 5000)
    assert _python_count(path) == 5000


def test_a_larger_file_is_estimated_from_its_size(tmp_path: Path, monkeypatch):
    # A head cut inside a quoted, multi-line cell must not read as a short row.
    monkeypatch.setattr(preflight, "CHECKED_BYTES", 20_000)
    path = _write(tmp_path / "a.csv", _rows(20_000))
    header, rows = preflight.check_csv(path)
    assert header == HEADER.split(",")
    assert abs(rows - 20_000) < 200, rows


def test_a_bad_row_in_the_head_is_named(tmp_path: Path):
    rows = [f"{i},1.5,x" for i in range(6000)]
    rows[4001] = "9,1.5"  # line 4003: after the header and 4,001 rows
    with pytest.raises(preflight.InputError, match="line 4003: 2 fields, the header has 3"):
        preflight.check_csv(_write(tmp_path / "a.csv", rows))


def test_a_blank_line_is_skipped_as_both_executors_skip_it(tmp_path: Path):
    rows = [f"{i},1.5,x" for i in range(6000)]
    rows[4001] = ""  # an empty line, as exports leave (issue 12): not a row
    header, counted = preflight.check_csv(_write(tmp_path / "a.csv", rows))
    assert header == HEADER.split(",") and counted == 5999


def test_invalid_utf8_in_the_head_is_refused(tmp_path: Path):
    path = _write(tmp_path / "a.csv", [f"{i},1.5,x" for i in range(600)])
    path.write_bytes(path.read_bytes() + b"9,1.5,caf\xe9\n")
    with pytest.raises(preflight.InputError, match="is not a UTF-8 CSV text file"):
        preflight.check_csv(path)
