"""Checks that run before TFX starts, so unusable input fails fast and clearly.

Each check raises `InputError` with one line a user can act on; nothing is
written anywhere before they pass. What the data *contains* (types, domains,
presence, drift) is the validation gate's job; these checks are about whether
there is readable CSV at all, and whether the output folder can be written.

What spreadsheets and exports commonly write is accepted: a UTF-8 byte-order
mark (Excel's "CSV UTF-8"), CRLF line ends, quoted cells (also quoted
numbers) and empty lines (skipped, as CsvExampleGen's executor skips them).
Gzip-compressed CSV is refused with one line: CsvExampleGen reads plain text.
"""

from __future__ import annotations

import csv
import io
import os
import re
import uuid
from pathlib import Path

from pipeline.components.csv_lines import BadLine, check_widths, numbered_rows, read_header

SPAN_DIR = re.compile(r"^span-(\d+)$")
# Only *.csv files are read, so a README or other notes may sit beside the data.
SPAN_PATTERN = "span-{SPAN}/*.csv"
FLAT_PATTERN = "*.csv"
# What Excel's "CSV UTF-8" puts before the header; decoding with "utf-8-sig"
# drops it, so the first column keeps its name.
ENCODING = "utf-8-sig"
GZIP_MAGIC = b"\x1f\x8b"
# Bytes of each CSV file read row by row before the run (about 500k taxi rows).
CHECKED_BYTES = 64 * 1024**2


class InputError(ValueError):
    """The input or output location cannot be used; the message is one line."""


def span_dirs(data_root: Path) -> dict[int, Path]:
    return {
        int(m.group(1)): p
        for p in data_root.iterdir()
        if p.is_dir() and (m := SPAN_DIR.match(p.name))
    }


def input_pattern(data_root: str) -> str:
    """CsvExampleGen's file pattern: the newest `span-N/` folder, else the CSVs at the root."""
    return SPAN_PATTERN if span_dirs(Path(data_root)) else FLAT_PATTERN


def input_files(data_root: str) -> list[Path]:
    """The files CsvExampleGen will read for this data root."""
    root = Path(data_root)
    if not root.is_dir():
        raise InputError(f"data folder not found: {data_root}")
    spans = span_dirs(root)
    folder = spans[max(spans)] if spans else root
    compressed = sorted(p for p in folder.glob("*.csv.gz") if p.is_file())
    if compressed:
        raise InputError(
            f"{compressed[0]} is gzip-compressed CSV, which is not read: "
            f"decompress it (gunzip {compressed[0]}) or move it out of {folder}"
        )
    files = sorted(p for p in folder.glob("*.csv") if p.is_file())
    if not files:
        raise InputError(f"no CSV files in {folder} (looked for *.csv)")
    return files


def check_csv(path: Path) -> tuple[list[str], int]:
    """The header and row count of a readable CSV file with at least one row, all
    rows as wide as the header.

    Python's csv module reads about half a million rows a second, so only the
    first `CHECKED_BYTES` of a file are read row by row; a larger file's row
    count is estimated from its size (it only sizes the eval split), and
    CsvExampleGen's first pass checks the rest of it before writing anything.
    """
    size = path.stat().st_size
    if size == 0:
        raise InputError(f"{path} is empty")
    with open(path, "rb") as f:
        head = f.read(CHECKED_BYTES)
    if head.startswith(GZIP_MAGIC):
        raise InputError(f"{path} is gzip-compressed; decompress it to plain CSV text first")
    if b"\x00" in head[:4096]:
        raise InputError(f"{path} is not a CSV text file (it contains binary data)")
    truncated = len(head) < size
    if truncated:  # whole lines only; a quoted cell cut in two is not checked
        head = head[: head.rfind(b"\n") + 1]
    try:
        reader = csv.reader(io.StringIO(head.decode(ENCODING), newline=""))
        header = read_header(reader, path)
        rows = check_widths(path, numbered_rows(reader, drop_last=truncated), len(header))
    except BadLine as error:
        raise InputError(str(error)) from None
    except UnicodeDecodeError as error:
        raise InputError(f"{path} is not a UTF-8 CSV text file ({error.reason})") from None
    except csv.Error as error:
        raise InputError(f"{path} is not valid CSV: {error}") from None
    if rows == 0:
        raise InputError(f"{path} has a header but no rows")
    if truncated:
        rows = round(rows * size / len(head))
    return header, rows


def check_data(data_root: str) -> tuple[list[Path], int]:
    """The input files and their total rows, once every file is usable CSV and
    they all share one header."""
    files = input_files(data_root)
    checked = {path: check_csv(path) for path in files}
    first = files[0]
    for path, (header, _) in checked.items():
        if sorted(header) == sorted(checked[first][0]) and header != checked[first][0]:
            raise InputError(
                f"{path} has the columns of {first} in a different order; "
                "files read together must share one header line"
            )
        if header != checked[first][0]:
            raise InputError(f"{path} has different columns from {first}")
    return files, sum(rows for _, rows in checked.values())


def check_schema(schema_path: str) -> None:
    if not Path(schema_path).is_file():
        raise InputError(f"schema file not found: {schema_path}")


def check_output_dir(output_dir: str) -> None:
    """The output folder exists or can be created, and a file can be written in it."""
    try:
        os.makedirs(output_dir, exist_ok=True)
        probe = Path(output_dir) / f".write-test-{uuid.uuid4().hex}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise InputError(
            f"cannot write to output folder {output_dir}: {error.strerror or error}"
        ) from None
