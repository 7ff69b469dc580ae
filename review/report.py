"""A static HTML report of one pipeline run: `<output-dir>/report/index.html`.

Everything a reader needs to understand a run without its logs: per-feature
statistics with small histograms, the anomalies ExampleValidator found, the
features selected and why, the training curve, evaluation metrics overall and
per slice, ROC and calibration plots, the comparison with the baseline model,
what was pushed where, and the lineage of the data.

Design choices:
  * Everything is read back from ML Metadata and the artifacts it points to
    (through `review.lineage.MetadataGraph`), never from the process that
    ran the pipeline, so `python -m review.report --output-dir DIR` rebuilds
    the same page for any recorded run, cached or not.
  * The page is one HTML file with inline CSS and no script, plus PNG images
    made with matplotlib in `report/img/`: it opens offline, from a file
    manager or a CI artifact, without a notebook or a CDN.
  * A section whose artifact does not exist (a component failed, no baseline
    yet, nothing pushed) says so in words instead of disappearing.
  * The report is written to a temporary folder and swapped in, so an
    existing report is never left half-overwritten and no stale image remains.
"""

from __future__ import annotations

import argparse
import html
import json
import math
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field

from metadata import store as pipeline_store
from metadata.store import Location, MetadataConnectionError
from pipeline.components.baseline import recorded_baseline
from review.lineage import (
    LineageError,
    MetadataGraph,
    anomalies_by_split,
    artifact_properties,
    format_time,
    headline,
    is_unchanged_push,
    model_lineage,
)

REPORT_DIR = "report"
IMAGE_DIR = "img"
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
_METRICS = ("example_count", "auc", "binary_accuracy", "precision", "recall")
_METRIC_LABELS = {
    "example_count": "examples", "auc": "AUC", "binary_accuracy": "accuracy",
    "precision": "precision", "recall": "recall",
}


# -- small helpers -------------------------------------------------------------------
def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def fmt(value: object, digits: int = 4) -> str:
    """A number for a table cell; NaN and missing become an em dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "&mdash;"
    if isinstance(value, float) and value.is_integer() and abs(value) >= 10:
        return f"{int(value):,}"
    return f"{value:.{digits}f}" if isinstance(value, float) else esc(value)


def percent(share: float) -> str:
    """A share of rows, precise where rounding would hide a few empty cells."""
    if share in (0.0, 1.0) or 0.001 <= share <= 0.999:
        return f"{share:.1%}"
    return f"{share:.3%}"


def count(value: float | None) -> str:
    return "&mdash;" if value is None or math.isnan(value) else f"{int(round(value)):,}"


def table(headers: list[str], rows: list[list[str]], cls: str = "") -> str:
    """An HTML table; cells are already-escaped HTML."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def note(text: str) -> str:
    return f'<p class="note">{esc(text)}</p>'


class Images:
    """Saves matplotlib figures as PNGs next to the page; returns <img> tags."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        os.makedirs(os.path.join(folder, IMAGE_DIR), exist_ok=True)

    def save(self, figure, name: str, alt: str) -> str:
        import matplotlib.pyplot as plt

        relative = f"{IMAGE_DIR}/{name}.png"
        figure.savefig(os.path.join(self.folder, relative), dpi=100, bbox_inches="tight")
        plt.close(figure)
        return f'<img src="{esc(relative)}" alt="{esc(alt)}">'


def _pyplot():
    """pyplot on the Agg backend: no display needed, same PNGs everywhere."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 8, "axes.spines.top": False, "axes.spines.right": False})
    return plt


# -- the run's artifacts --------------------------------------------------------------
@dataclass
class RunData:
    """The artifacts one run used or produced, looked up by output key."""

    graph: MetadataGraph
    run_id: str
    executions: list = field(default_factory=list)

    def _latest_output(self, key: str, type_name: str) -> tuple:
        """(execution, artifact) of the run's latest output `key` of type `type_name`."""
        for execution in reversed(self.executions):
            for artifact in self.graph.outputs(execution.id).get(key, []):
                if self.graph.artifact_type(artifact) == type_name:
                    return execution, artifact
        return None, None

    def output(self, key: str, type_name: str):
        """The artifact under output `key` of type `type_name` in this run, if any."""
        return self._latest_output(key, type_name)[1]

    def execution_with_output(self, key: str, type_name: str):
        """The execution that produced that artifact, if any."""
        return self._latest_output(key, type_name)[0]


def load_run(where: Location, run_id: str | None = None) -> RunData:
    graph = MetadataGraph(where)
    ids = graph.run_ids()
    if not ids:
        raise LineageError(f"no pipeline runs recorded in {graph.path}")
    run_id = run_id or ids[-1]
    return RunData(graph, run_id, graph.run_executions(run_id))


# -- section: overview ---------------------------------------------------------------------
def section_overview(run: RunData, verdict: str) -> str:
    from local.summary import component_runs

    runs = component_runs(run.graph.store, run.run_id)
    rows = [[esc(r.component), esc(r.state), f"{r.seconds:.1f} s"] for r in runs]
    started = min((e.create_time_since_epoch for e in run.executions), default=0) / 1000
    finished = max((e.last_update_time_since_epoch for e in run.executions), default=0) / 1000
    return (
        f'<p class="verdict">{esc(verdict)}</p>'
        f"<p>Run <code>{esc(run.run_id)}</code>: {format_time(started)} to {format_time(finished)} "
        f"({finished - started:.1f} s of component time). Cached components reused the "
        "outputs of an earlier run with identical inputs.</p>"
        + table(["component", "outcome", "time"], rows)
    )


# -- section: statistics ------------------------------------------------------------------
def load_statistics(uri: str) -> dict:
    """Split name -> DatasetFeatureStatistics of a StatisticsGen output."""
    import glob

    from tensorflow_metadata.proto.v0 import statistics_pb2

    result = {}
    for path in sorted(glob.glob(os.path.join(uri, "Split-*", "FeatureStats.pb"))):
        stats = statistics_pb2.DatasetFeatureStatisticsList()
        with open(path, "rb") as f:
            stats.ParseFromString(f.read())
        result[os.path.basename(os.path.dirname(path)).removeprefix("Split-")] = stats.datasets[0]
    return result


