"""Score CSV files with a pushed version, in-process, and write one probability per row.

    python -m serving.batch_predict trips.csv --out scores.csv
    python -m serving.batch_predict a.csv b.csv --keep trip_id --out scores.parquet
    python -m serving.batch_predict trips.csv --label stable --skip-bad-rows --out s.csv

Inputs are CSV files with the columns the pipeline reads (`tips` optional,
other columns only when `--keep` names them). They are read in blocks
(`serving/batch_input.py`) and scored by the pushed version (newest by
default, `--version V` or `--label stable|canary` from the live serving
config) loaded with TensorFlow alone through its serving signature
(`serving/batch_model.py`), so memory does not grow with the input.

The output holds one row per input row, in input order: the `--keep` columns
as they were read, then `probability`; CSV or Parquet by the file's suffix
(or `--format`). It is written under a temporary name beside the target and
renamed at the end, so a failed run leaves no partial file. A bad row stops the
run with its file and line before anything is renamed into place;
`--skip-bad-rows` counts and skips such rows instead.

The run is recorded in ML Metadata (inputs, model version, output, row
counts) and shows in `python -m review.lineage` under the version it used.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from metadata import serving_records
from metadata import store as metadata_store
from options import declared as options_declared
from serving import MODEL_NAME
from serving import capture as capture_log
from serving import rollout_config as rc
from serving.batch_input import DEFAULT_BLOCK_BYTES, Block, ReadCounts, read_blocks
from serving.examples import DEFAULT_SCHEMA, ClientError, load_columns

PROBABILITY_COLUMN = "probability"
MAX_REPORTED_BAD_ROWS = 10


@dataclass(frozen=True)
class Result:
    rows: int
    bad: list  # the skipped rows (serving.batch_input.Located), in input order
    version: int
    seconds: float
    phases: dict  # seconds: load, read (parse and check), encode, model, write

    def timing(self) -> str:
        return ", ".join(f"{name} {value:.1f} s" for name, value in self.phases.items())

    @property
    def skipped(self) -> int:
        return len(self.bad)


def resolve_version(serving_root: Path, version: int | None, label: str | None) -> int:
    """The version to score with: --version, the one --label names, else the newest."""
    from serving.rollout import pushed_versions

    versions = pushed_versions(serving_root)
    if not versions:
        raise ClientError(f"no pushed model under {serving_root / MODEL_NAME} "
                          "(run the pipeline first)")
    if label is not None:
        version = rc.read(serving_root).labels.get(label)
        if version is None:
            raise ClientError(f"no version is labelled '{label}' in "
                              f"{rc.live_config_path(serving_root)}")
    if version is None:
        return versions[-1]
    if version not in versions:
        raise ClientError(f"version {version} is not pushed (pushed: "
                          f"{', '.join(map(str, versions))})")
    return version


class OutputWriter:
    """CSV or Parquet, written to a temporary name and renamed into place on `commit`."""

    def __init__(self, path: Path, fmt: str):
        self.path, self.fmt = path, fmt
        self.temp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
        self._writer = None

    def write(self, table: pa.Table) -> None:
        if self._writer is None:
            if self.fmt == "parquet":
                import pyarrow.parquet as pq

                self._writer = pq.ParquetWriter(str(self.temp), table.schema)
            else:
                import pyarrow.csv as pacsv

                self._writer = pacsv.CSVWriter(str(self.temp), table.schema)
        self._writer.write_table(table)

    def commit(self, empty_schema: pa.Schema) -> None:
        if self._writer is None:
            self.write(empty_schema.empty_table())
        self._writer.close()
        os.replace(self.temp, self.path)

    def discard(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self.temp.unlink(missing_ok=True)


def output_table(block: Block, probabilities, keep: list[str]) -> pa.Table:
    columns = [block.rows.column(block.rows.schema.get_field_index(name)) for name in keep]
    arrays = columns + [pa.array(probabilities, pa.float32())]
    return pa.Table.from_arrays(arrays, names=[*keep, PROBABILITY_COLUMN])


def all_blocks(inputs: list[str], columns, keep: list[str], counts: ReadCounts,
               skip_bad_rows: bool, block_bytes: int) -> Iterator[Block]:
    for path in inputs:
        yield from read_blocks(path, columns, keep, counts, skip_bad_rows, block_bytes)


class _BlockRows(Sequence):
    """A block's rows as dicts of the schema's columns, built only for the rows indexed
    (the capture writer indexes the rows it samples)."""

    def __init__(self, rows: pa.RecordBatch, names: list[str]):
        self._columns = {n: rows.column(n) for n in names if n in rows.schema.names}
        self._length = rows.num_rows

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, i):  # noqa: ANN001 - int only
        return {n: c[i].as_py() for n, c in self._columns.items() if c[i].is_valid}


class _Column(Sequence):
    """One column of a block, a value per index, as text (ids for the capture log)."""

    def __init__(self, column: pa.Array):
        self._column = column

    def __len__(self) -> int:
        return len(self._column)

    def __getitem__(self, i):  # noqa: ANN001 - int only
        return self._column[i].as_py()


def capture_block(capture, block: Block, probabilities, version: int,
                  names: list[str], id_column: str | None) -> None:
    """Log the capture writer's sample of a scored block (serving/capture.py)."""
    ids = _Column(block.rows.column(id_column)) if id_column else None
    capture.log(_BlockRows(block.rows, names), list(probabilities), version=version, ids=ids)


