"""Where a CSV file breaks: the line of its first row that is not as wide as
its header, or that is not UTF-8 text.

The preflight (pipeline/preflight.py) reads the head of every file row by row
and names a bad row by its line; the streaming CsvExampleGen
(csv_columns.py) reads whole blocks with pyarrow, whose errors name no line.
Both give the same message, from here: when a block fails to parse, the file
is read again row by row up to the bad row, so the cost of finding the line
is paid only by a bad file. Standard library only: the preflight runs before
TensorFlow is loaded.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterable, Iterator
from typing import IO

UTF8_BOM = b"\xef\xbb\xbf"


class BadLine(ValueError):
    """A row of a CSV file cannot be read; the message names the file and line."""


def ragged_message(path: object, line: int, fields: int, width: int) -> str:
    return f"{path} line {line}: {fields} fields, the header has {width}"


def numbered_rows(reader: Iterator[list[str]], drop_last: bool) -> Iterator[tuple[list, int]]:
    """(row, line number where it ends) of a `csv.reader`; without the last row
    if `drop_last` (it may be cut short)."""
    previous = None
    for row in reader:
        if previous is not None:
            yield previous
        previous = (row, reader.line_num)
    if previous is not None and not drop_last:
        yield previous


def check_widths(path: object, rows: Iterable[tuple[list, int]], width: int) -> int:
    """The number of rows (empty lines skipped); raises `BadLine` at the first
    row whose width is not `width`."""
    count = 0
    for row, line in rows:
        if not row:  # an empty line, e.g. the last one of many exports
            continue
        count += 1
        if len(row) != width:
            raise BadLine(ragged_message(path, line, len(row), width))
    return count


def _decoded_lines(f: IO[bytes], path: object) -> Iterator[str]:
    """`f`'s lines as text, a byte-order mark dropped; `BadLine` at the first
    line that is not UTF-8."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    for number, raw in enumerate(f, start=1):
        if number == 1:
            raw = raw.removeprefix(UTF8_BOM)
        try:
            yield decoder.decode(raw)
        except UnicodeDecodeError as error:
            raise BadLine(f"{path} line {number} is not UTF-8 text ({error.reason})") from None


def find_bad_line(f: IO[bytes], path: object) -> str | None:
    """The message naming the first unreadable row of the CSV file open in `f`
    (binary, at its start), None if every row is as wide as the header."""
    try:
        reader = csv.reader(_decoded_lines(f, path))
        header = next(reader, [])
        check_widths(path, numbered_rows(reader, drop_last=False), len(header))
    except BadLine as error:
        return str(error)
    except csv.Error as error:
        return f"{path} line {reader.line_num}: {error}"
    return None
