"""The live serving config: TF Serving's own protos parse it, and every change is
written in the order TF Serving accepts (server_core.cc: a label may only move
to a version that is already loaded)."""

from __future__ import annotations

import itertools

import pytest
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from serving import MODEL_BASE_PATH, MODEL_NAME
from serving import rollout_config as rc
from serving.rollout import target_labels
from serving.rollout_config import CANARY, STABLE, RolloutError, ServingState

VERSIONS = [100, 200, 300]


def parse_proto(text: str) -> model_server_config_pb2.ModelServerConfig:
    return text_format.Parse(text, model_server_config_pb2.ModelServerConfig())


def test_the_written_config_is_a_model_server_config_with_specific_versions_and_labels(tmp_path):
    state = ServingState((200, 300), {STABLE: 200, CANARY: 300})
    path = rc.write(tmp_path, state)
    config = parse_proto(path.read_text()).model_config_list.config
    assert len(config) == 1
    model = config[0]
    assert (model.name, model.base_path, model.model_platform) == (
        MODEL_NAME, MODEL_BASE_PATH, "tensorflow")
    assert list(model.model_version_policy.specific.versions) == [200, 300]
    assert dict(model.version_labels) == {STABLE: 200, CANARY: 300}
    assert rc.read(tmp_path) == state
    assert [p.name for p in tmp_path.iterdir()] == ["models.config"]  # no temporary left


def test_without_a_live_config_the_template_serves_the_newest(tmp_path):
    assert rc.read(tmp_path) == ServingState((), {})
    template = parse_proto(rc.TEMPLATE.read_text()).model_config_list.config[0]
    assert template.model_version_policy.latest.num_versions == 1


def all_states():
    labelings = [{}]
    for stable, canary in itertools.product(VERSIONS, [None, *VERSIONS]):
        if canary != stable:
            labelings.append({STABLE: stable, **({CANARY: canary} if canary else {})})
    return [ServingState.of_labels(labels) for labels in labelings]


@pytest.mark.parametrize("current", all_states(), ids=str)
def test_every_plan_is_a_sequence_tf_serving_accepts(current):
    for target in all_states()[1:]:
        steps = rc.plan(current, target.labels)
        before = current
        for step in steps:
            assert rc.transition_problem(before, step) is None, (current, target, steps)
            before = step
        assert before == target


def test_moving_a_label_straight_to_an_unloaded_version_is_what_tf_serving_refuses():
    before = ServingState((100,), {STABLE: 100})
    assert rc.transition_problem(before, ServingState((300,), {STABLE: 300})) == (
        "label 'stable' moves to version 300, which is not loaded yet")
    steps = rc.plan(before, {STABLE: 300})
    assert steps == [ServingState((100, 300), {STABLE: 100}), ServingState((300,), {STABLE: 300})]


def test_verbs_compute_the_labels():
    state = ServingState((300,), {STABLE: 300})
    assert target_labels("rollback", state, VERSIONS, None) == {STABLE: 200}
    assert target_labels("pin", state, VERSIONS, 100) == {STABLE: 100}
    canary = target_labels("canary", state, VERSIONS, 100)
    assert canary == {STABLE: 300, CANARY: 100}
    assert target_labels("promote", ServingState.of_labels(canary), VERSIONS, None) == {
        STABLE: 100}
    with pytest.raises(RolloutError, match="no version older"):
        target_labels("rollback", ServingState((100,), {STABLE: 100}), VERSIONS, None)
    with pytest.raises(RolloutError, match="no canary"):
        target_labels("promote", state, VERSIONS, None)
    with pytest.raises(RolloutError, match="version 7 is not pushed"):
        target_labels("pin", state, VERSIONS, 7)
    # Nothing labelled yet (the template's newest-version policy): stable is the newest.
    assert target_labels("rollback", ServingState(), VERSIONS, None) == {STABLE: 200}
