"""A static HTML report of one pipeline run: `<output-dir>/report/index.html`.

Everything a reader needs to understand a run without its logs: per-feature
statistics with small histograms, the anomalies ExampleValidator found, the
features selected and why, the training curve, evaluation metrics overall and
per slice, ROC and calibration plots, the comparison with the baseline model,
what was pushed where, and the lineage of the data.

Design choices:
  * Everything is read back from ML Metadata and the artifacts it points to
    (through `metadata/`), never from the process that ran the pipeline, so
    `python -m review.report --output-dir DIR` rebuilds the same page for any
    recorded run, cached or not.
  * The page is one HTML file with inline CSS and no script, plus PNG images
    made with matplotlib in `report/img/`: it opens offline, from a file
    manager or a CI artifact, without a notebook or a CDN.
  * Four modules, one concern each: `data` reads, `plots` draws, `sections`
    fills one Jinja2 template per section (autoescaped: every value from ML
    Metadata is escaped unless a template says otherwise), `page` assembles
    and writes the page. The templates are package data (`templates/`).
"""

from review.report.data import (
    Check,
    Evaluation,
    RunData,
    class_counts,
    defined_metrics,
    load_run,
    load_selection,
    threshold_checks,
)
from review.report.page import SECTIONS, main, render, try_write_report, write_report
from review.report.plots import calibration_bins, numeric_histogram, roc_points
from review.report.sections import section_baseline

__all__ = [
    "SECTIONS", "Check", "Evaluation", "RunData", "calibration_bins", "class_counts",
    "defined_metrics", "load_run", "load_selection", "main", "numeric_histogram", "render",
    "roc_points", "section_baseline", "threshold_checks", "try_write_report", "write_report",
]
