"""The lineage as text: the runs list, the five-line answer, the chain of executions.

`review.lineage` finds the runs (`metadata.outcome`) and the chain in ML
Metadata; this module only words them (the report shows `headline` too). It
imports nothing from `review.lineage`, which imports it.
"""

from __future__ import annotations

import datetime
import json

from metadata import names, outcome
from metadata.artifacts import anomalies_by_split
from metadata.evaluation import recorded_baseline
from metadata.graph import ArtifactInfo, Lineage, Step
from metadata.outcome import RunOutcome
from metadata.serving_records import describe_use


def fingerprint_summary(fingerprint: str) -> str:
    """'split:...,num_files:1,total_bytes:1922812,...' -> '1 file, 1.9 MB'."""
    fields = dict(part.split(":", 1) for part in fingerprint.split(",") if ":" in part)
    files = int(fields.get("num_files", 0))
    size = int(fields.get("total_bytes", 0))
    return f"{files} file{'s' if files != 1 else ''}, {size / 1e6:.1f} MB"


def format_time(seconds: float) -> str:
    return datetime.datetime.fromtimestamp(seconds).strftime("%Y-%m-%d %H:%M:%S")


def _states(states: dict[str, int]) -> str:
    return ", ".join(f"{n} {state}" for state, n in sorted(states.items()))


def push_text(run: RunOutcome) -> str:
    """What the run's Pusher did, in the runs list's words."""
    push = run.push
    if push is None or push.kind == outcome.NOT_PUSHED:
        return "pushed nothing"
    if push.kind == outcome.PUSHED:
        return f"pushed {push.version}"
    if push.kind == outcome.KEPT:
        return (f"nothing new pushed; kept {push.version} (the same model, pushed by run "
                f"{push.pushed_by})")
    return f"nothing new pushed; serving {push.version}, pushed by run {push.pushed_by}"


def format_runs(runs: list[RunOutcome]) -> list[str]:
    lines = [f"Pipeline runs ({len(runs)}):"]
    for run in runs:
        blessed = {True: "blessed", False: "NOT blessed", None: "not evaluated"}[run.blessed]
        lines.append(
            f"  {run.run_id}  {run.finished - run.started:6.1f} s  "
            f"{_states(run.states):<20} {blessed}, {push_text(run)}"
        )
    return lines


# Transform's side outputs: in --json, not worth a line of text each.
_QUIET_OUTPUTS = frozenset({
    "pre_transform_stats", "pre_transform_schema", "post_transform_stats",
    "post_transform_schema", "post_transform_anomalies", "updated_analyzer_cache",
})


def _describe(artifact: ArtifactInfo) -> str:
    props = artifact.properties
    parts = [f"{artifact.type} #{artifact.id}"]
    if "span" in props:
        parts.append(f"span {props['span']}")
    if "input_fingerprint" in props:
        parts.append(fingerprint_summary(str(props["input_fingerprint"])))
    if "selected" in props:
        parts.append(f"selected: {str(props['selected']).replace(',', ', ')}")
    if artifact.type == names.MODEL_BLESSING and names.BLESSED in props:
        parts.append("BLESSED" if props[names.BLESSED] else "NOT blessed")
    if artifact.type == names.ANOMALIES:
        parts.append(_anomaly_counts(artifact.uri))
    return ", ".join(parts)


def _anomaly_counts(uri: str) -> str:
    counts = {split: len(a.anomaly_info) for split, a in anomalies_by_split(uri).items()}
    if not counts:
        return "anomalies: none recorded"
    return "anomalies in " + ", ".join(f"{split}: {n} features" for split, n in counts.items())


def _compact(value: object) -> str:
    return json.dumps(value, separators=(", ", ": ")) if isinstance(value, (dict, list)) else str(
        value
    )


def _baseline_note(step: Step) -> str:
    """Which served model the Evaluator compared with (recorded on its blessing)."""
    blessing = step.outputs.get("blessing", [])
    baseline = recorded_baseline(blessing[0].properties) if blessing else None
    if baseline is None:
        return "no baseline (no model was being served)"
    return f"compared with served version {baseline[0]} ({baseline[1]})"


def headline(lineage: Lineage) -> list[str]:
    """The short answer: which data, features, training, blessing and push."""
    def at(step: Step | None) -> str:
        return f"{format_time(step.finished)} (run {step.run_id})" if step else "not recorded"

    lines = [f"Model version {lineage.version}, served from {lineage.destination}"]
    example_gen = next((s for s in lineage.steps if "input_base" in s.properties), None)
    if example_gen:
        examples = [a for arts in example_gen.outputs.values() for a in arts]
        described = _describe(examples[0]).split(", ", 1)[-1] if examples else ""
        lines.append(f"  data:     {example_gen.properties['input_base']} ({described}), "
                     f"read {at(example_gen)}")
    selection = next(
        (a for s in lineage.steps for arts in s.outputs.values() for a in arts
         if "selected" in a.properties), None)
    if selection:
        lines.append(f"  features: {str(selection.properties['selected']).replace(',', ', ')}")
    lines.append(f"  trained:  {at(lineage.step(names.TRAINER))}")
    evaluator = lineage.step(names.EVALUATOR)
    if evaluator:
        lines.append(f"  blessed:  {at(evaluator)}; {_baseline_note(evaluator)}")
    lines.append(f"  pushed:   {at(lineage.step(names.PUSHER))}")
    return lines


def format_lineage(lineage: Lineage) -> list[str]:
    lines = ["", *headline(lineage), "", "Chain of executions, oldest first:"]
    width = max(len(step.component) for step in lineage.steps)
    for step in lineage.steps:
        lines.append(
            f"  {step.component:<{width}} {format_time(step.started)}  {step.seconds:6.1f} s  "
            f"{step.state:<6} run {step.run_id}  ({step.role})"
        )
        for key, value in step.properties.items():
            if value not in (None, "", {}, []):
                lines.append(f"      {key}: {_compact(value)}")
        for key, artifacts in step.outputs.items():
            if key in _QUIET_OUTPUTS:
                continue
            for artifact in artifacts:
                lines.append(f"      -> {key}: {_describe(artifact)}")
                lines.append(f"         {artifact.uri}")
    if lineage.uses:
        lines += ["", "After the push (batch predictions, rollout changes):"]
        lines += [f"  {format_time(float(use.get('finished_at') or use.get('at') or 0))}  "
                  f"{describe_use(use)}" for use in lineage.uses]
    return lines
