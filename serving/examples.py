"""Raw taxi rows (CSV or JSON lines) as serialized tf.Examples typed by the curated schema.

Each row becomes a `tf.Example` typed by the schema (INT -> int64_list, FLOAT ->
float_list, BYTES -> bytes_list; an empty cell or a null is an absent feature).
Columns the schema keeps out of the SERVING environment (the label source
`tips`) are dropped. Every row is checked before anything is sent: a bad row is
reported with its line number (`BadRows`). `serving.client` sends the result;
the request capture (serving/capture.py) logs rows converted the same way.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from models import features

DEFAULT_SCHEMA = Path(__file__).resolve().parent.parent / "schema" / "schema.pbtxt"

_KINDS = {"INT": "int64_list", "FLOAT": "float_list", "BYTES": "bytes_list"}


class ClientError(Exception):
    """A failure the CLI prints as one line; `exit_code` is what it exits with."""

    exit_code = 1


class BadRows(ClientError):
    """Some input rows cannot become tf.Examples; nothing was sent."""

    exit_code = 2

    def __init__(self, problems: list[BadRow]):
        self.problems = problems
        super().__init__(f"{len(problems)} bad row(s); nothing was sent")


@dataclass(frozen=True)
class BadRow:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass(frozen=True)
class Column:
    """A raw column: its tf.Example list kind, and whether the model is sent it."""

    name: str
    kind: str  # "int64_list" | "float_list" | "bytes_list"
    serving: bool


def load_columns(schema_path: str | Path = DEFAULT_SCHEMA) -> dict[str, Column]:
    """Column name -> Column, from the curated schema the model was trained with."""
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    path = Path(schema_path)
    if not path.is_file():
        raise ClientError(f"schema not found: {path} (pass --schema)")
    schema = text_format.Parse(path.read_text(), schema_pb2.Schema())
    columns = {}
    for feature in schema.feature:
        kind = _KINDS.get(schema_pb2.FeatureType.Name(feature.type))
        if kind is None:
            continue
        serving = "SERVING" not in feature.not_in_environment and (
            not feature.in_environment or "SERVING" in feature.in_environment
        )
        columns[feature.name] = Column(feature.name, kind, serving)
    return columns


def convert(value: object, column: Column) -> int | float | bytes | None:
    """A raw cell (CSV text or JSON value) as the column's kind; None if absent.

    Raises ValueError with a message fit for a user when the value has the
    wrong type, so the caller can say which line it came from.
    """
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return None
    if isinstance(value, bool) or isinstance(value, (list, dict)):
        raise ValueError(f"column '{column.name}': {json.dumps(value)} is not a single value")
    if column.kind == "bytes_list":
        if not isinstance(value, str):
            raise ValueError(f"column '{column.name}': expected text, got {json.dumps(value)}")
        return value.encode("utf-8")
    if column.kind == "int64_list":
        if isinstance(value, float) or (isinstance(value, str) and not _is_int(value)):
            raise ValueError(f"column '{column.name}': {value!r} is not an integer")
        return int(value)
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"column '{column.name}': {value!r} is not a number") from None
    if not math.isfinite(number):
        raise ValueError(f"column '{column.name}': {value!r} is not a finite number")
    return number


def _is_int(text: str) -> bool:
    text = text.strip()
    return text.lstrip("+-").isdigit()


def without_label(serialized: bytes) -> bytes:
    """The example as a client sends it: the label source `tips` removed."""
    from tensorflow.core.example import example_pb2

    example = example_pb2.Example.FromString(serialized)
    if features.TIPS_KEY in example.features.feature:
        del example.features.feature[features.TIPS_KEY]
    return example.SerializeToString()


def to_example(values: dict[str, int | float | bytes], columns: dict[str, Column]) -> bytes:
    """A serialized tf.Example holding `values` with the schema's list kinds."""
    from tensorflow.core.example import example_pb2

    example = example_pb2.Example()
    for name, value in values.items():
        feature = example.features.feature[name]
        getattr(feature, columns[name].kind).value.append(value)
    return example.SerializeToString()


def row_values(
    cells: dict[str, object], columns: dict[str, Column], line: int, problems: list[BadRow]
) -> dict[str, int | float | bytes] | None:
    """A row's serving values by column, typed; None (and `problems` told why)
    when a column is unknown or a value has the wrong type."""
    values, bad = {}, False
    for name, raw in cells.items():
        column = columns.get(name)
        if column is None:
            problems.append(BadRow(line, f"unknown column '{name}'"))
            bad = True
            continue
        if not column.serving:
            continue
        try:
            value = convert(raw, column)
        except ValueError as error:
            problems.append(BadRow(line, str(error)))
            bad = True
            continue
        if value is not None:
            values[name] = value
    return None if bad else values


def csv_rows(
    lines: Iterable[str], columns: dict[str, Column], problems: list[BadRow]
) -> Iterable[tuple[int, dict[str, str]]]:
    """(line number, header -> cell) for each well-formed CSV record.

    The header is checked once (an unknown column there would otherwise be
    reported on every row); a record with the wrong number of fields goes to
    `problems`.
    """
    reader = csv.reader(lines)
    header = next(reader, None)
    if not header:
        return
    # Excel's "CSV UTF-8" starts with a byte-order mark; it is not part of the name.
    header[0] = header[0].removeprefix("\ufeff")
    duplicates = sorted({name for name in header if header.count(name) > 1})
    unknown = [name for name in header if name not in columns]
    if duplicates or unknown:
        raise BadRows(
            [BadRow(1, f"duplicate column '{name}' in the header") for name in duplicates]
            + [BadRow(1, f"unknown column '{name}'") for name in unknown]
        )
    for record in reader:
        if not record:
            continue
        if len(record) != len(header):
            problems.append(
                BadRow(reader.line_num, f"{len(record)} fields, but the header has {len(header)}")
            )
            continue
        yield reader.line_num, dict(zip(header, record, strict=True))


def json_rows(lines: Iterable[str], problems: list[BadRow]) -> Iterable[tuple[int, dict]]:
    """(line number, object) for each non-blank JSON line that is an object."""
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            row = json.loads(text)
        except json.JSONDecodeError as error:
            problems.append(BadRow(number, f"not JSON: {error.msg}"))
            continue
        if not isinstance(row, dict):
            problems.append(BadRow(number, "expected a JSON object of column -> value"))
            continue
        yield number, row


def read_examples(
    lines: Sequence[str], columns: dict[str, Column], fmt: str = "auto"
) -> tuple[list[bytes], list[str]]:
    """Serialized tf.Examples for every row, and the non-serving columns dropped.

    Raises BadRows listing every bad row when any row is bad: a partial answer
    would not line up with the input.
    """
    if fmt == "auto":
        first = next((line for line in lines if line.strip()), "")
        fmt = "jsonl" if first.lstrip().startswith("{") else "csv"
    problems: list[BadRow] = []
    rows = json_rows(lines, problems) if fmt == "jsonl" else csv_rows(lines, columns, problems)
    examples, dropped = [], set()
    for line, cells in rows:
        dropped.update(n for n in cells if n in columns and not columns[n].serving)
        values = row_values(cells, columns, line, problems)
        if values is not None:
            examples.append(to_example(values, columns))
    if problems:
        raise BadRows(sorted(problems, key=lambda p: p.line))
    return examples, sorted(dropped)
