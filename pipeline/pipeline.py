"""The TFX pipeline: one DAG from CSV rows to a blessed, pushed model.

    CsvExampleGen -> StatisticsGen -> ExampleValidator (vs. ImportSchemaGen's
      curated schema) -> DataValidationGate (stops bad data; drift vs. the
      last accepted statistics) -> FeatureSelection -> Transform -> Trainer
      -> Evaluator (vs. the model currently served) -> Pusher

`create_pipeline` takes everything from a `PipelineConfig`, so the same code
runs under LocalDagRunner, in tests on temporary folders, and on Kubeflow.
Every node is a container component: the two baselines are found by the
gate and the Evaluator themselves (pipeline/components/baseline.py), not by Resolver
nodes, which open-source Kubeflow Pipelines cannot run.
"""

from __future__ import annotations

import json

import tensorflow_model_analysis as tfma
from google.protobuf.message import Message
from ml_metadata.proto import metadata_store_pb2

# Direct imports rather than the `v1` facade, which also loads the Google Cloud
# AI Platform extensions (google.cloud.aiplatform): seconds of every run's start.
from tfx.components import ExampleValidator
from tfx.dsl.components.base.base_node import BaseNode
from tfx.orchestration.data_types import RuntimeParameter
from tfx.orchestration.pipeline import Pipeline
from tfx.proto import example_gen_pb2, trainer_pb2

from metadata import names
from models import contract, features
from pipeline.components.baseline import accepted_statistics_file
from pipeline.components.csv_example_gen import StreamingCsvExampleGen
from pipeline.components.evaluator import ServedBaselineEvaluator
from pipeline.components.feature_selection import FeatureSelectionComponent
from pipeline.components.gate import DataValidationGate
from pipeline.components.pusher import ServingPusher
from pipeline.components.sampling import SampledStatisticsGen, SampledTrainer, SampledTransform
from pipeline.components.schema_import import ContentImportSchemaGen, schema_digest
from pipeline.configs import PREPROCESSING_FN, RUN_FN, PipelineConfig

# Pipeline parameters of a Kubeflow run (see `step_args`).
TRAIN_ARGS_PARAMETER = "train_args"
EVAL_ARGS_PARAMETER = "eval_args"

# Slices the report shows metrics for. Thresholds apply to the overall slice
# only: some slices (e.g. "No Charge") hold no big tippers, so AUC there is
# undefined and a per-slice floor could never pass.
SLICE_FEATURES = ("payment_type", "trip_start_hour")


def _overall(threshold: tfma.MetricThreshold) -> tfma.PerSliceMetricThreshold:
    """`threshold` for the overall slice only (`MetricConfig.threshold` hits every slice)."""
    return tfma.PerSliceMetricThreshold(slicing_specs=[tfma.SlicingSpec()], threshold=threshold)


def eval_config(config: PipelineConfig) -> tfma.EvalConfig:
    """Metrics, slices and the thresholds a model must pass to be blessed."""
    thresholds = config.thresholds
    auc_threshold = tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(lower_bound={"value": thresholds.min_auc}),
        change_threshold=tfma.GenericChangeThreshold(
            direction=tfma.MetricDirection.HIGHER_IS_BETTER,
            absolute={"value": -thresholds.max_auc_drop},
        ),
    )
    accuracy_threshold = tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(
            lower_bound={"value": thresholds.min_accuracy}
        ),
        change_threshold=tfma.GenericChangeThreshold(
            direction=tfma.MetricDirection.HIGHER_IS_BETTER,
            absolute={"value": -thresholds.max_accuracy_drop},
        ),
    )
    return tfma.EvalConfig(
        model_specs=[
            tfma.ModelSpec(
                signature_name=contract.SIGNATURE_NAME,
                label_key=features.LABEL_KEY,
                prediction_key=contract.OUTPUT_KEY,
                preprocessing_function_names=[contract.TRANSFORM_SIGNATURE_NAME],
            )
        ],
        slicing_specs=[tfma.SlicingSpec()]
        + [tfma.SlicingSpec(feature_keys=[name]) for name in SLICE_FEATURES],
        metrics_specs=[
            tfma.MetricsSpec(
                metrics=[
                    tfma.MetricConfig(class_name="ExampleCount"),
                    tfma.MetricConfig(
                        class_name="AUC", per_slice_thresholds=[_overall(auc_threshold)]
                    ),
                    tfma.MetricConfig(
                        class_name="BinaryAccuracy",
                        per_slice_thresholds=[_overall(accuracy_threshold)],
                    ),
                    tfma.MetricConfig(class_name="Precision"),
                    tfma.MetricConfig(class_name="Recall"),
                    tfma.MetricConfig(class_name="CalibrationPlot"),
                    # 200 thresholds draw a smooth ROC curve; TFMA's default
                    # of 1000 costs Evaluator time on every slice for nothing.
                    tfma.MetricConfig(
                        class_name="ConfusionMatrixPlot", config='{"num_thresholds": 200}'
                    ),
                ]
            )
        ],
    )