def predict(inputs: list[str], out: Path, serving_root: Path, *, keep: list[str] = (),
            version: int | None = None, label: str | None = None, fmt: str = "auto",
            skip_bad_rows: bool = False, schema: str = str(DEFAULT_SCHEMA),
            block_bytes: int = DEFAULT_BLOCK_BYTES, capture=None,
            capture_id_column: str | None = None) -> Result:
    """Score `inputs` into `out`; see the module docstring."""
    from serving.batch_model import Scorer, score_blocks

    started = time.perf_counter()
    keep = list(keep)
    fmt = fmt if fmt != "auto" else ("parquet" if out.suffix == ".parquet" else "csv")
    if not out.parent.is_dir():
        raise ClientError(f"output folder not found: {out.parent}")
    columns = load_columns(schema)
    chosen = resolve_version(serving_root, version, label)
    serving_columns = [c for c in columns.values() if c.serving]
    loading = time.perf_counter()
    scorer = Scorer(str(serving_root / MODEL_NAME / str(chosen)), serving_columns)
    loading = time.perf_counter() - loading  # TensorFlow's import and the model's load
    counts = ReadCounts()
    writer = OutputWriter(out, fmt)
    schema_out = pa.schema([*(pa.field(k, pa.string()) for k in keep),
                            pa.field(PROBABILITY_COLUMN, pa.float32())])
    writing = 0.0
    try:
        blocks = all_blocks(inputs, columns, keep, counts, skip_bad_rows, block_bytes)
        for block, probabilities in score_blocks(scorer, blocks):
            began = time.perf_counter()
            if capture is not None:
                capture_block(capture, block, probabilities, chosen,
                              [c.name for c in serving_columns], capture_id_column)
            writer.write(output_table(block, probabilities, keep))
            writing += time.perf_counter() - began
        began = time.perf_counter()
        writer.commit(schema_out)
        writing += time.perf_counter() - began
    except BaseException:
        writer.discard()
        raise
    seconds = time.perf_counter() - started
    phases = {"load": loading, "read": 0.0, "encode": scorer.seconds["encode"],
              "model": scorer.seconds["model"], "write": writing}
    phases["read"] = max(0.0, seconds - sum(phases.values()))
    return Result(counts.rows, counts.bad, chosen, seconds, phases)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m serving.batch_predict",
        description="Score CSV files of taxi trips with a pushed model version, in-process.")
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="CSV files with a header")
    parser.add_argument("--out", required=True, help="output file (.csv or .parquet)")
    parser.add_argument("--format", choices=("auto", "csv", "parquet"), default="auto",
                        help="output format (default: from the --out suffix)")
    parser.add_argument("--keep", action="append", default=[], metavar="COLUMN",
                        help="input column copied to the output before the probability "
                             "(repeatable, or comma-separated), e.g. an id")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--version", type=int, default=None, help="pushed version to use")
    which.add_argument("--label", default=None,
                       help="use the version this label names in the live serving config "
                            "(stable, canary)")
    parser.add_argument("--skip-bad-rows", action="store_true",
                        help="count and skip rows that cannot be scored instead of stopping")
    parser.add_argument("--output-dir", default="outputs",
                        help="the pipeline's --output-dir: pushed models and ML Metadata "
                             "(default: %(default)s)")
    parser.add_argument("--schema", default=str(DEFAULT_SCHEMA),
                        help="schema giving each column's type (default: schema/schema.pbtxt)")
    parser.add_argument("--block-mb", type=float, default=DEFAULT_BLOCK_BYTES / 2**20,
                        help="MiB of CSV read per block (default: %(default)s)")
    capture_log.add_cli_options(parser, "an input column logged as each row's id (e.g. trip_id), "
                                        "for monitoring.check --as-span; it is kept in the output "
                                        "too")
    options_declared.add_metadata_option(parser)
    args = parser.parse_args(argv)
    args.keep = [name.strip() for item in args.keep for name in item.split(",") if name.strip()]
    return args


def run(args: argparse.Namespace) -> int:
    where = options_declared.metadata_location(args)
    out = Path(args.out)
    keep = list(dict.fromkeys([*args.keep, *([args.capture_id_column]
                                             if args.capture_id_column else [])]))
    capture = None
    if args.capture:
        capture = capture_log.CaptureWriter(args.capture, args.capture_rate)
    try:
        result = predict(
            args.inputs, out, Path(args.output_dir) / "serving_model", keep=keep,
            version=args.version, label=args.label, fmt=args.format,
            skip_bad_rows=args.skip_bad_rows, schema=args.schema,
            block_bytes=int(args.block_mb * 2**20), capture=capture,
            capture_id_column=args.capture_id_column)
    finally:
        if capture is not None:
            capture.close()
    for problem in result.bad[:MAX_REPORTED_BAD_ROWS]:
        print(f"skipped: {problem}", file=sys.stderr)
    if len(result.bad) > MAX_REPORTED_BAD_ROWS:
        print(f"skipped: ... and {len(result.bad) - MAX_REPORTED_BAD_ROWS} more", file=sys.stderr)
    recorded = ""
    if not isinstance(where, str) or Path(where).exists():
        run_record = serving_records.BatchRun(
            [str(Path(p).resolve()) for p in args.inputs], str(out.resolve()), result.version,
            result.rows, result.skipped, result.seconds)
        execution = serving_records.record_batch_prediction(where, MODEL_NAME, run_record)
        recorded = f"; recorded in ML Metadata (execution {execution})"
    print(f"scored {result.rows} rows with version {result.version} in {result.seconds:.1f} s"
          f" ({result.skipped} bad rows skipped; {result.timing()}) -> {out}{recorded}",
          file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return run(args)
    except ClientError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except (ValueError, FileNotFoundError, metadata_store.MetadataConnectionError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