def _histogram(num_stats, kind: int):
    return next((h for h in num_stats.histograms if h.type == kind), None)


def numeric_histogram(num_stats) -> tuple[list[tuple[float, float, float]], str]:
    """Bars (left, width, height) for a numeric feature, and a caption.

    TFDV keeps an equal-width and an equal-count (decile) histogram. The
    equal-width one is shown unless one bucket holds most values (fare,
    trip_miles: a few huge outliers squash the rest into one bar); then the
    deciles are drawn as densities, a decile of identical values as a spike,
    and the axis is cut a little past the 9th decile so the bulk is visible.
    """
    from tensorflow_metadata.proto.v0 import statistics_pb2

    standard = _histogram(num_stats, statistics_pb2.Histogram.STANDARD)
    quantiles = _histogram(num_stats, statistics_pb2.Histogram.QUANTILES)
    if standard is None or not standard.buckets:
        return [], "no histogram"
    total = sum(b.sample_count for b in standard.buckets) or 1.0
    if max(b.sample_count for b in standard.buckets) / total <= 0.8 or quantiles is None:
        return [(b.low_value, b.high_value - b.low_value, b.sample_count / total)
                for b in standard.buckets], "equal-width buckets"
    return _decile_bars(quantiles.buckets)


def _decile_bars(buckets) -> tuple[list[tuple[float, float, float]], str]:
    if buckets[0].low_value == buckets[-1].high_value:
        value = buckets[0].low_value
        return [(value - 0.5, 1.0, 1.0)], f"every value is {value:.6g}"
    inner = [b.low_value for b in buckets[1:]]
    lo, hi = buckets[0].low_value, buckets[-1].high_value
    cut = min(hi, inner[-1] + 0.5 * (inner[-1] - inner[0])) if inner else hi
    span = (cut - lo) or 1.0
    total = sum(b.sample_count for b in buckets) or 1.0
    bars = []
    for b in buckets:
        share = b.sample_count / total
        width = min(b.high_value, cut) - b.low_value
        if b.low_value >= cut:
            continue
        if width <= span * 0.01:  # a decile of (nearly) one value: a spike
            bars.append((b.low_value - span * 0.005, span * 0.01, share / 0.01))
        else:
            bars.append((b.low_value, width, share * span / (b.high_value - b.low_value)))
    caption = "deciles as densities"
    if cut < hi:
        caption += f"; axis cut at {cut:.4g} (max {hi:.4g})"
    return bars, caption


def _feature_plot(images: Images, name: str, stats) -> tuple[str, str]:
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(2.8, 1.1))
    if stats.HasField("string_stats"):
        top = list(stats.string_stats.top_values)[:6][::-1]
        axis.barh([t.value[:18] or "(empty)" for t in top], [t.frequency for t in top],
                  color="#4c72b0")
        axis.tick_params(axis="y", labelsize=6)
        caption = f"top {len(top)} of {stats.string_stats.unique} values"
    else:
        bars, caption = numeric_histogram(stats.num_stats)
        for left, width, height in bars:
            axis.bar(left, height, width=width, align="edge", color="#4c72b0")
        axis.set_yticks([])
    return images.save(figure, f"feature_{name}", f"histogram of {name}"), caption


def _feature_row(images: Images, stats, rows: int, selected: set[str]) -> list[str]:
    name = stats.path.step[0] if stats.path.step else stats.name
    if stats.HasField("string_stats"):
        common, kind = stats.string_stats.common_stats, "text"
        top = stats.string_stats.top_values
        summary = (f"{stats.string_stats.unique} distinct; most common "
                   f"{esc(top[0].value) if top else '-'}")
    else:
        num = stats.num_stats
        common, kind = num.common_stats, "integer" if stats.type == 0 else "float"
        summary = (f"mean {num.mean:.4g}, sd {num.std_dev:.4g}<br>"
                   f"min {num.min:.4g}, median {num.median:.4g}, max {num.max:.4g}")
        if num.num_zeros:
            summary += f"<br>zeros {num.num_zeros / rows:.1%}"
    with_value = min(1.0, common.tot_num_values / rows) if rows else 0.0
    image, caption = _feature_plot(images, name, stats)
    role = "model input" if name in selected else ""
    return [f"<b>{esc(name)}</b><br><small>{esc(role)}</small>", kind,
            percent(with_value), summary, f"{image}<br><small>{esc(caption)}</small>"]


def section_statistics(run: RunData, images: Images, selected: set[str]) -> str:
    artifact = run.output("statistics", "ExampleStatistics")
    if artifact is None:
        return note("No statistics: StatisticsGen did not run in this run.")
    splits = load_statistics(artifact.uri)
    if "train" not in splits:
        return note(f"No train-split statistics under {artifact.uri}.")
    train = splits["train"]
    sizes = ", ".join(f"{split} {int(s.num_examples):,} rows" for split, s in splits.items())
    rows = [_feature_row(images, f, int(train.num_examples), selected)
            for f in sorted(train.features, key=lambda f: f.path.step[0] if f.path.step else "")]
    return (f"<p>Splits: {esc(sizes)}. Figures are for the train split; "
            "<i>with a value</i> counts rows where the cell is not empty.</p>"
            + table(["feature", "type", "with a value", "summary", "distribution"], rows,
                    "stats"))


# -- a run stopped by the validation gate ---------------------------------------------------
GATE_COMPONENT = "DataValidationGate"


def gate_refusal(run: RunData):
    """The gate's execution in this run if it refused the data, else None."""
    return next((e for e in run.executions if run.graph.component(e) == GATE_COMPONENT
                 and e.last_known_state == e.FAILED), None)


def last_accepted_statistics(run: RunData, gate_execution):
    """The ValidatedStatistics the refused data was compared with, if any: the
    newest statistics an earlier gate accepted in this output folder (what
    `pipeline_root/baselines/accepted_statistics.json` pointed the gate at)."""
    accepted = [a for a in run.graph.store.get_artifacts_by_type("ValidatedStatistics")
                if a.state == a.LIVE
                and a.create_time_since_epoch < gate_execution.create_time_since_epoch]
    return max(accepted, key=lambda a: a.create_time_since_epoch, default=None)


