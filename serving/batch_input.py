"""CSV files read in blocks for batch predictions, each cell checked against the schema.

pyarrow's streaming CSV reader parses a few megabytes at a time, every column
as text, so memory stays flat whatever the file size and no value is guessed
into a type the schema does not give it. Each block's serving columns are then
cast to the schema's types (INT -> int64, FLOAT -> float32, BYTES -> bytes)
with pyarrow's vectorized casts; only a block whose cast fails is looked at row
by row, to name the bad rows with their file and line.

Line numbers count one record per line after the header (line 1): the taxi
data has no quoted line breaks. A record with the wrong number of fields is
reported by pyarrow itself with its line.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from metadata.errors import first_line
from serving.examples import BadRow, ClientError, Column, convert

# Bytes of CSV text parsed at once: about 60k taxi rows, a few tens of MB in memory.
DEFAULT_BLOCK_BYTES = 8 * 1024 * 1024
FLOAT32_MAX = float(np.finfo(np.float32).max)
_NUMPY_TYPES = {"int64_list": np.int64, "float_list": np.float32}
_ARROW_TYPES = {"int64_list": pa.int64(), "float_list": pa.float64()}


class BadInput(ClientError):
    """A bad row (or header) when rows may not be skipped; nothing was written."""

    exit_code = 2


@dataclass(frozen=True)
class Located(BadRow):
    """A bad row with the file it is in."""

    path: str = ""

    def __str__(self) -> str:
        return f"{self.path} line {self.line}: {self.message}"


@dataclass
class Block:
    """The good rows of one block: every input column as text, the serving
    columns typed (values, and where a value is present)."""

    path: str
    rows: pa.RecordBatch
    values: dict[str, np.ndarray | pa.Array]  # numpy for numbers, Arrow binary for text
    present: dict[str, np.ndarray]

    @property
    def num_rows(self) -> int:
        return self.rows.num_rows


@dataclass
class ReadCounts:
    """Rows read and skipped so far, over all inputs."""

    rows: int = 0
    bad: list[Located] = field(default_factory=list)


def header_of(path: str) -> list[str]:
    """The CSV header of `path`, checked to be readable."""
    if not os.path.isfile(path):
        raise ClientError(f"input not found: {path}")
    with open(path, encoding="utf-8", newline="") as f:
        first = f.readline().rstrip("\r\n")
    if not first:
        raise BadInput(f"{path} line 1: empty file (expected a CSV header)")
    return pacsv.read_csv(pa.py_buffer(first.encode() + b"\n")).column_names


def check_header(path: str, header: Sequence[str], columns: dict[str, Column],
                 keep: Sequence[str]) -> None:
    """Unknown columns are refused unless kept (an id), as are missing kept ones."""
    duplicates = sorted({n for n in header if list(header).count(n) > 1})
    unknown = [n for n in header if n not in columns and n not in keep]
    missing = [n for n in keep if n not in header]
    problems = ([f"duplicate column '{n}' in the header" for n in duplicates]
                + [f"unknown column '{n}' (not a model input; --keep {n} carries it "
                   "through)" for n in unknown]
                + [f"no column '{n}' to keep" for n in missing])
    if problems:
        raise BadInput(f"{path} line 1: " + "; ".join(problems))


def _reader(path: str, header: Sequence[str], block_bytes: int, invalid: list[Located]):
    def on_invalid(row) -> str:
        fields = row.actual_columns
        invalid.append(Located(row.number or 0, f"{fields} fields, but the header has "
                                                 f"{row.expected_columns}", path))
        return "skip"

    return pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(block_size=block_bytes, use_threads=False),
        parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid),
        convert_options=pacsv.ConvertOptions(
            column_types={name: pa.string() for name in header},
            null_values=[""], strings_can_be_null=True, quoted_strings_can_be_null=True,
        ),
    )


def _typed(array: pa.Array, column: Column) -> tuple[np.ndarray, np.ndarray] | None:
    """(values, present) for a text column, or None when some cell does not cast."""
    present = array.is_valid().to_numpy(zero_copy_only=False)
    if column.kind == "bytes_list":
        return array.cast(pa.binary()).fill_null(b""), present  # kept in Arrow: no copies
    text = pc.utf8_trim_whitespace(array)
    present &= pc.not_equal(text, "").fill_null(False).to_numpy(zero_copy_only=False)
    text = pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)
    try:
        typed = pc.cast(text, _ARROW_TYPES[column.kind])
    except pa.ArrowInvalid:
        return None
    if column.kind == "float_list" and not pc.all(
            pc.is_finite(typed).fill_null(True)).as_py():
        return None
    values = typed.fill_null(0).to_numpy(zero_copy_only=False)
    if column.kind == "float_list" and np.abs(values).max(initial=0) > FLOAT32_MAX:
        return None
    return values.astype(_NUMPY_TYPES[column.kind]), present


def _row_problems(array: pa.Array, column: Column, lines: np.ndarray, path: str) -> list[Located]:
    """Every cell of a column that does not convert, named by its line (the slow path)."""
    problems = []
    for index, value in enumerate(array.to_pylist()):
        try:
            converted = convert(value, column)
            if column.kind == "float_list" and converted is not None and abs(
                    converted) > FLOAT32_MAX:
                raise ValueError(f"column '{column.name}': {value!r} is too large for float32")
        except ValueError as error:
            problems.append(Located(int(lines[index]), str(error), path))
    return problems


def _line_numbers(start: int, count: int, skipped: Sequence[int]) -> tuple[np.ndarray, int]:
    """Lines of `count` good records following line `start`, around the skipped lines."""
    span = np.arange(start + 1, start + 1 + count + len(skipped), dtype=np.int64)
    lines = span[~np.isin(span, np.asarray(skipped, np.int64))][:count]
    return lines, int(lines[-1]) if count else start


def read_blocks(path: str, columns: dict[str, Column], keep: Sequence[str],
                counts: ReadCounts, skip_bad_rows: bool,
                block_bytes: int = DEFAULT_BLOCK_BYTES) -> Iterator[Block]:
    """The good rows of `path`, block by block; bad rows go to `counts.bad`
    when they may be skipped, else the first one raises BadInput."""
    header = header_of(path)
    check_header(path, header, columns, keep)
    serving = [columns[n] for n in header if n in columns and columns[n].serving]
    invalid: list[Located] = []
    last_line = 1
    try:
        reader = _reader(path, header, block_bytes, invalid)
        for batch in reader:
            skipped = [p.line for p in invalid]
            _fail_or_keep(invalid, counts, skip_bad_rows)
            invalid.clear()
            lines, last_line = _line_numbers(last_line, batch.num_rows, skipped)
            block = _typed_block(path, batch, serving, lines, counts, skip_bad_rows)
            counts.rows += block.num_rows
            if block.num_rows:
                yield block
    except pa.ArrowInvalid as error:
        raise BadInput(f"{path}: cannot read as CSV: {first_line(error)}") from None
    _fail_or_keep(invalid, counts, skip_bad_rows)


def _fail_or_keep(problems: list[Located], counts: ReadCounts, skip_bad_rows: bool) -> None:
    if problems and not skip_bad_rows:
        first = min(problems, key=lambda p: p.line)
        raise BadInput(f"{first} (nothing written; --skip-bad-rows skips bad rows)")
    counts.bad.extend(problems)


def _typed_block(path: str, batch: pa.RecordBatch, serving: list[Column], lines: np.ndarray,
                 counts: ReadCounts, skip_bad_rows: bool) -> Block:
    """Cast the serving columns; rows with a bad cell are dropped (or raise)."""
    values, present, problems = {}, {}, []
    for column in serving:
        array = batch.column(batch.schema.get_field_index(column.name))
        typed = _typed(array, column)
        if typed is None:
            problems += _row_problems(array, column, lines, path)
        else:
            values[column.name], present[column.name] = typed
    if not problems:
        return Block(path, batch, values, present)
    _fail_or_keep(problems, counts, skip_bad_rows)
    bad_lines = {p.line for p in problems}
    keep_mask = np.array([line not in bad_lines for line in lines])
    good = batch.filter(pa.array(keep_mask))
    return _typed_block(path, good, serving, lines[keep_mask], counts, skip_bad_rows)
