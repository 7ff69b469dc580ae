"""The blessing rule, checked by TFMA's own validator on the pipeline's eval config.

The metric values are the ones measured by `python -m benchmarks.spans`
(docs/benchmarks.md, "Continuous training on random halves, and the blessing
thresholds"): the lowest a good model scored, and what each clearly worse
model scored, on a half of the shipped data.
"""

from __future__ import annotations

import pytest

from metadata import evaluation
from pipeline.configs import PipelineConfig
from pipeline.pipeline import eval_config


def _failures(auc: float, accuracy: float, baseline: tuple[float, float] | None = None
              ) -> list[str]:
    """The summary's "why not blessed" lines for these overall metrics ([]: blessed).

    `baseline`: the served model's (AUC, accuracy) on the same rows.
    """
    import tensorflow_model_analysis as tfma
    from tensorflow_model_analysis.evaluators import metrics_validator
    from tensorflow_model_analysis.metrics import metric_types

    has_baseline = baseline is not None
    # As TFX's Evaluator executor prepares it (a change threshold needs a baseline).
    config = tfma.utils.update_eval_config_with_defaults(
        eval_config(PipelineConfig()), has_baseline=has_baseline, rubber_stamp=True)
    candidate = next(spec.name for spec in config.model_specs if not spec.is_baseline)

    def key(name: str, is_diff: bool = False):
        return metric_types.MetricKey(name=name, model_name=candidate, is_diff=is_diff)

    metrics = {key("auc"): auc, key("binary_accuracy"): accuracy}
    if has_baseline:
        metrics[key("auc", is_diff=True)] = auc - baseline[0]
        metrics[key("binary_accuracy", is_diff=True)] = accuracy - baseline[1]
    validation = metrics_validator.validate_metrics(((), metrics), config)
    return [failure.text for failure in evaluation.blessing_failures(validation)]


def test_the_lowest_scoring_good_models_are_blessed():
    # A half of the shipped data as the first span, nothing served (issue 22).
    assert _failures(0.9447, 0.8897) == []
    # Lower than any good model measured on a half, with a same-quality baseline.
    assert _failures(0.935, 0.875, baseline=(0.940, 0.880)) == []


def test_garbage_labels_are_refused_even_when_the_baseline_scores_worse():
    """Tips shuffled: the served model scores 0.46 on those labels, so only the floors
    can refuse the candidate."""
    assert _failures(0.6335, 0.7716, baseline=(0.4641, 0.6251)) == [
        "auc 0.6335 (needs at least 0.92)",
        "binary_accuracy 0.7716 (needs at least 0.86)",
    ]


@pytest.mark.parametrize("auc, accuracy, baseline, failed", [
    # The issue gives the served model's AUC only: same accuracy assumed.
    pytest.param(0.9388, 0.8781, (0.958, 0.8781), ["auc change"],
                 id="the issue's span-2 model (census tract kept)"),
    pytest.param(0.9556, 0.8986, (0.9607, 0.9110), ["binary_accuracy change"],
                 id="no fare"),
])
def test_a_clearly_worse_model_is_refused_against_the_served_one(auc, accuracy, baseline, failed):
    failures = _failures(auc, accuracy, baseline)
    assert [f.split(" vs ")[0] for f in failures] == failed
    assert all(f.endswith("against the baseline)") for f in failures)