def refusal_findings(run: RunData, gate_execution, accepted) -> list[dict]:
    """What the gate refused, recomputed with the gate's own functions from its inputs.

    A refusing gate publishes nothing, so its findings are not in ML Metadata;
    its inputs are, and the same functions give the same findings.
    """
    from tensorflow_data_validation.utils import anomalies_util
    from tfx.utils import io_utils

    from pipeline.components import drift, gate

    inputs = run.graph.inputs(gate_execution.id)
    if not inputs.get("anomalies") or not inputs.get("statistics") or not inputs.get("schema"):
        return []
    schema = io_utils.SchemaReader().read(io_utils.get_only_uri_in_dir(inputs["schema"][0].uri))
    stats_uri, anomalies_uri = inputs["statistics"][0].uri, inputs["anomalies"][0].uri
    result = []
    for split in anomalies_by_split(anomalies_uri):
        path = os.path.join(anomalies_uri, f"Split-{split}", "SchemaDiff.pb")
        result += gate.findings(anomalies_util.load_anomalies_binary(path), split)
        stats = os.path.join(stats_uri, f"Split-{split}", "FeatureStats.pb")
        if os.path.exists(stats):
            import tensorflow_data_validation as tfdv

            result += gate.presence_findings(tfdv.load_stats_binary(stats), schema, split)
    if accepted is not None:
        import tensorflow_data_validation as tfdv

        current = os.path.join(stats_uri, "Split-train", "FeatureStats.pb")
        baseline = os.path.join(accepted.uri, "Split-train", "FeatureStats.pb")
        if os.path.exists(current) and os.path.exists(baseline):
            result += drift.drift_findings(tfdv.load_stats_binary(current),
                                           tfdv.load_stats_binary(baseline), schema)
    allowed = gate.parse_allowed(gate_execution.custom_properties["allowed_anomalies"].string_value
                                 if "allowed_anomalies" in gate_execution.custom_properties
                                 else "")
    return gate.evaluate(result, [], allowed)[0]


def _stats_cell(stats, rows: int) -> str:
    """A feature's share of rows with a value and its summary, for the comparison."""
    if stats is None:
        return "<i>column absent</i>"
    if stats.HasField("string_stats"):
        common, top = stats.string_stats.common_stats, stats.string_stats.top_values
        head = (f"{esc(top[0].value)} {top[0].frequency / max(1, common.num_non_missing):.0%}"
                if top else "-")
        text = f"{stats.string_stats.unique} distinct; most common {head}"
    else:
        num = stats.num_stats
        common = num.common_stats
        text = f"mean {num.mean:.4g}; min {num.min:.4g}, median {num.median:.4g}, max {num.max:.4g}"
    with_value = min(1.0, common.tot_num_values / rows) if rows else 0.0
    return f"{percent(with_value)} with a value<br><small>{text}</small>"


def _by_name(dataset) -> dict:
    return {(f.path.step[0] if f.path.step else f.name): f for f in dataset.features}


def visible(name: str) -> str:
    """A column name with invisible characters (a byte-order mark) escaped: the gate's rule."""
    from pipeline.components.gate import visible as gate_visible

    return gate_visible(name)


def section_refusal(run: RunData, gate_execution) -> str:
    """The refused data next to the data last accepted, and what the gate objected to."""
    accepted = last_accepted_statistics(run, gate_execution)
    blocking = refusal_findings(run, gate_execution, accepted)
    statistics = run.graph.inputs(gate_execution.id).get("statistics", [])
    refused = load_statistics(statistics[0].uri).get("train") if statistics else None
    before = load_statistics(accepted.uri).get("train") if accepted is not None else None
    intro = ("<p><b>The validation gate refused this data: nothing was trained, evaluated or "
             "pushed, and the served model is unchanged.</b> Below, the train split of the "
             "refused data next to the train split of the data the gate last accepted")
    if accepted is None:
        intro += (" &mdash; none: no run has passed the gate in this output folder yet")
    else:
        producer = run.graph.producer(accepted.id)
        origin = run.graph.run_of(producer) if producer is not None else "an earlier run"
        intro += f" (accepted by run <code>{esc(origin)}</code>)"
    intro += ".</p>"
    if refused is None:
        return intro + note("No statistics of the refused data were recorded.")
    new, old = _by_name(refused), _by_name(before) if before is not None else {}
    problems: dict[str, list[str]] = {}
    for f in blocking:
        problems.setdefault(f["feature"], []).append(
            f"{esc(f['split'])}: {esc(f['description'])} <small>[{esc(f['type'])}]</small>")
    names = sorted(set(new) | set(old) | set(problems), key=lambda n: (n not in problems, n))
    rows = [[f"<b>{esc(visible(name))}</b>", "<br>".join(problems.get(name, [])) or "&mdash;",
             _stats_cell(new.get(name), int(refused.num_examples)),
             _stats_cell(old.get(name), int(before.num_examples)) if before is not None
             else "&mdash;"] for name in names if name != "(dataset)"]
    sizes = (f"<p>Refused: {int(refused.num_examples):,} train rows. Last accepted: "
             + (f"{int(before.num_examples):,} train rows." if before is not None else "none.")
             + "</p>")
    return intro + sizes + table(
        ["feature", "why the gate refused it", "refused data", "last accepted data"], rows,
        "refusal")


