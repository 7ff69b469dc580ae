"""The report page: its sections assembled into `<output-dir>/report/index.html`.

`render` builds every section for one run and fills `templates/page.html`;
`write_report` writes the page and its images through a temporary folder that
is swapped in, so an existing report is never left half-overwritten and no
stale image remains. `python -m review.report` rebuilds the page of any
recorded run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import traceback

from metadata import store as pipeline_store
from metadata.errors import first_line
from metadata.evaluation import recorded_baseline
from metadata.graph import artifact_properties
from metadata.store import Location, MetadataConnectionError
from options import declared as options_declared
from review.lineage import LineageError
from review.report import data, sections
from review.report.data import RunData
from review.report.plots import Images

REPORT_DIR = "report"
# The sections every report has, in order: (id, title). Tests check them.
SECTIONS = (
    ("overview", "Run overview"),
    ("statistics", "Feature statistics"),
    ("anomalies", "Anomalies"),
    ("feature-selection", "Feature selection"),
    ("training", "Training curve"),
    ("evaluation", "Evaluation metrics"),
    ("slices", "Metrics per slice"),
    ("roc-calibration", "ROC curve and calibration"),
    ("baseline", "Comparison with the baseline model"),
    ("push", "What was pushed where"),
    ("lineage", "Lineage"),
)


def reused_text(run: RunData, execution, artifact) -> str:
    """A note when `execution` was cached: its `artifact` comes from an earlier run.

    A re-run with nothing changed reuses the Evaluator's result; without this
    note its "no baseline" would read as a statement about this run.
    """
    if execution is None or artifact is None or execution.last_known_state != execution.CACHED:
        return ""
    producer = run.graph.producer(artifact.id)
    origin = run.graph.run_of(producer) if producer is not None else "an earlier run"
    return (f"The Evaluator was cached in this run: its model and data had not changed, "
            f"so this is the evaluation computed by run {origin}.")


def render(run: RunData, folder: str, output_dir: str) -> str:
    """The page's HTML; writes its images into `folder`."""
    images = Images(folder)
    verdict, blessed = data.verdict_line(run)
    refusal = data.gate_refusal(run)
    selection = data.load_selection(run)
    selected = set(selection["selected"]) if selection else set()
    artifact = run.output("evaluation", "ModelEvaluation")
    evaluation = data.load_evaluation(artifact.uri) if artifact is not None else None
    evaluator = run.execution_with_output("evaluation", "ModelEvaluation")
    served = recorded_baseline(artifact_properties(artifact)) if artifact is not None else None
    reused = reused_text(run, evaluator, artifact)
    bodies = {
        "overview": sections.section_overview(run, verdict),
        "statistics": sections.section_statistics(run, images, selected),
        "anomalies": (sections.section_refusal(run, refusal) if refusal is not None else "")
        + sections.section_anomalies(run),
        "feature-selection": sections.section_selection(selection, images),
        "training": sections.section_training(run, images),
        "evaluation": sections.section_evaluation(
            evaluation, blessed, reused, data.single_class(evaluation, selection)),
        "slices": sections.section_slices(evaluation, images),
        "roc-calibration": sections.section_roc_calibration(evaluation, images),
        "baseline": sections.section_baseline(evaluation, served, reused),
        "push": sections.section_push(run, blessed),
        "lineage": sections.section_lineage(run, output_dir),
    }
    return str(sections.render("page.html", run_id=run.run_id, sections=SECTIONS,
                               bodies=bodies))


def write_report(
    output_dir: str, run_id: str | None = None, where: Location | None = None
) -> str:
    """Write `<output_dir>/report/index.html` for `run_id` (default: latest); its path.

    `where` is the run's ML Metadata; default: the SQLite file under `output_dir`.
    """
    run = data.load_run(where or pipeline_store.location(output_dir), run_id)
    final = os.path.join(output_dir, REPORT_DIR)
    staging = tempfile.mkdtemp(prefix=".report-", dir=output_dir)
    try:
        page = render(run, staging, output_dir)
        with open(os.path.join(staging, "index.html"), "w", encoding="utf-8") as f:
            f.write(page)
        if os.path.exists(final):
            shutil.rmtree(final)
        os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return os.path.join(final, "index.html")


def try_write_report(
    output_dir: str, run_id: str | None = None, where: Location | None = None
) -> tuple[str | None, str]:
    """`write_report`, for the end of a run: (path, "") or (None, why it failed).

    A run that trained and pushed a model has succeeded even if its report
    cannot be drawn; the runner prints the reason as a warning instead of
    turning the run into a failure. The traceback goes to the run's log.
    """
    try:
        return write_report(output_dir, run_id, where), ""
    except Exception as error:  # noqa: BLE001 - reported as a warning, see above
        traceback.print_exc()
        return None, first_line(error, with_type=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m review.report",
        description="(Re)write the HTML report of a recorded pipeline run.",
    )
    parser.add_argument("--output-dir", default="outputs",
                        help="the pipeline's --output-dir (default: %(default)s)")
    parser.add_argument("--run-id", default=None, help="a run id (default: the latest run)")
    options_declared.add_metadata_option(parser)
    args = parser.parse_args(argv)
    try:
        where = options_declared.metadata_location(args)
        path = write_report(args.output_dir, args.run_id, where)
    except (ValueError, MetadataConnectionError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (FileNotFoundError, LineageError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"Report: {path}")
    return 0
