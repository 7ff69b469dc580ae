"""The metadata layer's pure parts: blessing failures in words, a missing validation result."""

from __future__ import annotations

from metadata import evaluation, names


def _validation(failed: bool):
    from tensorflow_model_analysis.proto import validation_result_pb2

    result = validation_result_pb2.ValidationResult(validation_ok=not failed)
    if failed:
        per_slice = result.metric_validations_per_slice.add()
        failure = per_slice.failures.add()
        failure.metric_key.name = "auc"
        failure.metric_value.double_value.value = 0.8448
        failure.metric_threshold.value_threshold.lower_bound.value = 0.945
        diff = per_slice.failures.add()
        diff.metric_key.name = "auc"
        diff.metric_key.is_diff = True
        diff.metric_value.double_value.value = -0.02
        diff.metric_threshold.change_threshold.absolute.value = -0.01
        sliced = result.metric_validations_per_slice.add()
        key = sliced.slice_key.single_slice_keys.add(column="payment_type")
        key.bytes_value = b"Cash"
        sliced.failures.add().metric_key.name = "binary_accuracy"
    return result


def test_one_text_per_failed_rule_for_the_summary_and_the_report():
    failures = evaluation.blessing_failures(_validation(failed=True))
    assert [f.text for f in failures] == [
        "auc 0.8448 (needs at least 0.945)",
        "auc change vs baseline -0.0200 (may drop by at most 0.01 against the baseline)",
        "binary_accuracy 0.0000 (change threshold against the baseline)",
    ]
    assert [f.slice for f in failures] == ["overall", "overall", "payment_type=Cash"]
    assert evaluation.blessing_failures(_validation(failed=False)) == []


def test_a_missing_validation_result_is_none_not_zero_failures(tmp_path):
    assert evaluation.load_validation(str(tmp_path)) is None
    assert evaluation.blessing_failures(None) == []


def test_recorded_baseline_reads_the_evaluators_properties():
    assert evaluation.recorded_baseline({names.BASELINE_VERSION: 0}) is None
    assert evaluation.recorded_baseline(
        {names.BASELINE_VERSION: 7, names.BASELINE_URI: "/m/7"}) == (7, "/m/7")


def test_state_names_cover_the_final_states():
    assert {names.state_name(s) for s in names.FINAL_STATES} == {"ran", "cached", "FAILED",
                                                                  "canceled"}
