"""Close the loop: logged requests whose labels arrived become the next span of data.

The caller logs an id with each row (`serving.client --capture-id-column`,
`CaptureWriter.log(..., ids=...)`); once the trips' tips are known, a CSV of
ids and `tips` joins them back. The joined rows are written, with the
schema's columns, as `<data-root>/span-<N+1>/requests.csv`: the pipeline's
next run validates that span against the schema and for drift like any new
drop, retrains on it and pushes only a blessed model. Requests the check
refused are not written (the gate would refuse them too), and the folder
appears in one rename, never half-written.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np

from models import features
from serving.capture import read_captured
from serving.examples import load_columns

SPAN_FOLDER = re.compile(r"^span-(\d+)$")
SPAN_FILE = "requests.csv"


def next_span(data_root: str) -> int:
    """One more than the newest span-N/ under `data_root` (1 when there is none)."""
    spans = [int(m.group(1)) for p in Path(data_root).glob("span-*")
             if p.is_dir() and (m := SPAN_FOLDER.match(p.name))]
    return max(spans, default=0) + 1


def read_labels(path: str, id_column: str) -> dict[str, str]:
    """id -> tips from the labels CSV; ValueError naming what is missing."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        missing = [c for c in (id_column, features.TIPS_KEY) if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"labels file {path} has no column {', '.join(missing)}")
        return {row[id_column]: row[features.TIPS_KEY] for row in reader
                if row[features.TIPS_KEY].strip()}


def _cell(feature) -> str:
    kind = feature.WhichOneof("kind")
    values = list(getattr(feature, kind).value) if kind else []
    if not values:
        return ""
    value = values[0]
    if isinstance(value, bytes):
        return value.decode("utf-8")
    # tf.Example floats are float32: print the shortest text that reads back the same.
    return str(np.float32(value)) if isinstance(value, float) else str(value)


def labelled_rows(folder: str, labels: dict[str, str], header: list[str]) -> tuple[list, int]:
    """(CSV rows of logged requests that have a label, rows logged without an id's label)."""
    from tensorflow.core.example import example_pb2

    captured = read_captured(folder)
    rows, seen = [], set()
    for serialized, row_id in zip(captured.examples, captured.ids, strict=True):
        if row_id is None or row_id not in labels or row_id in seen:
            continue
        seen.add(row_id)  # a request logged twice is one trip
        example = example_pb2.Example.FromString(serialized).features.feature
        rows.append([labels[row_id] if name == features.TIPS_KEY else
                     (_cell(example[name]) if name in example else "") for name in header])
    return rows, len(captured.examples) - len(rows)


def write_span(data_root: str, rows: list[list[str]], header: list[str]) -> str:
    """Write `rows` as the next span-N/ folder in one rename; its path."""
    os.makedirs(data_root, exist_ok=True)
    target = os.path.join(data_root, f"span-{next_span(data_root)}")
    staging = tempfile.mkdtemp(prefix=".span-", dir=data_root)
    try:
        with open(os.path.join(staging, SPAN_FILE), "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(header)
            writer.writerows(rows)
        os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def write_next_span(args, result: dict) -> str:
    """--as-span: the labelled requests of a check that passed as the next span; one line."""
    if result["outcome"] != "passed":
        return "Not written as a span: the check refused these requests (the gate would too)."
    header = list(load_columns(args.schema))
    rows, unlabelled = labelled_rows(args.requests, read_labels(args.labels, args.id_column),
                                     header)
    if not rows:
        return f"Not written as a span: no logged request has a label in {args.labels}."
    path = write_span(args.as_span, rows, header)
    return (f"Span written: {path}/{SPAN_FILE} ({len(rows):,} labelled requests; "
            f"{unlabelled:,} logged rows without a label yet)")