# -- section: anomalies ---------------------------------------------------------------------
def section_anomalies(run: RunData) -> str:
    artifact = run.output("anomalies", "ExampleAnomalies")
    if artifact is None:
        return note("No anomalies artifact: ExampleValidator did not run in this run.")
    splits = anomalies_by_split(artifact.uri)
    statistics = run.output("statistics", "ExampleStatistics")
    stats = load_statistics(statistics.uri) if statistics is not None else {}
    parts = ["<p>ExampleValidator compares each split's statistics with the curated schema "
             "(<code>schema/schema.pbtxt</code>).</p>" + _data_checked(run)]
    for split in sorted(splits, key=lambda name: (name != "train", name)):
        anomalies, shares = splits[split], _value_shares(stats.get(split))
        rows = []
        for feature, info in sorted(anomalies.anomaly_info.items()):
            reasons = "<br>".join(esc(r.description) for r in info.reason) or esc(info.description)
            share = percent(shares[feature]) if feature in shares else "&mdash;"
            rows.append([f"<b>{esc(visible(feature))}</b>", esc(info.short_description), reasons,
                         share, esc(_severity(info.severity))])
        if anomalies.HasField("dataset_anomaly_info"):
            info = anomalies.dataset_anomaly_info
            rows.append(["<i>whole dataset</i>", esc(info.short_description),
                         esc(info.description), "", esc(_severity(info.severity))])
        if rows:
            parts.append(f"<h3>{esc(split)}: {len(rows)} anomalies</h3>" + table(
                ["feature", "anomaly", "details", "rows with a value", "severity"], rows))
        else:
            parts.append(f"<h3>{esc(split)}: no anomalies</h3>")
    return "".join(parts)


def _data_checked(run: RunData) -> str:
    """The gate's drift comparison: which span it read, against which accepted data."""
    from pipeline.components.gate import REPORT_FILE

    artifact = run.output("validated_statistics", "ValidatedStatistics")
    path = os.path.join(artifact.uri, REPORT_FILE) if artifact is not None else ""
    if not path or not os.path.exists(path):
        return ""
    with open(path) as f:
        compared = json.load(f).get("compared")
    return (f"<p>The validation gate {esc(compared)} (drift checks: "
            "<code>pipeline/components/drift.py</code>, docs/drift.md).</p>") if compared else ""


def _value_shares(stats) -> dict[str, float]:
    """Feature -> share of rows with a value, from a split's statistics."""
    if stats is None or not stats.num_examples:
        return {}
    shares = {}
    for feature in stats.features:
        kind = feature.string_stats if feature.HasField("string_stats") else feature.num_stats
        name = feature.path.step[0] if feature.path.step else feature.name
        shares[name] = min(1.0, kind.common_stats.tot_num_values / stats.num_examples)
    return shares


def _severity(value: int) -> str:
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    return anomalies_pb2.AnomalyInfo.Severity.Name(value).lower()


# -- section: feature selection -----------------------------------------------------------
def load_selection(run: RunData) -> dict | None:
    from pipeline.components.feature_selection import REPORT_FILE

    artifact = run.output("selection", "FeatureSelection")
    path = os.path.join(artifact.uri, REPORT_FILE) if artifact else None
    if not path or not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def section_selection(selection: dict | None, images: Images) -> str:
    if selection is None:
        return note("No feature-selection report: FeatureSelection did not run.")
    decisions = selection["decisions"]
    rows = [[f"<b>{esc(d['feature'])}</b>", "&#10004; kept" if d["selected"] else "dropped",
             esc(d["reason"]), f"{d['presence']:.1%}", fmt(d.get("information_bits")),
             fmt(d.get("conditional_bits"))] for d in decisions]
    plot = _selection_plot(decisions, images)
    return (f"<p>Selected: <b>{esc(', '.join(selection['selected']))}</b>, measured on "
            f"{selection['rows_measured']:,} training rows. Information is in bits about the "
            "label; <i>beyond anchor</i> is what a column adds once the most informative "
            "column is known.</p>" + plot
            + table(["feature", "decision", "why", "present", "information", "beyond anchor"],
                    rows))


def _selection_plot(decisions: list[dict], images: Images) -> str:
    measured = [d for d in decisions if d.get("information_bits") is not None]
    if not measured:
        return ""
    plt = _pyplot()
    measured.sort(key=lambda d: d["information_bits"])
    figure, axis = plt.subplots(figsize=(6, 0.22 * len(measured) + 0.6))
    names = [d["feature"] for d in measured]
    axis.barh(names, [d["information_bits"] for d in measured], color="#cccccc",
              label="information about the label")
    axis.barh(names, [d.get("conditional_bits") or 0 for d in measured],
              color=["#4c72b0" if d["selected"] else "#dd8452" for d in measured],
              label="beyond the anchor (blue: kept, orange: dropped)")
    axis.set_xlabel("bits")
    axis.legend(loc="lower right", fontsize=7, frameon=False)
    return images.save(figure, "feature_selection", "information per feature")


# -- section: training ----------------------------------------------------------------------
def section_training(run: RunData, images: Images) -> str:
    from models.trainer import HISTORY_FILE

    artifact = run.output("model_run", "ModelRun")
    path = os.path.join(artifact.uri, HISTORY_FILE) if artifact else None
    if not path or not os.path.exists(path):
        return note("No training history: Trainer did not run, or wrote no "
                    f"{HISTORY_FILE}.")
    with open(path) as f:
        history = json.load(f)
    trainer = run.execution_with_output("model_run", "ModelRun")
    steps = _train_steps(run, trainer)
    plot = _training_plot(history, steps, images)
    final = [[esc(k), fmt(v[-1])] for k, v in sorted(history.items()) if v]
    return plot + table(["metric", "final value"], final)


def _train_steps(run: RunData, trainer) -> int | None:
    if trainer is None:
        return None
    info = run.graph.step(trainer, "")
    train_args = info.properties.get("train_args")
    if not isinstance(train_args, dict):
        return None
    return int(train_args.get("num_steps", 0)) or None


def _training_plot(history: dict, steps: int | None, images: Images) -> str:
    plt = _pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(7, 2.4))
    for axis, metric in zip(axes, ("loss", "accuracy"), strict=True):
        for key, style in ((metric, "-o"), (f"val_{metric}", "--s")):
            values = history.get(key)
            if not values:
                continue
            per_point = (steps / len(values)) if steps else 1
            x = [(i + 1) * per_point for i in range(len(values))]
            label = "eval split" if key.startswith("val_") else "training batches"
            axis.plot(x, values, style, markersize=3, label=label)
        axis.set_title(metric)
        axis.set_xlabel("training step" if steps else "epoch")
        axis.legend(fontsize=7, frameon=False)
    return images.save(figure, "training_curve", "training and evaluation loss and accuracy")


