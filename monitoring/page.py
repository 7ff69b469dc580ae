"""The check's HTML page, in the pipeline report's style (its style sheet and macros)."""

from __future__ import annotations

import jinja2
import numpy as np

from metadata.artifacts import by_name, present_share, visible

ENVIRONMENT = jinja2.Environment(
    loader=jinja2.ChoiceLoader([jinja2.PackageLoader("monitoring", "templates"),
                                jinja2.PackageLoader("review.report", "templates")]),
    autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
)


def _summary(feature) -> str:
    if feature is None:
        return "—"
    if feature.HasField("num_stats"):
        return f"{feature.num_stats.mean:.4g}"
    top = feature.string_stats.top_values
    return f"{top[0].value} ({top[0].frequency:,.0f})" if top else "—"


def feature_rows(requests, training) -> list[list[str]]:
    """One row per column of either side: presence and a one-number summary."""
    now, before = by_name(requests.datasets[0]), by_name(training.datasets[0])
    n, m = requests.datasets[0].num_examples, training.datasets[0].num_examples
    rows = []
    for name in sorted(set(now) | set(before)):
        rows.append([
            visible(name),
            f"{present_share(before[name], m):.1%}" if name in before else "absent",
            f"{present_share(now[name], n):.1%}" if name in now else "absent",
            _summary(before.get(name)), _summary(now.get(name)),
        ])
    return rows


def _quantiles(values: np.ndarray) -> str:
    return " / ".join(f"{q:.3f}" for q in np.quantile(values, [0.1, 0.5, 0.9]))


def probability_rows(served: np.ndarray, reference: np.ndarray | None) -> list[list[str]]:
    if not len(served) or reference is None or not len(reference):
        return []
    return [["probabilities", f"{len(served):,}", f"{len(reference):,}"],
            ["mean", f"{served.mean():.4f}", f"{reference.mean():.4f}"],
            ["10 % / 50 % / 90 % quantiles", _quantiles(served), _quantiles(reference)]]


def render(check_id: str, verdict: str, overview: list[list[str]], findings: list[dict],
           requests, training, served: np.ndarray, reference: np.ndarray | None) -> str:
    return ENVIRONMENT.get_template("check.html").render(
        check_id=check_id, verdict=verdict, overview=overview,
        findings=[{**f, "feature": visible(f["feature"])} for f in findings],
        features=feature_rows(requests, training),
        probabilities=probability_rows(served, reference),
    )
