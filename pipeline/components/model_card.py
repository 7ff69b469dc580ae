"""A model card in every pushed version: `assets.extra/model_card.md` and `model_card.json`.

Every fact comes from the artifacts the Pusher is handed (their ML Metadata
properties and the files they point to), none is typed in: the data (its
folder, span, rows per split, whether statistics were sampled) from the
Examples and ExampleStatistics artifacts; the features kept and dropped with
FeatureSelection's reasons; training steps from the Trainer's ModelRun; the
label and inputs from the model's own `assets.extra/input_spec.json`; metrics
overall and per slice, thresholds and the baseline comparison from the
Evaluator's output and blessing. Only the intended use and the known
limitations are words, kept below in one place.

TF Serving ignores `assets.extra` except for its warm-up file, and the card is
written before the Pusher's TF-only serving check, which therefore loads and
answers with exactly what is pushed.
"""

from __future__ import annotations

import json
import os

from tfx.dsl.io import fileio

from metadata import names
from models import contract

CARD_FILE, CARD_JSON = contract.MODEL_CARD_FILE, contract.MODEL_CARD_JSON
INTENDED_USE = (
    "Ranking or flagging Chicago taxi trips by how likely the rider tips more than 20% "
    "of the fare, for analysis and demonstration; not for decisions about individual "
    "drivers or riders.")
LIMITATIONS = (
    "Cash trips (almost) never record a tip in the source data, so for them the model "
    "learns 'no big tip' from the payment type; it says nothing about real cash tipping "
    "(see the payment_type=Cash slice below).",
    "Trained on one sample of Chicago trips; other cities, years or fare rules shift "
    "the data (the validation gate checks drift before each training).",
    "Small slices (a few examples) give unstable metrics; read the example counts.",
)


def _json(uri: str, name: str) -> dict | None:
    path = os.path.join(uri, name)
    if not fileio.exists(path):
        return None
    with fileio.open(path, "r") as f:
        return json.loads(f.read())


def _prop(artifact, name: str):
    if artifact is None or not artifact.has_custom_property(name):
        return None
    return artifact.get_custom_property(name)


def _plain(value):
    """MLMD struct values (split_rows, sample rates) as plain dicts."""
    if isinstance(value, str) and value[:1] in "{[":
        return json.loads(value)
    if value is None or isinstance(value, (str, int, float, bool, list, dict)):
        return value
    from google.protobuf import json_format

    return json_format.MessageToDict(value)


def data_facts(examples, statistics) -> dict:
    return {
        "examples": examples.uri,
        "folder": _prop(examples, "input_base"),
        "span": _prop(examples, "span"),
        "rows_by_split": {k: int(v) for k, v in
                          (_plain(_prop(examples, "split_rows")) or {}).items()},
        "statistics_sample_rate_by_split": _plain(_prop(statistics, names.SAMPLE_RATE_BY_SPLIT)),
    }


def feature_facts(selection) -> dict:
    report = _json(selection.uri, names.SELECTION_REPORT_FILE) if selection else None
    if not report:
        return {}
    return {"kept": report.get("selected", []),
            "decisions": [{"feature": d["feature"], "kept": d["selected"], "reason": d["reason"]}
                          for d in report.get("decisions", [])]}


def slice_name(slice_key) -> str:
    parts = [f"{k.column}={k.bytes_value.decode() if k.HasField('bytes_value') else k.int64_value}"
             for k in slice_key.single_slice_keys]
    return ", ".join(parts) or "overall"


def metric_facts(evaluation) -> dict:
    """{slice: {metric: value, metric_diff: change against the baseline}}."""
    if evaluation is None:
        return {}
    import tensorflow_model_analysis as tfma

    by_slice: dict[str, dict[str, float]] = {}
    for per_slice in tfma.load_metrics(evaluation.uri):
        values = by_slice.setdefault(slice_name(per_slice.slice_key), {})
        for entry in per_slice.metric_keys_and_values:
            key = entry.key
            if key.model_name not in ("", "candidate") or key.HasField("sub_key"):
                continue
            if entry.value.HasField("double_value"):
                values[key.name + ("_diff" if key.is_diff else "")] = round(
                    entry.value.double_value.value, 4)
    return by_slice


