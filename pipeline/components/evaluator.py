"""TFX's Evaluator, with the model currently served as its baseline.

TFX's Evaluator takes its baseline from a Resolver node (latest blessed
model). Open-source Kubeflow Pipelines cannot run Resolver nodes, so this
Evaluator finds the baseline itself: the newest version under the serving base
(pipeline/components/baseline.py), i.e. exactly the model a candidate would replace.
Everything else is TFX's executor unchanged: same metrics, thresholds,
blessing and outputs.

The served SavedModel is copied into `<evaluation>/baseline_model/Format-Serving`
(the layout TFX's Evaluator reads a Model artifact from, and a place every
Beam worker can read), and the blessing and evaluation record which version
was compared (`baseline_version`, `baseline_model_uri`). The first run, with
nothing served, has no baseline: TFX then ignores the change threshold.

A large eval split is scored on a uniform sample of at most about
`eval_rows` rows (whole shards, pipeline/components/sampling.py): TFMA computes metrics
example by example, and past a hundred thousand rows more rows barely sharpen
the estimate.

Caching: the baseline is not an input, so a re-run with nothing changed
reuses the Evaluator's result (and the Pusher's, which then pushes nothing).
"""

from __future__ import annotations

import os
from typing import Any

import tensorflow_model_analysis as tfma
from absl import logging
from tfx import types
from tfx.components.evaluator import constants
from tfx.components.evaluator.executor import Executor as TfxEvaluatorExecutor
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.types import artifact_utils, standard_artifacts, standard_component_specs
from tfx.types.component_spec import ExecutionParameter
from tfx.utils import io_utils, json_utils, path_utils

from metadata.names import BASELINE_URI, BASELINE_VERSION
from pipeline.components import sampling, tfx_internals
from pipeline.components.baseline import served_model

SERVING_BASE_KEY = "serving_base"
EVAL_ROWS_KEY = "eval_rows"
BASELINE_DIR = "baseline_model"


class ServedBaselineEvaluatorSpec(standard_component_specs.EvaluatorSpec):
    """EvaluatorSpec plus the serving base the baseline is read from, and the
    eval rows to score (0: every row)."""

    PARAMETERS = {
        **standard_component_specs.EvaluatorSpec.PARAMETERS,
        SERVING_BASE_KEY: ExecutionParameter(type=str),
        EVAL_ROWS_KEY: ExecutionParameter(type=int),
    }


class ServedBaselineExecutor(TfxEvaluatorExecutor):
    """TFX's Evaluator executor, given the served model as `baseline_model`."""

    def Do(self, input_dict: dict[str, list], output_dict: dict[str, list],  # noqa: N802
           exec_properties: dict[str, Any]) -> None:
        exec_properties = dict(exec_properties)
        serving_base = exec_properties.pop(SERVING_BASE_KEY)
        eval_rows = exec_properties.pop(EVAL_ROWS_KEY, 0) or 0
        evaluation = artifact_utils.get_single_instance(
            output_dict[standard_component_specs.EVALUATION_KEY])
        served = served_model(serving_base)
        input_dict = dict(input_dict)
        input_dict.pop(standard_component_specs.BASELINE_MODEL_KEY, None)
        if served is None:
            logging.info("Evaluator: nothing served under %s; no baseline", serving_base)
        else:
            version, folder = served
            input_dict[standard_component_specs.BASELINE_MODEL_KEY] = [
                baseline_artifact(folder, os.path.join(evaluation.uri, BASELINE_DIR))
            ]
            logging.info("Evaluator: baseline is served version %d (%s)", version, folder)
        examples = artifact_utils.get_single_instance(
            input_dict[standard_component_specs.EXAMPLES_KEY])
        with tfx_internals.evaluator_file_patterns(sample_patterns(examples, eval_rows)):
            super().Do(input_dict, output_dict, exec_properties)
        blessing = artifact_utils.get_single_instance(
            output_dict[standard_component_specs.BLESSING_KEY])
        for artifact in (blessing, evaluation):
            record_baseline(artifact, served)


def sample_patterns(examples: types.Artifact, rows: int) -> dict[str, str]:
    """{a split's full file pattern: its sample's} for the splits over `rows` rows."""
    splits = artifact_utils.decode_split_names(examples.split_names)
    samples = {split: sampling.split_sample(examples, split, rows) for split in splits}
    return sampling.sampled_patterns(examples, samples)


def baseline_artifact(served_folder: str, target: str) -> standard_artifacts.Model:
    """A Model artifact holding a copy of the served SavedModel, in TFX's layout."""
    model = standard_artifacts.Model()
    model.uri = target
    io_utils.copy_dir(served_folder, path_utils.serving_model_dir(target))
    return model


def record_baseline(artifact, served: tuple[int, str] | None) -> None:
    """Say on `artifact` which served version was the baseline (version 0: none).

    TFX records an ML Metadata id for the baseline model; a served folder has
    none, and Kubeflow's entrypoint would fail to translate one, so the id is
    dropped and the version and folder are recorded instead.
    """
    properties = artifact.mlmd_artifact.custom_properties
    if constants.ARTIFACT_PROPERTY_BASELINE_MODEL_ID_KEY in properties:
        del properties[constants.ARTIFACT_PROPERTY_BASELINE_MODEL_ID_KEY]
    artifact.set_int_custom_property(BASELINE_VERSION, served[0] if served else 0)
    artifact.set_string_custom_property(BASELINE_URI, served[1] if served else "")


class ServedBaselineEvaluator(base_beam_component.BaseBeamComponent):
    """TFX's Evaluator whose baseline is the served model (see the module docstring)."""

    SPEC_CLASS = ServedBaselineEvaluatorSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(ServedBaselineExecutor)

    def __init__(self, examples: types.BaseChannel, model: types.BaseChannel,
                 eval_config: tfma.EvalConfig, serving_base: str, eval_rows: int):
        super().__init__(spec=ServedBaselineEvaluatorSpec(
            examples=examples,
            model=model,
            eval_config=eval_config,
            example_splits=json_utils.dumps(None),
            serving_base=serving_base,
            eval_rows=eval_rows,
            blessing=types.Channel(type=standard_artifacts.ModelBlessing),
            evaluation=types.Channel(type=standard_artifacts.ModelEvaluation),
        ))
