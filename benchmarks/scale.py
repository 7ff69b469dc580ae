"""`python -m benchmarks.scale RESULT.json...`: one table across input sizes.

Each `python -m benchmarks --rows N` invocation saves its results as JSON
(`<work-dir>/results/<stamp>.json`). This puts the cold runs of several of
them (1M, 3M and 10M rows, ours and TFX's example) side by side: wall and CPU
time, both per million rows so growth shows, peak memory of the process tree,
and each component's time, so a cliff is visible at a glance. Load averages
are shown because a shared machine inflates wall time but hardly CPU time.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from benchmarks.report import COLD, GIB, LABELS

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
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
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
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    paths = [Path(p) for p in (sys.argv[1:] if argv is None else argv)]
    if not paths:
        print("usage: python -m benchmarks.scale RESULT.json...", file=sys.stderr)
        return 2
    print(render([row for path in paths for row in read_rows(path)]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
