"""Two real runs into one folder, the second served from the cache (made once).

The progress, report and lineage tests need to know exactly which run they
look at: the first run (every component ran, no baseline) and a second one
(upstream components cached, the Evaluator compared with the first run's
blessed model). The session's `pipeline_run` folder cannot give that: other
tests re-run the pipeline in it, which adds runs and rewrites its report. So
these runs have their own folder, and the first run's report is copied away
before the second run replaces it. The pair is memoized per process, because
a pytest fixture defined in several modules would run once per module.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import DATA, PipelineRun, run_pipeline


@dataclass
class TwoRuns:
    first: PipelineRun
    second: PipelineRun
    first_report: Path  # a copy of report/ as the first run wrote it

    @property
    def output_dir(self) -> Path:
        return self.first.output_dir


_MADE: list[TwoRuns] = []


def _run(output_dir: Path, which: str) -> PipelineRun:
    run = run_pipeline(DATA, output_dir)
    assert run.returncode == 0, f"{which} run failed:\n{run.stdout}\n{run.stderr[-5000:]}"
    return run


def two_runs(tmp_path_factory) -> TwoRuns:
    """The pair of runs, made on first use."""
    if not _MADE:
        scratch = tmp_path_factory.mktemp("two_runs")
        output_dir = scratch / "output"
        first = _run(output_dir, "first")
        first_report = scratch / "first_report"
        shutil.copytree(output_dir / "report", first_report)
        _MADE.append(TwoRuns(first, _run(output_dir, "second"), first_report))
    return _MADE[0]