def step_args(
    config: PipelineConfig, name: str, steps: int, proto_type: type[Message]
) -> Message | RuntimeParameter:
    """Trainer's train/eval args: a fixed proto, or a pipeline parameter on Kubeflow.

    Kubeflow V2 binds a pipeline parameter only to a whole component argument,
    and a proto-typed one only as its JSON text, so the parameter holds
    '{"num_steps": N}' (defaulting to `steps`) and each run may override it.
    """
    if not config.runtime_parameters:
        return proto_type(num_steps=steps)
    return RuntimeParameter(
        name=name,
        ptype=str,
        default=json.dumps({"num_steps": steps}),
        description=f"Trainer {proto_type.__name__} as JSON text",
    )


def schema_import(config: PipelineConfig) -> ContentImportSchemaGen:
    """ImportSchemaGen of the curated schema, re-run whenever its content changes.

    Locally the schema's digest is a parameter (pipeline/components/schema_import.py),
    so an edited schema.pbtxt is imported again; so it is on Azure ML, from the
    local copy of the image's schema (`schema_digest_path`). Kubeflow runs read
    it from the pipeline image, which changes with it.
    """
    return ContentImportSchemaGen(
        schema_file=config.schema_path, schema_sha256=schema_sha256(config)
    ).with_id(names.IMPORT_SCHEMA_GEN)


def schema_sha256(config: PipelineConfig) -> str | None:
    """The curated schema's digest for components whose cache must follow its
    content (ImportSchemaGen; CsvExampleGen, which reads its types)."""
    source = config.schema_digest_path or (config.schema_path if config.local_metadata else None)
    return schema_digest(source) if source else None