# -- evaluation: loading ------------------------------------------------------------------
@dataclass
class Evaluation:
    """What the Evaluator wrote, for the candidate and (if any) the baseline."""

    uri: str
    config: dict
    candidate: dict  # slice key tuple -> {metric: value}
    baseline: dict
    plots: dict  # slice key tuple -> plot dict (candidate)
    baseline_plots: dict
    validation: object  # tfma ValidationResult or None


def _metric_values(slice_metrics: dict) -> dict[str, float]:
    values = {}
    for by_output in slice_metrics.values():
        for name, value in by_output.get("", {}).items():
            raw = value.get("doubleValue") if isinstance(value, dict) else None
            if raw is not None:
                values[name] = float(raw)
    return values


def _load_result(uri: str, model_name: str | None) -> tuple[dict, dict]:
    import tensorflow_model_analysis as tfma

    result = tfma.load_eval_result(uri, model_name=model_name)
    metrics = {tuple(k): _metric_values(m) for k, m in result.slicing_metrics}
    plots = {tuple(k): p.get("", {}).get("", {}) for k, p in result.plots}
    return metrics, plots


def load_evaluation(uri: str) -> Evaluation:
    with open(os.path.join(uri, "eval_config.json")) as f:
        written = json.load(f)
    config = written["evalConfig"]
    specs = config.get("modelSpecs", [])
    candidate_name = next((s.get("name") for s in specs if not s.get("isBaseline")), None)
    baseline_name = next((s.get("name") for s in specs if s.get("isBaseline")), None)
    candidate, plots = _load_result(uri, candidate_name)
    baseline, baseline_plots = _load_result(uri, baseline_name) if baseline_name else ({}, {})
    return Evaluation(uri, config, candidate, baseline, plots, baseline_plots, _validation(uri))


def _validation(uri: str):
    """TFMA's ValidationResult of an evaluation, or None if it wrote none."""
    import tensorflow_model_analysis as tfma

    try:
        return tfma.load_validation_result(uri)
    except Exception:  # noqa: BLE001 - an absent validation file is shown as such
        return None


@dataclass
class Check:
    """One blessing rule and how the candidate fared."""

    metric: str
    rule: str
    value: float | None
    passed: bool | None  # None: not checked (e.g. no baseline for a change rule)


def threshold_checks(evaluation: Evaluation) -> list[Check]:
    """The eval config's overall-slice thresholds, with the validation outcome."""
    failures = _failures(evaluation.validation)
    overall = evaluation.candidate.get((), {})
    has_baseline = bool(evaluation.baseline)
    checks = []
    for spec in evaluation.config.get("metricsSpecs", []):
        for metric in spec.get("metrics", []):
            for threshold in _thresholds(metric):
                name = _metric_name(metric["className"], overall)
                checks += _checks_for(name, threshold, overall, has_baseline, failures)
    return checks


def _thresholds(metric: dict) -> list[dict]:
    found = [metric["threshold"]] if "threshold" in metric else []
    for per_slice in metric.get("perSliceThresholds", []):
        if any(spec in ({}, None) for spec in per_slice.get("slicingSpecs", [{}])):
            found.append(per_slice["threshold"])
    return found


def _metric_name(class_name: str, overall: dict) -> str:
    import re

    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", class_name).lower()
    return snake if snake in overall or not overall else next(
        (k for k in overall if k.replace("_", "") == class_name.lower()), snake)


def _checks_for(name, threshold, overall, has_baseline, failures) -> list[Check]:
    checks = []
    value = threshold.get("valueThreshold", {})
    if value:
        bounds = [f"&ge; {value['lowerBound']}" if "lowerBound" in value else "",
                  f"&le; {value['upperBound']}" if "upperBound" in value else ""]
        checks.append(Check(name, " and ".join(b for b in bounds if b), overall.get(name),
                            (name, False) not in failures))
    change = threshold.get("changeThreshold", {})
    if change:
        limit = change.get("absolute", change.get("relative"))
        higher = change.get("direction") == "HIGHER_IS_BETTER"
        rule = (f"change vs baseline &ge; {limit}" if higher
                else f"change vs baseline &le; {limit}")
        checks.append(Check(name, rule, overall.get(f"{name}_diff"),
                            (name, True) not in failures if has_baseline else None))
    return checks


def _failures(validation) -> set[tuple[str, bool]]:
    if validation is None:
        return set()
    return {
        (failure.metric_key.name, failure.metric_key.is_diff)
        for per_slice in validation.metric_validations_per_slice
        if not per_slice.slice_key.single_slice_keys
        for failure in per_slice.failures
    }


def _slice_value(key) -> object:
    kind = key.WhichOneof("kind")
    value = getattr(key, kind) if kind else ""
    return value.decode() if isinstance(value, bytes) else value


def failure_rows(validation) -> list[list[str]]:
    """Every failed blessing rule, on any slice: slice, metric, value, rule."""
    if validation is None:
        return []
    rows = []
    for per_slice in validation.metric_validations_per_slice:
        where = ", ".join(f"{k.column}={_slice_value(k)}"
                          for k in per_slice.slice_key.single_slice_keys) or "overall"
        for failure in per_slice.failures:
            name = failure.metric_key.name + (" change vs baseline" if failure.metric_key.is_diff
                                              else "")
            rule = " ".join(str(failure.metric_threshold).split())
            rows.append([esc(where), esc(name), fmt(failure.metric_value.double_value.value),
                         f"<code>{esc(rule)}</code>"])
    return rows


