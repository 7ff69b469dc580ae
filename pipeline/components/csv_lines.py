"""How a CSV file's header is read, and where a file breaks: the line of its
first row that is not as wide as its header, or that is not UTF-8 text.

`read_header` is the one reader of column names: the preflight, the streaming
CsvExampleGen (csv_columns.py) and TFX's own CSV reader on a distributed
runner (through csv_columns.read_header) all take a file's names from it, so
a quoted header reads the same everywhere.

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


def read_header(reader: Iterator[list[str]], path: object) -> list[str]:
    """The column names on the first record of `reader` (a `csv.reader`), its
    quotes removed as Python's csv module removes them from every row.

    Refused with one line (`BadLine`): no header of at least two names, an
    empty name, or a name holding a comma or a line break. Such a name could
    not be named back: `--allow-anomaly` entries are stored comma-separated
    (metadata.names.ALLOWED_ANOMALIES), and TFX's CSV reader skips the header
    as one line.
    """
    header = next(reader, [])
    if len(header) < 2 or any(not name.strip() for name in header):
        raise BadLine(f"{path} does not start with a CSV header line of column names")
    odd = next((name for name in header if any(c in name for c in ",\r\n")), None)
    if odd is not None:
        shown = odd.replace("\r\n", "\n")  # as csv.reader gives it from a text file or lines
        raise BadLine(
            f"{path}: the column name {shown!r} holds a comma or a line break; rename that column"
        )
    return header


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


def decoded_lines(f: IO[bytes], path: object) -> Iterator[str]:
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
        reader = csv.reader(decoded_lines(f, path))
        header = read_header(reader, path)
        check_widths(path, numbered_rows(reader, drop_last=False), len(header))
    except BadLine as error:
        return str(error)
    except csv.Error as error:
        return f"{path} line {reader.line_num}: {error}"
    return None