def create_components(config: PipelineConfig) -> list[BaseNode]:
    """Every component of the pipeline, wired together, in execution order."""
    train_buckets, eval_buckets = config.split_buckets
    example_gen = StreamingCsvExampleGen(
        input_base=config.data_root,
        input_config=example_gen_pb2.Input(
            splits=[example_gen_pb2.Input.Split(name="single_split", pattern=config.input_pattern)]
        ),
        output_config=example_gen_pb2.Output(
            split_config=example_gen_pb2.SplitConfig(
                splits=[
                    example_gen_pb2.SplitConfig.Split(name="train", hash_buckets=train_buckets),
                    example_gen_pb2.SplitConfig.Split(name="eval", hash_buckets=eval_buckets),
                ]
            )
        ),
        schema_file=config.schema_path,
        schema_sha256=schema_sha256(config),
    ).with_id(names.EXAMPLE_GEN)
    # Node ids come from metadata/names.py, where the readers (summary, report,
    # lineage) look them up; they are TFX's names for its own components, which
    # these classes change (streaming, sampling: their names say how).
    statistics_gen = SampledStatisticsGen(
        examples=example_gen.outputs["examples"], sample_rows=config.sample_rows
    ).with_id(names.STATISTICS_GEN)
    schema_gen = schema_import(config)
    example_validator = ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"]
    ).with_id(names.EXAMPLE_VALIDATOR)
    gate = DataValidationGate(
        statistics=statistics_gen.outputs["statistics"],
        schema=schema_gen.outputs["schema"],
        anomalies=example_validator.outputs["anomalies"],
        accepted_statistics_file=accepted_statistics_file(config.pipeline_root),
        examples=example_gen.outputs["examples"],  # only for its span, which the run reports
        allowed_anomalies=",".join(config.allowed_anomalies),
    ).with_id(names.GATE)
    selection = FeatureSelectionComponent(
        statistics=statistics_gen.outputs["statistics"],
        schema=schema_gen.outputs["schema"],
        examples=example_gen.outputs["examples"],
        min_presence=config.selection.min_presence,
        min_information=config.selection.min_information,
        max_rows=config.selection.max_rows,
        permutations=config.selection.permutations,
        significance=config.selection.significance,
    ).with_id(names.FEATURE_SELECTION)
    # Nothing downstream of the gate (selection, Transform, Trainer, Pusher)
    # runs unless the data passed it.
    selection.add_upstream_node(gate)
    transform = SampledTransform(
        examples=example_gen.outputs["examples"],
        schema=selection.outputs["transform_schema"],
        preprocessing_fn=PREPROCESSING_FN,
        sample_rows=config.sample_rows,
    ).with_id(names.TRANSFORM)
    trainer = SampledTrainer(
        run_fn=RUN_FN,
        examples=example_gen.outputs["examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=selection.outputs["transform_schema"],
        train_args=step_args(
            config, TRAIN_ARGS_PARAMETER, config.train_steps, trainer_pb2.TrainArgs
        ),
        eval_args=step_args(config, EVAL_ARGS_PARAMETER, config.eval_steps, trainer_pb2.EvalArgs),
        custom_config=dict(config.hyperparameters),
    ).with_id(names.TRAINER)
    evaluator = ServedBaselineEvaluator(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        eval_config=eval_config(config),
        serving_base=config.serving_model_dir,
        eval_rows=config.eval_rows,
    ).with_id(names.EVALUATOR)
    # Checks the model loads in core TensorFlow, adds TF Serving warm-up
    # requests from the eval split, and pushes atomically (pipeline/components/pusher.py).
    pusher = ServingPusher(
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        examples=example_gen.outputs["examples"],
        # For the model card it writes into the pushed version (model_card.py).
        statistics=statistics_gen.outputs["statistics"],
        selection=selection.outputs["selection"],
        evaluation=evaluator.outputs["evaluation"],
        model_run=trainer.outputs["model_run"],
        base_directory=config.serving_model_dir,
        push_as=config.push_as,
        settle_seconds=config.serving_settle_seconds,
    ).with_id(names.PUSHER)
    return [
        example_gen,
        statistics_gen,
        schema_gen,
        example_validator,
        gate,
        selection,
        transform,
        trainer,
        evaluator,
        pusher,
    ]


def sqlite_metadata(path: str) -> metadata_store_pb2.ConnectionConfig:
    """ML Metadata in SQLite at `path`, created on first use.

    TFX's `sqlite_metadata_connection_config` also creates the folder, which
    would make building the DAG write to disk; the local runner's preflight
    creates the output folder before the run.
    """
    sqlite = metadata_store_pb2.SqliteMetadataSourceConfig
    return metadata_store_pb2.ConnectionConfig(
        sqlite=sqlite(filename_uri=path, connection_mode=sqlite.READWRITE_OPENCREATE)
    )


def metadata_connection_config(config: PipelineConfig) -> metadata_store_pb2.ConnectionConfig:
    """SQLite under the output dir (created on first use), or the configured MySQL database."""
    where = config.metadata_location
    if isinstance(where, str):
        return sqlite_metadata(where)
    return where


def create_pipeline(config: PipelineConfig) -> Pipeline:
    """The pipeline for `config`, with ML Metadata where `config` says (default: SQLite).

    Building it writes nothing to disk: `config` is only read.
    """
    return Pipeline(
        pipeline_name=config.pipeline_name,
        pipeline_root=config.pipeline_root,
        components=create_components(config),
        enable_cache=config.enable_cache,
        metadata_connection_config=(
            metadata_connection_config(config) if config.local_metadata else None
        ),
        beam_pipeline_args=list(config.beam_pipeline_args),
    )