# -- sections: evaluation, slices, ROC and calibration, baseline ------------------------
def section_evaluation(evaluation: Evaluation | None, blessed: bool | None) -> str:
    if evaluation is None:
        return note("No evaluation: the Evaluator did not run in this run.")
    overall = _defined(evaluation.candidate.get((), {}), evaluation.plots.get((), {}))
    rows = [[esc(_METRIC_LABELS[m]), count(overall.get(m)) if m == "example_count"
             else fmt(overall.get(m))] for m in _METRICS if m in overall]
    undefined = {m for m, v in overall.items() if isinstance(v, float) and math.isnan(v)}
    checks = [[esc(_METRIC_LABELS.get(c.metric, c.metric)), c.rule,
               "undefined (one class)" if c.metric in undefined else fmt(c.value),
               {True: "&#10004; pass", False: "&#10008; FAIL", None: "not checked"}[c.passed]]
              for c in threshold_checks(evaluation)]
    verdict = {True: "BLESSED", False: "NOT blessed", None: "not recorded"}[blessed]
    failures = [row[:2] + ["undefined (one class)"] + row[3:]
                if row[0] == "overall" and row[1] in undefined else row
                for row in failure_rows(evaluation.validation)]
    failed = ("<h3>Failed rules</h3>" + table(["slice", "metric", "value", "rule"], failures)
              if failures else "")
    return (f"<p>Candidate model on the eval split (overall slice). Blessing: "
            f"<b>{verdict}</b>.</p>" + table(["metric", "value"], rows)
            + "<h3>Blessing rules (overall slice)</h3>"
            + table(["metric", "rule", "value", "result"], checks) + failed)


def _slice_features(evaluation: Evaluation) -> list[str]:
    names = []
    for spec in evaluation.config.get("slicingSpecs", []):
        names += [k for k in spec.get("featureKeys", []) if k not in names]
    return names


def _sort_key(value):
    try:
        return (0, float(value), "")
    except (TypeError, ValueError):
        return (1, 0.0, str(value))


def section_slices(evaluation: Evaluation | None, images: Images) -> str:
    if evaluation is None:
        return note("No evaluation: the Evaluator did not run in this run.")
    parts = ["<p>Metrics of the candidate model on each value of the slicing features. "
             "A dash means the metric is undefined there (for example AUC on a slice "
             "without any big tipper).</p>"]
    for feature in _slice_features(evaluation):
        slices = sorted(((k[0][1], v) for k, v in evaluation.candidate.items()
                         if len(k) == 1 and k[0][0] == feature), key=lambda s: _sort_key(s[0]))
        if not slices:
            parts.append(f"<h3>{esc(feature)}</h3>" + note("no slices recorded"))
            continue
        slices = [(value, _defined(m, evaluation.plots.get(((feature, value),), {})))
                  for value, m in slices]
        rows = [[f"<b>{esc(value)}</b>", count(m.get("example_count"))]
                + [fmt(m.get(name)) for name in _METRICS[1:]] for value, m in slices]
        parts.append(f'<h3 id="slice-{esc(feature)}">{esc(feature)}</h3>'
                     + _slice_plot(feature, slices, images)
                     + table(["value"] + [_METRIC_LABELS[m] for m in _METRICS], rows))
    return "".join(parts)


def class_counts(plot: dict) -> tuple[float, float] | None:
    """(positives, negatives) of a slice, from its lowest-threshold confusion matrix."""
    matrices = plot.get("confusionMatrixAtThresholds", {}).get("matrices", [])
    if not matrices:
        return None
    m = matrices[0]
    return (m.get("truePositives", 0.0) + m.get("falseNegatives", 0.0),
            m.get("falsePositives", 0.0) + m.get("trueNegatives", 0.0))


def _defined(metrics: dict, plot: dict) -> dict:
    """`metrics` with AUC blanked where it is undefined (one class only).

    TFMA reports AUC 0 on a slice without big tippers; shown as is, that reads
    as a terrible model rather than as "cannot be measured here".
    """
    counts = class_counts(plot)
    if counts is not None and min(counts) == 0 and "auc" in metrics:
        return {**metrics, "auc": float("nan")}
    return metrics


def single_class_note(evaluation: Evaluation | None, selection: dict | None) -> str:
    """A warning when the eval split's label has one class, so AUC is undefined.

    Eval counts are the Evaluator's (its overall confusion matrix); train counts
    are FeatureSelection's, over the train rows it measured.
    """
    from local.summary import single_class_text

    counts = class_counts(evaluation.plots.get((), {})) if evaluation is not None else None
    label_counts = {"eval": [round(c) for c in counts]} if counts else {}
    if selection and selection.get("label_counts"):
        label_counts["train"] = [selection["label_counts"]["1"], selection["label_counts"]["0"]]
    text = single_class_text(label_counts)
    return f'<p class="verdict">Note: {esc(text)}.</p>' if text else ""


def _slice_plot(feature: str, slices: list, images: Images) -> str:
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(7, 2.2))
    labels = [str(value)[:12] for value, _ in slices]
    x = range(len(slices))
    counts = axis.twinx()
    counts.bar(x, [m.get("example_count", 0) for _, m in slices], color="#dddddd")
    counts.set_ylabel("examples")
    axis.set_zorder(counts.get_zorder() + 1)
    axis.patch.set_visible(False)
    for name, style in (("auc", "-o"), ("binary_accuracy", "-s")):
        axis.plot(x, [m.get(name, float("nan")) for _, m in slices], style, markersize=3,
                  label=_METRIC_LABELS[name])
    axis.set_xticks(list(x), labels, rotation=45 if len(labels) > 8 else 0, fontsize=7)
    axis.set_ylim(0, 1.02)
    axis.legend(loc="lower left", fontsize=7, frameon=False)
    axis.set_xlabel(feature)
    return images.save(figure, f"slices_{feature}", f"AUC and accuracy per {feature}")


def roc_points(plot: dict) -> tuple[list[float], list[float]]:
    """(false-positive rates, true-positive rates) from TFMA's confusion matrices."""
    fpr, tpr = [], []
    for m in plot.get("confusionMatrixAtThresholds", {}).get("matrices", []):
        tp, fp = m.get("truePositives", 0.0), m.get("falsePositives", 0.0)
        tn, fn = m.get("trueNegatives", 0.0), m.get("falseNegatives", 0.0)
        if tp + fn > 0 and fp + tn > 0:
            tpr.append(tp / (tp + fn))
            fpr.append(fp / (fp + tn))
    return fpr, tpr


