"""The summary printed at the end of a run: a `metadata.outcome.RunOutcome`, in words.

What the run did is worked out once, from ML Metadata, in `metadata.outcome`;
the report and `review.lineage` render the same record, so the three agree.
This module only words it (the local runner and the Luigi runner print it).
"""

from __future__ import annotations

from collections.abc import Sequence

from metadata import evaluation as evaluation_files
from metadata import outcome as outcomes
from metadata.outcome import RunOutcome
from models.features import LABEL_KEY

__all__ = ["format_summary", "not_blessed_reasons", "push_line", "single_class",
           "single_class_text"]

_SHOWN_METRICS = ("auc", "binary_accuracy", "precision", "recall", "example_count")


def single_class_text(label_counts: dict[str, list[int]]) -> str | None:
    """`metadata.evaluation.single_class_text` for this pipeline's label."""
    return evaluation_files.single_class_text(label_counts, LABEL_KEY)


def single_class(outcome: RunOutcome) -> str | None:
    """Why AUC is undefined, when the eval split's label has one class; else None."""
    return single_class_text(outcome.label_counts)


def not_blessed_reasons(outcome: RunOutcome) -> list[str]:
    """The failed blessing rules in words; with one class in the eval split, that instead
    of "auc 0.0000 (needs at least 0.92)", which would blame the model for the data."""
    one_class = single_class(outcome)
    if not one_class:
        return list(outcome.not_blessed_because)
    return [reason for reason in outcome.not_blessed_because if not reason.startswith("auc ")] \
        + ([one_class] if outcome.blessed is False else [])


def push_line(outcome: RunOutcome) -> str:
    """"Pushed: ..." for each thing a Pusher can have done."""
    push = outcome.push
    if push is None or push.kind == outcomes.NOT_PUSHED:
        reason = (push.reason if push is not None else "") or (
            "the model was not blessed" if outcome.blessed is False else "no push happened")
        return f"Pushed: nothing ({reason})"
    if push.new:
        return f"Pushed: {push.destination}"
    why = ("the Pusher was cached: nothing changed since that push" if push.kind == outcomes.CACHED
           else "this run's model is identical to it")
    return (f"Pushed: nothing new; serving version {push.version}, pushed by run "
            f"{push.pushed_by} ({why}): {push.destination}")


def format_summary(outcome: RunOutcome, total_seconds: float,
                   reused: Sequence[str] = ()) -> str:
    """The run summary; `reused`: nodes a partial run (`--from` / `--to`) left out and
    took the outputs of from the previous run (the runner that chose the slice knows)."""
    lines = ["", "Run summary", "-----------"]
    for run in outcome.components:
        state = "reused" if run.component in reused else run.state
        lines.append(f"  {run.component:<32} {state:<7} {run.seconds:7.1f} s")
    lines.append(f"  {'total (wall clock)':<32} {'':<7} {total_seconds:7.1f} s")
    if reused:
        lines.append("Partial run: reused the outputs the previous run recorded for "
                     + ", ".join(reused))
    if outcome.data_checked:
        lines.append(f"Data: {outcome.data_checked}")
    one_class = single_class(outcome)
    if outcome.metrics:
        metrics = ", ".join(_metric_text(name, outcome.metrics[name], bool(one_class))
                            for name in _SHOWN_METRICS if name in outcome.metrics)
        lines.append(f"Evaluation: {metrics}")
        if one_class and outcome.blessed is not False:
            lines.append(f"  - {one_class}")
    if outcome.blessed is None:
        lines.append("Model: not evaluated")
    else:
        lines.append(f"Model: {'BLESSED' if outcome.blessed else 'NOT blessed'}")
        lines.extend(f"  - {reason}" for reason in not_blessed_reasons(outcome))
    lines.append(push_line(outcome))
    return "\n".join(lines)


def _metric_text(name: str, value: float, one_class: bool) -> str:
    if name == "example_count":
        return f"eval examples {int(value)}"
    if name == "auc" and one_class:
        return "auc undefined"
    return f"{name} {value:.4f}"
