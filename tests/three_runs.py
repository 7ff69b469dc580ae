"""Three real runs into one folder: fresh, retrained from the cache, and repeated.

The progress, report and lineage tests need to know exactly which run they
look at. The first run computes everything (no baseline yet). The second
changes only the number of training steps, so everything up to Transform
comes from the cache while Trainer, Evaluator and Pusher run again, and the
Evaluator compares the new model with the first run's blessed one. The third
repeats the second with nothing changed, so it is cached end to end.

The session's `pipeline_run` folder cannot serve here: other tests re-run
the pipeline in it, which adds runs and rewrites its report. So these runs
have their own folder, and each report is copied away before the next run
replaces it. The pair is memoized per process, because a pytest
fixture defined in several modules would run once per module.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from pipeline.configs import PipelineConfig
from tests.conftest import DATA, PipelineRun, run_pipeline

# Components the second run must take from the cache (their inputs are unchanged).
CACHED_IN_SECOND_RUN = ("CsvExampleGen", "StatisticsGen", "FeatureSelection", "Transform")


@dataclass
class ThreeRuns:
    first: PipelineRun
    second: PipelineRun
    repeat: PipelineRun
    first_report: Path  # a copy of report/ as the first run wrote it
    second_report: Path

    @property
    def output_dir(self) -> Path:
        return self.first.output_dir


_MADE: list[ThreeRuns] = []


def _run(output_dir: Path, which: str, *extra: str) -> PipelineRun:
    run = run_pipeline(DATA, output_dir, *extra)
    assert run.returncode == 0, f"{which} run failed:\n{run.stdout}\n{run.stderr[-5000:]}"
    return run


def three_runs(tmp_path_factory) -> ThreeRuns:
    """The runs, made on first use."""
    if not _MADE:
        scratch = tmp_path_factory.mktemp("three_runs")
        output_dir = scratch / "output"
        first = _run(output_dir, "first")
        shutil.copytree(output_dir / "report", scratch / "first_report")
        steps = ("--train-steps", str(PipelineConfig().train_steps - 1))
        second = _run(output_dir, "second", *steps)
        shutil.copytree(output_dir / "report", scratch / "second_report")
        repeat = _run(output_dir, "repeated", *steps)
        _MADE.append(ThreeRuns(first, second, repeat, scratch / "first_report",
                             scratch / "second_report"))
    return _MADE[0]