def calibration_bins(plot: dict, bins: int = 10) -> list[tuple[float, float, float]]:
    """(mean prediction, observed rate, examples) in `bins` equal prediction ranges."""
    sums = [[0.0, 0.0, 0.0] for _ in range(bins)]
    for bucket in plot.get("calibrationHistogramBuckets", {}).get("buckets", []):
        n = bucket.get("numWeightedExamples", 0.0)
        if not n:
            continue
        predicted = bucket.get("totalWeightedRefinedPrediction", 0.0) / n
        index = min(bins - 1, max(0, int(predicted * bins)))
        sums[index][0] += bucket.get("totalWeightedRefinedPrediction", 0.0)
        sums[index][1] += bucket.get("totalWeightedLabel", 0.0)
        sums[index][2] += n
    return [(p / n, label / n, n) for p, label, n in sums if n]


def section_roc_calibration(evaluation: Evaluation | None, images: Images) -> str:
    if evaluation is None or () not in evaluation.plots:
        return note("No plots: the Evaluator did not run in this run.")
    plt = _pyplot()
    figure, (roc, calibration) = plt.subplots(1, 2, figsize=(7, 3.2))
    overall = evaluation.candidate.get((), {})
    curves = [("candidate", evaluation.plots[()], overall.get("auc"))]
    if () in evaluation.baseline_plots:
        curves.append(("baseline", evaluation.baseline_plots[()],
                       evaluation.baseline.get((), {}).get("auc")))
    for label, plot, auc in curves:
        fpr, tpr = roc_points(plot)
        roc.plot(fpr, tpr, "-" if label == "candidate" else "--",
                 label=f"{label} (AUC {auc:.4f})" if auc is not None else label)
    roc.plot([0, 1], [0, 1], ":", color="grey")
    roc.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC curve")
    roc.legend(fontsize=7, frameon=False, loc="lower right")
    bins = calibration_bins(evaluation.plots[()])
    calibration.plot([0, 1], [0, 1], ":", color="grey")
    calibration.scatter([b[0] for b in bins], [b[1] for b in bins],
                        s=[max(8, 80 * b[2] / max(x[2] for x in bins)) for b in bins])
    calibration.plot([b[0] for b in bins], [b[1] for b in bins], "-", linewidth=1)
    calibration.set(xlabel="mean predicted probability", ylabel="observed big-tipper rate",
                    title="calibration (10 bins; dot size: examples)", xlim=(0, 1), ylim=(0, 1))
    image = images.save(figure, "roc_calibration", "ROC curve and calibration plot")
    return ("<p>Overall slice of the eval split. A well-calibrated model's dots lie on the "
            "diagonal.</p>" + image)


def section_baseline(evaluation: Evaluation | None, served: tuple[int, str] | None) -> str:
    """The candidate against the model that was being served when it was evaluated."""
    if evaluation is None:
        return note("No evaluation: the Evaluator did not run in this run.")
    if not evaluation.baseline:
        return note("No baseline: no model was being served when this evaluation was "
                    "computed, so the candidate was judged on the absolute rules alone.")
    candidate, baseline = evaluation.candidate.get((), {}), evaluation.baseline.get((), {})
    rows = [[esc(_METRIC_LABELS[m]), fmt(candidate.get(m)), fmt(baseline.get(m)),
             fmt(candidate.get(f"{m}_diff"))] for m in _METRICS if m in candidate]
    where = f"version {served[0]}, <code>{esc(served[1])}</code>" if served else "?"
    intro = f"<p>Baseline: the model being served when the candidate was evaluated, {where}.</p>"
    return intro + table(["metric", "candidate", "baseline", "change"], rows)


# -- sections: push and lineage -----------------------------------------------------------
def section_push(run: RunData, blessed: bool | None) -> str:
    pusher = run.execution_with_output("pushed_model", "PushedModel")
    artifact = run.output("pushed_model", "PushedModel")
    if artifact is None:
        return note("Nothing pushed: the Pusher did not run in this run.")
    props = artifact.custom_properties
    model = run.graph.inputs(pusher.id).get("model", [])
    model_uri = model[0].uri if model else "?"
    if not (props.get("pushed") and props["pushed"].int_value):
        recorded = props.get("not_pushed_reason")  # written by pipeline/components/pusher.py
        reason = (recorded.string_value if recorded is not None and recorded.string_value
                  else "the model was not blessed" if blessed is False
                  else "the Pusher declined")
        return note(f"Nothing pushed: {reason}. The model stays at {model_uri}.")
    version = props["pushed_version"].string_value
    destination = props["pushed_destination"].string_value
    cached = pusher.last_known_state != pusher.COMPLETE
    when = " (by an earlier run; this run reused that push from the cache)" if cached else ""
    rows = [["TF Serving base path", f"<code>{esc(os.path.dirname(destination))}</code>"],
            ["version folder", f"<code>{esc(version)}</code>"],
            ["trained model artifact", f"<code>{esc(model_uri)}</code>"]]
    check = props.get("serving_check")  # the Pusher's load-and-answer check, as JSON
    if check is not None and check.string_value:
        rows.append(["serving check before the push", f"<code>{esc(check.string_value)}</code>"])
    intro = (f"<p>Pushed model version <b>{esc(version)}</b>{esc(when)} to "
             f"<code>{esc(destination)}</code>.</p>")
    if is_unchanged_push(artifact):
        intro = (f"<p>Version <b>{esc(version)}</b> at <code>{esc(destination)}</code> stays "
                 "in service: this run's blessed model is identical to it, so nothing new was "
                 "copied.</p>")
    return intro + table(["", ""], rows)


def section_lineage(run: RunData, output_dir: str) -> str:
    artifact = run.output("pushed_model", "PushedModel")
    version = None
    if artifact is not None and artifact.custom_properties.get("pushed"):
        version = artifact.custom_properties["pushed_version"].string_value or None
    command = f"python -m review.lineage --output-dir {output_dir}"
    if version is None:
        return note(f"This run pushed no model. `{command}` shows the runs and the chain "
                    "behind the latest pushed model.")
    try:
        lineage = model_lineage(run.graph, version)
    except LineageError as error:
        return note(str(error))
    return (f"<pre>{esc(chr(10).join(headline(lineage)))}</pre>"
            f"<p>The whole chain, with every execution and artifact: "
            f"<code>{esc(command)} --version {esc(version)}</code></p>")


