"""The report's sections: each reads what it shows (`data`), draws it (`plots`) and
fills its template (`templates/<section>.html`).

Templates own the markup and Jinja2 escapes every value they receive, so a
column name, an anomaly description or a path from ML Metadata cannot break
the page. A section whose artifact does not exist (a component failed, no
baseline yet, nothing pushed) says so in words instead of disappearing.
"""

from __future__ import annotations

import math
import os
import re

import jinja2
from markupsafe import Markup

from metadata import artifacts, names
from metadata import evaluation as evaluation_files
from metadata import outcome as outcomes
from metadata.graph import sample_rates, string_property
from models import contract
from review.lineage import LineageError, model_lineage
from review.lineage_text import format_time, headline
from review.report import data, plots
from review.report.data import METRIC_LABELS, METRICS, Evaluation, RunData
from review.report.plots import Images

ENVIRONMENT = jinja2.Environment(
    loader=jinja2.PackageLoader("review.report", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
# Line breaks between tags in the templates are for reading them; the page
# keeps the tags adjacent, as the tests and the text extraction expect.
_BETWEEN_TAGS = re.compile(r">\s*\n\s*<")


def render(template: str, **context) -> Markup:
    """A template filled with `context`; every value escaped unless it is Markup."""
    text = ENVIRONMENT.get_template(template).render(**context).strip()
    return Markup(_BETWEEN_TAGS.sub("><", text))


def note(text: str) -> Markup:
    return Markup(ENVIRONMENT.get_template("macros.html").module.note(text))


# -- number formats ---------------------------------------------------------------------------
def fmt(value: object, digits: int = 4) -> str:
    """A number for a table cell; NaN and missing become an em dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, float) and value.is_integer() and abs(value) >= 10:
        return f"{int(value):,}"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def percent(share: float) -> str:
    """A share of rows, precise where rounding would hide a few empty cells."""
    if share in (0.0, 1.0) or 0.001 <= share <= 0.999:
        return f"{share:.1%}"
    return f"{share:.3%}"


def count(value: float | None) -> str:
    return "—" if value is None or math.isnan(value) else f"{int(round(value)):,}"


# -- overview and statistics ------------------------------------------------------------------
def section_overview(run: RunData, verdict: str) -> Markup:
    outcome = run.outcome
    rows = [[r.component, r.state, f"{r.seconds:.1f} s"] for r in outcome.components]
    return render("overview.html", verdict=verdict, run_id=run.run_id,
                  started=format_time(outcome.started), finished=format_time(outcome.finished),
                  seconds=outcome.finished - outcome.started, rows=rows)


def _feature(images: Images, stats, rows: int, selected: set[str]) -> dict:
    name = artifacts.feature_name(stats)
    if stats.HasField("string_stats"):
        top = stats.string_stats.top_values
        kind = "text"
        summary = [f"{stats.string_stats.unique} distinct; most common "
                   f"{top[0].value if top else '-'}"]
    else:
        num = stats.num_stats
        kind = "integer" if stats.type == 0 else "float"
        summary = [f"mean {num.mean:.4g}, sd {num.std_dev:.4g}",
                   f"min {num.min:.4g}, median {num.median:.4g}, max {num.max:.4g}"]
        if num.num_zeros:
            summary.append(f"zeros {num.num_zeros / rows:.1%}")
    image, caption = plots.feature_plot(images, name, stats)
    return {"name": name, "role": "model input" if name in selected else "", "kind": kind,
            "with_value": percent(artifacts.present_share(stats, rows)), "summary": summary,
            "image": image, "caption": caption}


def section_statistics(run: RunData, images: Images, selected: set[str]) -> Markup:
    artifact = run.output("statistics", names.STATISTICS)
    if artifact is None:
        return note("No statistics: StatisticsGen did not run in this run.")
    splits = artifacts.load_statistics(artifact.uri)
    if "train" not in splits:
        return note(f"No train-split statistics under {artifact.uri}.")
    train = splits["train"]
    rates = sample_rates(artifact)
    sizes = ", ".join(
        f"{split} {int(s.num_examples):,} rows"
        + (f" (a uniform sample, {rates[split]:.1%} of the split)"
           if rates.get(split, 1.0) < 1.0 else "")
        for split, s in splits.items())
    ordered = sorted(train.features, key=lambda f: f.path.step[0] if f.path.step else "")
    features = [_feature(images, f, int(train.num_examples), selected) for f in ordered]
    return render("statistics.html", sizes=sizes, features=features)


# -- anomalies, and a run stopped by the validation gate ----------------------------------------
def _stats_cell(stats, rows: int) -> dict | None:
    """A feature's share of rows with a value and its summary, for the comparison."""
    if stats is None:
        return None
    if stats.HasField("string_stats"):
        common, top = stats.string_stats.common_stats, stats.string_stats.top_values
        head = (f"{top[0].value} {top[0].frequency / max(1, common.num_non_missing):.0%}"
                if top else "-")
        text = f"{stats.string_stats.unique} distinct; most common {head}"
    else:
        num = stats.num_stats
        text = f"mean {num.mean:.4g}; min {num.min:.4g}, median {num.median:.4g}, max {num.max:.4g}"
    return {"share": percent(artifacts.present_share(stats, rows)), "text": text}


def section_refusal(run: RunData, gate_execution) -> Markup:
    """The refused data next to the data last accepted, and what the gate objected to:
    the findings the gate recorded when it refused (`data.refusal_record`)."""
    record = data.refusal_record(run, gate_execution)
    blocking = record["findings"] if record else []
    baseline = (record or {}).get("baseline") or {}
    statistics = run.graph.inputs(gate_execution.id).get("statistics", [])
    refused = artifacts.load_statistics(statistics[0].uri).get("train") if statistics else None
    before = artifacts.load_statistics(baseline["uri"]).get("train") if baseline else None
    context = {"recorded": record is not None, "compared": (record or {}).get("compared"),
               "accepted_by": data.accepted_by(run, baseline["uri"]) if baseline else None}
    if refused is None:
        return render("refusal.html", refused_rows=None, **context)
    new, old = artifacts.by_name(refused), artifacts.by_name(before) if before is not None else {}
    problems: dict[str, list[dict]] = {}
    for finding in blocking:
        problems.setdefault(finding["feature"], []).append(finding)
    ordered = sorted(set(new) | set(old) | set(problems), key=lambda n: (n not in problems, n))
    rows = [{"name": artifacts.visible(name), "problems": problems.get(name, []),
             "refused": _stats_cell(new.get(name), int(refused.num_examples)),
             "accepted": _stats_cell(old.get(name), int(before.num_examples))
             if before is not None else None}
            for name in ordered if name != "(dataset)"]
    return render("refusal.html", rows=rows, refused_rows=int(refused.num_examples),
                  before_rows=int(before.num_examples) if before is not None else None,
                  **context)


def _severity(value: int) -> str:
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    return anomalies_pb2.AnomalyInfo.Severity.Name(value).lower()


def section_anomalies(run: RunData) -> Markup:
    artifact = run.output("anomalies", names.ANOMALIES)
    if artifact is None:
        return note("No anomalies artifact: ExampleValidator did not run in this run.")
    found = artifacts.anomalies_by_split(artifact.uri)
    statistics = run.output("statistics", names.STATISTICS)
    stats = artifacts.load_statistics(statistics.uri) if statistics is not None else {}
    splits = []
    for split in sorted(found, key=lambda name: (name != "train", name)):
        anomalies, split_stats = found[split], stats.get(split)
        shares = ({artifacts.feature_name(f): artifacts.present_share(f, split_stats.num_examples)
                   for f in split_stats.features}
                  if split_stats is not None and split_stats.num_examples else {})
        rows = [{"feature": artifacts.visible(feature), "short": info.short_description,
                 "reasons": [r.description for r in info.reason] or [info.description],
                 "share": percent(shares[feature]) if feature in shares else "—",
                 "severity": _severity(info.severity)}
                for feature, info in sorted(anomalies.anomaly_info.items())]
        if anomalies.HasField("dataset_anomaly_info"):
            info = anomalies.dataset_anomaly_info
            rows.append({"feature": None, "short": info.short_description,
                         "reasons": [info.description], "share": "",
                         "severity": _severity(info.severity)})
        splits.append({"name": split, "rows": rows})
    return render("anomalies.html", compared=run.outcome.data_checked, splits=splits)


# -- feature selection and training -------------------------------------------------------------
def section_selection(selection: dict | None, images: Images) -> Markup:
    if selection is None:
        return note("No feature-selection report: FeatureSelection did not run.")
    decisions = [{"feature": d["feature"], "selected": d["selected"], "reason": d["reason"],
                  "presence": f"{d['presence']:.1%}", "information": fmt(d.get("information_bits")),
                  "conditional": fmt(d.get("conditional_bits")),
                  "chance": fmt(d.get("chance_bits")), "p": fmt(d.get("p_value"), 3)}
                 for d in selection["decisions"]]
    return render("selection.html", selected=selection["selected"],
                  rows_measured=selection["rows_measured"], decisions=decisions,
                  rule=selection.get("rule"),
                  plot=plots.selection_plot(selection["decisions"], images))


def section_training(run: RunData, images: Images) -> Markup:
    history = data.load_history(run)
    if history is None:
        return note("No training history: Trainer did not run, or wrote no "
                    f"{names.HISTORY_FILE}.")
    trainer = run.execution_with_output("model_run", names.MODEL_RUN)
    plot = plots.training_plot(history, data.train_steps(run, trainer), images)
    final = [[k, fmt(v[-1])] for k, v in sorted(history.items()) if v]
    return render("training.html", plot=plot, final=final)


# -- evaluation, slices, ROC and calibration, baseline -------------------------------------
def section_evaluation(evaluation: Evaluation | None, blessed: bool | None, reused: str = "",
                       single_class: str | None = None) -> Markup:
    if evaluation is None:
        return note("No evaluation: the Evaluator did not run in this run.")
    overall = data.defined_metrics(evaluation.candidate.get((), {}), evaluation.plots.get((), {}))
    undefined = data.undefined_metrics(overall)
    rows = [[METRIC_LABELS[m], count(overall.get(m)) if m == "example_count"
             else fmt(overall.get(m))] for m in METRICS if m in overall]
    checks = [[METRIC_LABELS.get(c.metric, c.metric), c.rule,
               "undefined (one class)" if c.metric in undefined else fmt(c.value),
               {True: "✔ pass", False: "✘ FAIL", None: "not checked"}[c.passed]]
              for c in data.threshold_checks(evaluation)]
    failures = [{"slice": f.slice, "metric": f.metric, "rule": f.threshold,
                 "value": "undefined (one class)"
                 if f.slice == "overall" and f.metric in undefined else fmt(f.value)}
                for f in evaluation_files.blessing_failures(evaluation.validation)]
    verdict = {True: "BLESSED", False: "NOT blessed", None: "not recorded"}[blessed]
    return render("evaluation.html", reused=reused, single_class=single_class, verdict=verdict,
                  rows=rows, checks=checks, failures=failures)


def section_slices(evaluation: Evaluation | None, images: Images) -> Markup:
    if evaluation is None:
        return note("No evaluation: the Evaluator did not run in this run.")
    result = []
    for feature in data.slice_features(evaluation):
        slices = data.slices_of(evaluation, feature)
        rows = [[value, count(m.get("example_count"))] + [fmt(m.get(name)) for name in METRICS[1:]]
                for value, m in slices]
        result.append({"feature": feature, "rows": rows,
                       "plot": plots.slice_plot(feature, slices, images) if slices else None})
    return render("slices.html", slices=result,
                  headers=["value"] + [METRIC_LABELS[m] for m in METRICS])


def section_roc_calibration(evaluation: Evaluation | None, images: Images) -> Markup:
    if evaluation is None or () not in evaluation.plots:
        return note("No plots: the Evaluator did not run in this run.")
    curves = [("candidate", evaluation.plots[()], evaluation.candidate.get((), {}).get("auc"))]
    if () in evaluation.baseline_plots:
        curves.append(("baseline", evaluation.baseline_plots[()],
                       evaluation.baseline.get((), {}).get("auc")))
    image = plots.roc_calibration_plot(images, curves, evaluation.plots[()])
    return render("roc_calibration.html", image=image)


def section_baseline(evaluation: Evaluation | None, served: tuple[int, str] | None,
                     reused: str = "") -> Markup:
    """The candidate against the model that was being served when it was evaluated."""
    if evaluation is None:
        return note("No evaluation: the Evaluator did not run in this run.")
    if not evaluation.baseline:
        return (note(reused) if reused else Markup("")) + note(
            "No baseline: no model was being served when this evaluation was "
            "computed, so the candidate was judged on the absolute rules alone.")
    candidate, baseline = evaluation.candidate.get((), {}), evaluation.baseline.get((), {})
    rows = [[METRIC_LABELS[m], fmt(candidate.get(m)), fmt(baseline.get(m)),
             fmt(candidate.get(f"{m}_diff"))] for m in METRICS if m in candidate]
    return render("baseline.html", reused=reused, served=served, rows=rows)


# -- push and lineage ---------------------------------------------------------------------------
def section_push(run: RunData, blessed: bool | None) -> Markup:
    """What the run's Pusher did (`metadata.outcome`), and where the version lives."""
    pusher = run.execution_with_output("pushed_model", names.PUSHED_MODEL)
    push = run.outcome.push
    if push is None or pusher is None:
        return note("Nothing pushed: the Pusher did not run in this run.")
    model = run.graph.inputs(pusher.id).get("model", [])
    model_uri = model[0].uri if model else "?"
    if push.kind == outcomes.NOT_PUSHED:
        reason = push.reason or (
            "the model was not blessed" if blessed is False else "the Pusher declined")
        return note(f"Nothing pushed: {reason}. The model stays at {model_uri}.")
    artifact = run.output("pushed_model", names.PUSHED_MODEL)
    rows = [("TF Serving base path", os.path.dirname(push.destination)),
            ("version folder", push.version),
            ("pushed by run", push.pushed_by),
            ("trained model artifact", model_uri)]
    check = string_property(artifact, names.SERVING_CHECK)  # the Pusher's check, as JSON
    if check:
        rows.append(("serving check before the push", check))
    card = os.path.join(push.destination, contract.MODEL_CARD_FILE)
    return render("push.html", version=push.version,
                  card=card if os.path.exists(card) else None,
                  destination=push.destination, rows=rows,
                  unchanged=push.kind == outcomes.KEPT, pushed_by=push.pushed_by,
                  when=f" (by run {push.pushed_by}; this run reused that push from the cache, "
                  "nothing new was pushed)" if push.kind == outcomes.CACHED else "")


def section_lineage(run: RunData, output_dir: str) -> Markup:
    push = run.outcome.push
    version = push.version if push is not None and push.kind != outcomes.NOT_PUSHED else None
    command = f"python -m review.lineage --output-dir {output_dir}"
    if not version:
        return note(f"This run pushed no model. `{command}` shows the runs and the chain "
                    "behind the latest pushed model.")
    try:
        lineage = model_lineage(run.graph, version)
    except LineageError as error:
        return note(str(error))
    return render("lineage.html", headline="\n".join(headline(lineage)), command=command,
                  version=version)
