"""Every name the pipeline records in ML Metadata and its readers look up, in one place.

A writer (the DAG's node ids in `pipeline.pipeline`, the properties and files
the components write) and its readers (`metadata.outcome`, `review.*`, the tests)
must agree on each of these strings. Defined once here, renaming a node or a
property renames it on both sides, instead of leaving a reader silently
finding nothing. This module imports only ML Metadata's protos, so every
layer, from the components to the report, may import it.
"""

from __future__ import annotations

from ml_metadata.proto import metadata_store_pb2

# -- node ids: `create_pipeline` gives each node its id from here ----------------------------
EXAMPLE_GEN = "CsvExampleGen"
STATISTICS_GEN = "StatisticsGen"
IMPORT_SCHEMA_GEN = "ImportSchemaGen"
EXAMPLE_VALIDATOR = "ExampleValidator"
GATE = "DataValidationGate"
FEATURE_SELECTION = "FeatureSelection"
TRANSFORM = "Transform"
TRAINER = "Trainer"
EVALUATOR = "Evaluator"
PUSHER = "Pusher"

# -- context types TFX records each execution under -----------------------------------------
# IR-based runners (LocalDagRunner, the node runner under Luigi and Azure ML, Kubeflow):
RUN_CONTEXT = "pipeline_run"
NODE_CONTEXT = "node"
# TFX's older launcher, which AirflowDagRunner still uses: a "run" context named
# "<pipeline>.<run id>", and the run id and node id as properties of each execution.
LEGACY_RUN_CONTEXT = "run"
LEGACY_RUN_ID = "run_id"
LEGACY_COMPONENT_ID = "component_id"

# -- artifact types and the output keys they are published under ----------------------------
EXAMPLES = "Examples"
STATISTICS = "ExampleStatistics"
ANOMALIES = "ExampleAnomalies"
VALIDATED_STATISTICS = "ValidatedStatistics"  # the gate's output (pipeline/components/gate.py)
SELECTION = "FeatureSelection"  # FeatureSelection's output
MODEL_RUN = "ModelRun"
MODEL_EVALUATION = "ModelEvaluation"
MODEL_BLESSING = "ModelBlessing"
PUSHED_MODEL = "PushedModel"

# What monitoring.check records: an execution per check of served requests, under one context,
# reading the PushedModel that answered and writing the requests' statistics.
REQUEST_CHECK = "RequestCheck"
REQUEST_STATISTICS = "RequestStatistics"
MONITORING_CONTEXT = "monitoring"
REQUEST_CHECKS = "request_checks"

# -- properties -------------------------------------------------------------------------------
# On the Evaluator's ModelBlessing (TFX's own).
BLESSED = "blessed"
# On the PushedModel artifact (the first three are TFX Pusher's; pipeline/components/pusher.py).
PUSHED = "pushed"
PUSHED_DESTINATION = "pushed_destination"
PUSHED_VERSION = "pushed_version"
NOT_PUSHED_REASON = "not_pushed_reason"
SERVING_CHECK = "serving_check"
# On the Evaluator's blessing and evaluation (pipeline/components/evaluator.py): the served
# version it compared with (0 for none) and its folder, under TFX's own key for the latter.
BASELINE_VERSION = "baseline_version"
BASELINE_URI = "baseline_model"
# On the gate's execution: the --allow-anomaly entries, comma-separated, and the path of the
# pointer to the statistics it last accepted (pipeline/components/baseline.py).
ALLOWED_ANOMALIES = "allowed_anomalies"
ACCEPTED_STATISTICS_FILE = "accepted_statistics_file"

# -- files the components write inside their artifacts ---------------------------------------
GATE_REPORT_FILE = "validation.json"  # ValidatedStatistics: what was compared, what was allowed
# A refusing gate publishes nothing; it records its findings in this folder beside the
# pointer file, one JSON file per refused statistics (metadata.artifacts.refusal_file).
GATE_REFUSALS_DIR = "refusals"
SELECTION_REPORT_FILE = "feature_selection.json"  # FeatureSelection: every decision, label counts
HISTORY_FILE = "training_history.json"  # ModelRun: the Keras training history
TRAINING_FACTS_FILE = "training_facts.json"  # ModelRun: steps, batch size, final losses

# -- the first words of the validation gate's refusal (pipeline/components/gate.py): runners
# that only see a failed node's text (Luigi, the node runner) recognise a refusal by them.
GATE_FIRST_LINE = "Data validation failed"

# -- execution states, as every tool prints them ----------------------------------------------
_Execution = metadata_store_pb2.Execution
STATE_NAMES = {
    _Execution.COMPLETE: "ran",
    _Execution.CACHED: "cached",
    _Execution.FAILED: "FAILED",
    _Execution.RUNNING: "running",
    _Execution.NEW: "new",
    _Execution.CANCELED: "canceled",
}
# States an execution can end in; anything else is still under way.
FINAL_STATES = frozenset({_Execution.COMPLETE, _Execution.CACHED, _Execution.FAILED,
                          _Execution.CANCELED})


def state_name(state: int) -> str:
    """"ran", "cached", "FAILED", ... for an execution's `last_known_state`."""
    return STATE_NAMES.get(state, str(state))

# On StatisticsGen's output (TFX's own property, a JSON text): {split: fraction
# of the split the statistics describe}; below 1 for a sampled split.
SAMPLE_RATE_BY_SPLIT = "sample_rate_by_split"