# -- the page --------------------------------------------------------------------------------
_CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1100px;
       padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; margin-top: 2em; }
table { border-collapse: collapse; margin: .6em 0; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } td img { display: block; }
.verdict { font-size: 1.2em; font-weight: bold; }
.note { color: #555; font-style: italic; }
nav a { margin-right: 1em; } code, pre { background: #f6f6f6; }
pre { padding: .6em; overflow-x: auto; }
"""


def verdict_line(run: RunData) -> tuple[str, bool | None]:
    """One sentence on the outcome, and whether the model was blessed."""
    blessing = run.output("blessing", "ModelBlessing")
    blessed = None
    if blessing is not None and "blessed" in blessing.custom_properties:
        blessed = bool(blessing.custom_properties["blessed"].int_value)
    pushed = run.output("pushed_model", "PushedModel")
    failed = [e for e in run.executions if e.last_known_state == e.FAILED]
    if gate_refusal(run) is not None:
        return ("The validation gate refused the data: nothing was trained or pushed, and the "
                "served model is unchanged (see Anomalies for why, next to the data last "
                "accepted).", blessed)
    if failed:
        names = ", ".join(run.graph.component(e) for e in failed)
        return f"The run FAILED in {names}.", blessed
    if pushed is not None and pushed.custom_properties.get("pushed") and \
            pushed.custom_properties["pushed"].int_value:
        version = pushed.custom_properties["pushed_version"].string_value
        pusher = run.execution_with_output("pushed_model", "PushedModel")
        if pusher is not None and pusher.last_known_state == pusher.CACHED:
            return (f"Nothing changed since version {version} was pushed by an earlier run: "
                    "this run reused the model, its evaluation and the push from the cache.",
                    blessed)
        if is_unchanged_push(pushed):
            return (f"Model blessed; it is the model already served as version {version}, "
                    "so nothing new was pushed.", blessed)
        return f"Model blessed and pushed as version {version}.", blessed
    if blessed is False:
        evaluation = run.output("evaluation", "ModelEvaluation")
        failed = failure_rows(_validation(evaluation.uri)) if evaluation is not None else []
        return (f"Model NOT blessed: {len(failed)} blessing rule(s) failed (see Evaluation "
                "metrics); nothing pushed.", blessed)
    return "The run finished; no model was pushed.", blessed


def reused_note(run: RunData, execution, artifact) -> str:
    """A note when `execution` was cached: its `artifact` comes from an earlier run.

    A re-run with nothing changed reuses the Evaluator's result; without this
    note its "no baseline" would read as a statement about this run.
    """
    if execution is None or artifact is None or execution.last_known_state != execution.CACHED:
        return ""
    producer = run.graph.producer(artifact.id)
    origin = run.graph.run_of(producer) if producer is not None else "an earlier run"
    return note(f"The Evaluator was cached in this run: its model and data had not changed, "
                f"so this is the evaluation computed by run {origin}.")


def render(run: RunData, folder: str, output_dir: str) -> str:
    """The page's HTML; writes its images into `folder`."""
    images = Images(folder)
    verdict, blessed = verdict_line(run)
    refusal = gate_refusal(run)
    selection = load_selection(run)
    selected = set(selection["selected"]) if selection else set()
    artifact = run.output("evaluation", "ModelEvaluation")
    evaluation = load_evaluation(artifact.uri) if artifact is not None else None
    evaluator = run.execution_with_output("evaluation", "ModelEvaluation")
    served = recorded_baseline(artifact_properties(artifact)) if artifact is not None else None
    reused = reused_note(run, evaluator, artifact)
    bodies = {
        "overview": section_overview(run, verdict),
        "statistics": section_statistics(run, images, selected),
        "anomalies": (section_refusal(run, refusal) if refusal is not None else "")
        + section_anomalies(run),
        "feature-selection": section_selection(selection, images),
        "training": section_training(run, images),
        "evaluation": reused + single_class_note(evaluation, selection)
        + section_evaluation(evaluation, blessed),
        "slices": section_slices(evaluation, images),
        "roc-calibration": section_roc_calibration(evaluation, images),
        "baseline": reused + section_baseline(evaluation, served),
        "push": section_push(run, blessed),
        "lineage": section_lineage(run, output_dir),
    }
    nav = "".join(f'<a href="#{i}">{esc(t)}</a>' for i, t in SECTIONS)
    sections = "".join(f'<section id="{i}"><h2>{esc(t)}</h2>{bodies[i]}</section>'
                       for i, t in SECTIONS)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f"<title>Pipeline run {esc(run.run_id)}</title><style>{_CSS}</style></head>"
            f"<body><h1>Chicago Taxi pipeline: run {esc(run.run_id)}</h1><nav>{nav}</nav>"
            f"{sections}</body></html>")


def write_report(
    output_dir: str, run_id: str | None = None, where: Location | None = None
) -> str:
    """Write `<output_dir>/report/index.html` for `run_id` (default: latest); its path.

    `where` is the run's ML Metadata; default: the SQLite file under `output_dir`.
    """
    run = load_run(where or pipeline_store.location(output_dir), run_id)
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
        import traceback

        traceback.print_exc()
        text = str(error).strip().splitlines()
        return None, f"{type(error).__name__}: {text[0] if text else ''}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m review.report",
        description="(Re)write the HTML report of a recorded pipeline run.",
    )
    parser.add_argument("--output-dir", default="outputs",
                        help="the pipeline's --output-dir (default: %(default)s)")
    parser.add_argument("--run-id", default=None, help="a run id (default: the latest run)")
    pipeline_store.add_cli_option(parser)
    args = parser.parse_args(argv)
    try:
        where = pipeline_store.location_from_args(args)
        path = write_report(args.output_dir, args.run_id, where)
    except (ValueError, MetadataConnectionError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (FileNotFoundError, LineageError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"Report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
