"""`python -m benchmarks.scale RESULT.json...`: one table across input sizes.

Each `python -m benchmarks --rows N` invocation saves its results as JSON
(`<work-dir>/results/<stamp>.json`). This puts the cold runs of several of
them (1M, 3M and 10M rows, ours and TFX's example) side by side: wall and CPU
time, both per million rows so growth shows, peak memory of the process tree,
and each component's time, so a cliff is visible at a glance. Load averages
are shown because a shared machine inflates wall time but hardly CPU time.

`python -m benchmarks.scale --run 1000000 30000000 100000000` runs one cold
run of our pipeline per size first (one `python -m benchmarks` invocation
each), then prints the table of those runs. An input of
`--delete-inputs-from` rows or more (default 50M: 100M rows are a 12.8 GB
CSV) is generated for its run and deleted after it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from benchmarks import data, tables
from benchmarks.report import COLD, GIB, LABELS

DEFAULT_WORK_DIR = "/tmp/taxi-tfx-bench"
DELETE_INPUTS_FROM = 50_000_000

# Components shown as columns; the rest are summed into "other components".
SHOWN_COMPONENTS = ("CsvExampleGen", "StatisticsGen", "Transform", "Trainer", "Evaluator")


@dataclass(frozen=True)
class ScaleRow:
    """One cold run, as read from a saved benchmark result."""

    rows: int
    pipeline: str
    wall: float
    cpu: float
    peak_tree_bytes: int
    largest_process_bytes: int
    load: tuple[float, float]
    components: dict[str, float]
    blessed: bool | None
    ok: bool

    @property
    def outside_components(self) -> float | None:
        return self.wall - sum(self.components.values()) if self.components else None


def rows_of(dataset: str) -> int:
    """10,000,000 from '10,000,000 rows (data/data.csv resampled ...)'."""
    return int(dataset.split(" ", 1)[0].replace(",", ""))


def read_rows(path: Path) -> list[ScaleRow]:
    report = json.loads(path.read_text())
    rows = rows_of(report["dataset"])
    found = []
    for result in report["results"]:
        if result["kind"] != COLD:
            continue
        m = result["measurement"]
        recorded = result.get("recorded") or {}
        found.append(
            ScaleRow(
                rows=rows,
                pipeline=result["pipeline"],
                wall=m["wall_seconds"],
                cpu=m["cpu_seconds"],
                peak_tree_bytes=m["peak_tree_rss_bytes"],
                largest_process_bytes=m["max_process_rss_bytes"],
                load=(result["load_before"], result["load_after"]),
                components={
                    c["component"]: c["seconds"] for c in recorded.get("components", [])
                },
                blessed=recorded.get("blessed"),
                ok=m["returncode"] == 0 and not m["timed_out"],
            )
        )
    return found


def _seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def render(rows: list[ScaleRow]) -> str:
    header = [
        "rows", "pipeline", "wall s", "wall s / M rows", "CPU s", "CPU s / M rows",
        "peak RSS tree GiB (largest process)", *SHOWN_COMPONENTS, "other components",
        "outside components", "blessed", "load before → after",
    ]
    table_rows = []
    for row in sorted(rows, key=lambda r: (r.rows, r.pipeline)):
        millions = row.rows / 1e6
        shown = [row.components.get(name) for name in SHOWN_COMPONENTS]
        other = sum(v for k, v in row.components.items() if k not in SHOWN_COMPONENTS)
        status = "" if row.ok else " (FAILED)"
        cells = [
            f"{row.rows:,}",
            LABELS.get(row.pipeline, row.pipeline) + status,
            _seconds(row.wall),
            _seconds(row.wall / millions),
            _seconds(row.cpu),
            _seconds(row.cpu / millions),
            f"{row.peak_tree_bytes / GIB:.2f} ({row.largest_process_bytes / GIB:.2f})",
            *map(_seconds, shown),
            _seconds(other if row.components else None),
            _seconds(row.outside_components),
            {None: "–", True: "yes", False: "no"}[row.blessed],
            f"{row.load[0]:.1f} → {row.load[1]:.1f}",
        ]
        table_rows.append(cells)
    return tables.markdown_table(header, table_rows)


def run_size(rows: int, work_dir: Path, delete_input: bool, extra: list[str]) -> Path | None:
    """One cold run of our pipeline on `rows` rows; the result JSON it saved
    (None if it saved none). The input is deleted after the run if asked."""
    results = work_dir / "results"
    before = set(results.glob("*.json")) if results.is_dir() else set()
    command = [
        sys.executable, "-m", "benchmarks", "--rows", str(rows), "--which", "ours",
        "--rounds", "1", "--reruns", "0", "--sdist-repeats", "0",
        "--work-dir", str(work_dir), *extra,
    ]
    print("$", " ".join(command), flush=True)
    try:
        subprocess.run(command, check=False)
    finally:
        if delete_input:
            source_sha = hashlib.sha256(data.SOURCE_CSV.read_bytes()).hexdigest()
            folder = data.dataset_dir(work_dir, rows, data.DEFAULT_SEED, source_sha)
            shutil.rmtree(folder, ignore_errors=True)
            print(f"deleted the {rows:,}-row input ({folder})", flush=True)
    new = sorted(set(results.glob("*.json")) - before)
    return new[-1] if new else None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.scale", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("results", nargs="*", type=Path, help="saved result JSON files")
    parser.add_argument("--run", nargs="+", type=int, default=[], metavar="ROWS",
                        help="run our pipeline cold on each size first, then show those runs")
    parser.add_argument("--work-dir", type=Path, default=Path(DEFAULT_WORK_DIR),
                        help="work dir of the runs (default: %(default)s)")
    parser.add_argument("--delete-inputs-from", type=int, default=DELETE_INPUTS_FROM,
                        metavar="ROWS", help="delete inputs of this many rows or more after "
                        "their run (default: %(default)s)")
    parser.add_argument("--bench-arg", action="append", default=[], metavar="ARG",
                        help="extra argument for each `python -m benchmarks` run")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    paths = list(args.results)
    for rows in args.run:
        saved = run_size(rows, args.work_dir, rows >= args.delete_inputs_from, args.bench_arg)
        if saved is None:
            print(f"the {rows:,}-row run saved no results", file=sys.stderr)
        else:
            paths.append(saved)
    if not paths:
        print("usage: python -m benchmarks.scale RESULT.json... | --run ROWS...", file=sys.stderr)
        return 2
    print(render([row for path in paths for row in read_rows(path)]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
