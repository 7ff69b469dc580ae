"""Per-run facts from ML Metadata, read with the runner's own functions (metadata/outcome.py).

Runs as a subprocess (`python -m benchmarks.mlmd STORE...`, printing JSON) so
the benchmark process itself never imports TensorFlow/TFMA: it stays small and
cannot disturb the runs it measures. The same functions print the run summary
of `local_runner.py`, so the benchmark reports what a user reads.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field


@dataclass
class ComponentTime:
    """One component's execution, as recorded in ML Metadata."""

    component: str
    state: str
    seconds: float


@dataclass
class RecordedRun:
    """One pipeline run of a store, oldest first in `read_stores` output."""

    run_id: str
    components: list[ComponentTime] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    blessed: bool | None = None
    error: str | None = None  # why metrics could not be read, if they could not

    @property
    def component_seconds(self) -> float:
        return sum(c.seconds for c in self.components)


def read_store(metadata_path: str) -> list[dict]:
    """Every run recorded in one store, as plain dicts.

    Component times come from `component_runs` first, so a failure to read
    metrics (e.g. no Evaluator output in a failed run) still leaves the times.
    """
    from metadata.graph import MetadataGraph
    from metadata.outcome import read_outcome

    graph = MetadataGraph(metadata_path)
    runs = []
    for run_id in graph.run_ids():
        components = [
            ComponentTime(c.component, c.state, c.seconds) for c in graph.component_runs(run_id)
        ]
        run = RecordedRun(run_id=run_id, components=components)
        try:
            recorded = read_outcome(metadata_path, run_id)
            run.metrics, run.blessed = recorded.metrics, recorded.blessed
        except Exception as error:  # noqa: BLE001 - reported next to the times
            run.error = f"{type(error).__name__}: {error}"
        runs.append(asdict(run))
    return runs


def parse_runs(payload: list[dict]) -> list[RecordedRun]:
    """The inverse of `read_store`'s dicts (they cross a process boundary as JSON)."""
    return [
        RecordedRun(
            run_id=item["run_id"],
            components=[ComponentTime(**c) for c in item.get("components", [])],
            metrics={k: float(v) for k, v in item.get("metrics", {}).items()},
            blessed=item.get("blessed"),
            error=item.get("error"),
        )
        for item in payload
    ]


def parse_output(text: str) -> dict[str, list[RecordedRun]]:
    """Parse what this module prints as `__main__`: {store path: runs}.

    The JSON is the last line; TensorFlow may print before it.
    """
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise ValueError("no output from the ML Metadata reader")
    return {path: parse_runs(runs) for path, runs in json.loads(lines[-1]).items()}


def main(paths: list[str]) -> int:
    result: dict[str, list[dict]] = {}
    for path in paths:
        try:
            result[path] = read_store(path)
        except Exception as error:  # noqa: BLE001 - one unreadable store must not hide others
            print(f"cannot read {path}: {type(error).__name__}: {error}", file=sys.stderr)
            result[path] = []
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