def threshold_facts(evaluation) -> list[dict]:
    """The Evaluator's thresholds as it recorded them (eval_config.json)."""
    config = (_json(evaluation.uri, "eval_config.json") or {}) if evaluation else {}
    found = []
    for spec in config.get("evalConfig", {}).get("metricsSpecs", []):
        for metric in spec.get("metrics", []):
            thresholds = [metric.get("threshold")] + [
                t.get("threshold") for t in metric.get("perSliceThresholds", [])]
            for threshold in filter(None, thresholds):
                found.append({"metric": metric["className"], **threshold})
    return found


def card_facts(model_dir: str, examples, statistics, selection, evaluation, blessing,
               model_run) -> dict:
    spec = _json(model_dir, contract.INPUT_SPEC_FILE) or {}
    training = _json(model_run.uri, names.TRAINING_FACTS_FILE) if model_run else None
    return {
        "model": contract.MODEL_NAME,
        "signature": spec.get("signature"),
        "label": spec.get("output"),
        "inputs": spec.get("features"),
        "data": data_facts(examples, statistics),
        "features": feature_facts(selection),
        "training": training or {},
        "evaluation": {
            "blessed": bool(_prop(blessing, names.BLESSED)),
            "baseline_version": _prop(blessing, names.BASELINE_VERSION) or None,
            "thresholds": threshold_facts(evaluation),
            "metrics_by_slice": metric_facts(evaluation),
        },
        "intended_use": INTENDED_USE,
        "limitations": list(LIMITATIONS),
    }


def markdown(facts: dict) -> str:
    data, evaluation, features = facts["data"], facts["evaluation"], facts["features"]
    baseline = evaluation["baseline_version"]
    lines = [f"# Model card: {facts['model']}", "",
             f"**Predicts:** {facts['label']}", "", "## Intended use", "", facts["intended_use"],
             "", "## Data", "",
             f"- folder: `{data['folder'] or 'not recorded'}`, span {data['span']}",
             f"- rows by split: {json.dumps(data['rows_by_split'])}",
             f"- statistics sample rate by split: "
             f"{json.dumps(data['statistics_sample_rate_by_split'])} (1.0: every row)",
             f"- examples artifact: `{data['examples']}`", "", "## Features", "",
             f"Kept: {', '.join(features.get('kept', [])) or 'not recorded'}", ""]
    lines += [f"- {d['feature']}: {'kept' if d['kept'] else 'dropped'} ({d['reason']})"
              for d in features.get("decisions", [])]
    lines += ["", "## Training", "",
              *(f"- {k}: {v}" for k, v in facts["training"].items()), "",
              "## Evaluation", "",
              f"Blessed: {'yes' if evaluation['blessed'] else 'no'}; compared with "
              + (f"version {baseline}" if baseline else "no baseline (nothing was served)"), "",
              "Thresholds: " + "; ".join(json.dumps(t) for t in evaluation["thresholds"]), ""]
    metrics = sorted({m for v in evaluation["metrics_by_slice"].values() for m in v})
    shown = [m for m in metrics if m in ("auc", "binary_accuracy", "precision", "recall",
                                        "example_count", "auc_diff", "binary_accuracy_diff")]
    lines += ["| slice | " + " | ".join(shown) + " |", "|---" * (len(shown) + 1) + "|"]
    for name, values in sorted(evaluation["metrics_by_slice"].items(),
                               key=lambda kv: (kv[0] != "overall", kv[0])):
        lines.append(f"| {name} | " + " | ".join(str(values.get(m, "")) for m in shown) + " |")
    lines += ["", "## Known limitations", "", *(f"- {t}" for t in facts["limitations"]), ""]
    return "\n".join(lines)


def write_card(model_dir: str, facts: dict) -> str:
    """Write the card (Markdown and JSON) into the model's assets.extra; the .md path."""
    path = os.path.join(model_dir, CARD_FILE)
    fileio.makedirs(os.path.dirname(path))
    with fileio.open(path, "w") as f:
        f.write(markdown(facts))
    with fileio.open(os.path.join(model_dir, CARD_JSON), "w") as f:
        f.write(json.dumps(facts, indent=1, sort_keys=True, default=str))
    return path
