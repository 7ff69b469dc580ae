"""Every setting of the pipeline, with defaults a newcomer can read.

`PipelineConfig` is the single place where paths and knobs live. The runners
(`local_runner.py`, `kubeflow_runner.py`) build one from their command line and
hand it to `create_pipeline`; tests build one pointing at temporary folders.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from models.contract import MODEL_NAME

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PIPELINE_NAME = "chicago_taxi"

# Code the components run, by dotted path (works locally and inside an image).
PREPROCESSING_FN = "models.preprocessing.preprocessing_fn"
RUN_FN = "models.trainer.run_fn"

# Below this much CSV, Beam's in-memory direct runner is fastest; above it,
# the multi-processing runner uses every core.
IN_MEMORY_MAX_BYTES = 64 * 1024 * 1024

# The eval split is a fifth of the rows (by a hash of each row, so identical
# rows share a split). The Evaluator scores a uniform sample of at most about
# this many of them: its cost grows with every row (TFMA computes metrics
# example by example), while the precision of its AUC estimate hardly improves
# past this size. Capping the rows scored, not the split, keeps a fifth of the
# distinct rows in the eval split however often rows repeat.
MAX_EVAL_ROWS = 100_000

# Rows of a split that StatisticsGen and Transform's analyzers read: a larger
# split is read as a uniform sample of at least this many rows (whole shards of
# the streaming ExampleGen's output; see pipeline/components/sampling.py). 0
# reads all. About as many rows as the Trainer visits (train_steps batches): the
# scaling, vocabularies and buckets it trains with come from as many rows as it
# trains on, and the gate's noise bars at this size are far below its thresholds.
SAMPLE_ROWS = 500_000


@dataclass(frozen=True)
class EvaluationThresholds:
    """When the Evaluator blesses a model.

    Two kinds of rule; the runs that set each value, and what they measured,
    are in docs/benchmarks.md ("Continuous training on random halves, and the
    blessing thresholds"):

    * Floors that only a broken model fails: a model that always answers "no"
      or one trained on shuffled tips falls below them, a good model scored on
      a small span's eval split does not. Floors close to a good model's level
      would refuse good models by chance.
    * The paired comparison with the served model, on the same eval rows: a
      candidate may not lose more than `max_auc_drop` AUC nor
      `max_accuracy_drop` accuracy against it. This is what refuses a model
      that is worse but not broken (one trained without `fare`); the cost is
      that two trainings of a good model can differ by about as much, so it
      refuses some good retrained models too.
    """

    min_auc: float = 0.92
    min_accuracy: float = 0.86
    max_auc_drop: float = 0.01
    max_accuracy_drop: float = 0.01


@dataclass(frozen=True)
class FeatureSelectionSettings:
    """How the feature-selection step decides which candidate columns the model uses."""

    min_presence: float = 0.05  # drop columns present in fewer rows than this
    # Bits a column must add beyond the strongest one, above what a shuffled
    # label gives by chance (docs/benchmarks.md "Feature selection stability").
    min_information: float = 0.008
    # ... and the added bits must beat all but this share of the label shuffles.
    significance: float = 0.01
    permutations: int = 100  # label shuffles of the permutation test
    max_rows: int = 200_000  # rows of the train split read to measure information


@dataclass(frozen=True)
class PipelineConfig:
    """Paths and settings for one pipeline instance."""

    data_root: str = str(PROJECT_ROOT / "data")
    output_dir: str = "outputs"
    schema_path: str = str(PROJECT_ROOT / "schema" / "schema.pbtxt")
    pipeline_name: str = PIPELINE_NAME
    train_steps: int = 2000
    eval_steps: int = 50
    hyperparameters: dict = field(default_factory=dict)
    thresholds: EvaluationThresholds = field(default_factory=EvaluationThresholds)
    selection: FeatureSelectionSettings = field(default_factory=FeatureSelectionSettings)
    beam_pipeline_args: tuple[str, ...] = ()
    # Statistics and Transform's analyzers read at most about this many rows
    # of a split (a uniform sample); 0 reads every row.
    sample_rows: int = SAMPLE_ROWS
    # Rows of the eval split the Evaluator scores (a uniform sample); 0: all.
    eval_rows: int = MAX_EVAL_ROWS
    # Hash buckets of ExampleGen's (train, eval) splits.
    split_buckets: tuple[int, int] = (4, 1)
    # Files CsvExampleGen reads under data_root: "*.csv" (CSV files at the root)
    # or "span-{SPAN}/*.csv" (the newest span-N/ folder).
    input_pattern: str = "*.csv"
    # Anomalies the validation gate lets through: "feature" or "feature:TYPE".
    allowed_anomalies: tuple[str, ...] = ()
    enable_cache: bool = True
    # Local runs keep ML Metadata in SQLite under output_dir; on Kubeflow the
    # cluster provides it, so the orchestrator's runner sets this to False.
    local_metadata: bool = True
    # Where the image's copy of the schema (schema_path) can be read at compile time, when
    # schema_path exists only inside the image: its digest re-imports a changed schema.
    schema_digest_path: str | None = None
    # "HOST:PORT/DB": keep ML Metadata in MySQL/MariaDB instead (credentials
    # from the environment, see metadata/store.py); None: SQLite under output_dir.
    metadata_mysql: str | None = None
    # Remote runs name these object-storage places (gs://...) directly; unset,
    # both follow output_dir as they always have for local runs.
    pipeline_root_path: str | None = None
    serving_base_path: str | None = None
    # Kubeflow: Trainer's train/eval steps become pipeline parameters that each
    # run may override. Local runs keep fixed values.
    runtime_parameters: bool = False
    # The label a pushed version gets in the live TF Serving config
    # (serving/rollout.py): "stable" (served to everyone) or "canary".
    push_as: str = "stable"
    # Seconds a running TF Serving gets to load a new version before the Pusher
    # moves the `stable` label onto it (two config polls and a load); 0 when no
    # server watches the folder. SERVING_SETTLE_SECONDS overrides the default.
    serving_settle_seconds: int = field(
        default_factory=lambda: int(os.environ.get("SERVING_SETTLE_SECONDS", "20")))

    @property
    def pipeline_root(self) -> str:
        return self.pipeline_root_path or os.path.join(self.output_dir, "pipeline_root")

    @property
    def metadata_path(self) -> str | None:
        """The SQLite file ML Metadata is kept in; None when it is not one: MySQL
        (`metadata_mysql`) or the cluster's own store (`local_metadata` False)."""
        if self.metadata_mysql or not self.local_metadata:
            return None
        return self.metadata_location

    @property
    def metadata_location(self):
        """The SQLite path, or the MySQL `ConnectionConfig`: see `metadata.store.location`."""
        from metadata import store  # loads ML Metadata; the CLI parses flags without it

        return store.location(self.output_dir, self.metadata_mysql)

    @property
    def serving_model_dir(self) -> str:
        """TF Serving base path for this model (models.contract.MODEL_NAME); versions are
        subfolders."""
        return self.serving_base_path or os.path.join(self.output_dir, "serving_model", MODEL_NAME)


def default_beam_args(input_bytes: int, cores: int | None = None) -> list[str]:
    """Direct-runner flags that follow the size of the CSV input (small: in memory)."""
    if input_bytes <= IN_MEMORY_MAX_BYTES:
        return ["--direct_running_mode=in_memory", "--direct_num_workers=1"]
    workers = cores or os.cpu_count() or 1
    return ["--direct_running_mode=multi_processing", f"--direct_num_workers={workers}"]


def config_to_json(config: PipelineConfig) -> str:
    """`config` as JSON text, for a process that compiles or runs the same pipeline."""
    import dataclasses
    import json

    return json.dumps(dataclasses.asdict(config), indent=2, sort_keys=True)


def config_from_json(text: str) -> PipelineConfig:
    """The `PipelineConfig` `config_to_json` wrote (tuples come back as tuples)."""
    import dataclasses
    import json

    data = json.loads(text)
    nested = {"thresholds": EvaluationThresholds, "selection": FeatureSelectionSettings}
    values = {}
    for f in dataclasses.fields(PipelineConfig):
        if f.name not in data:
            continue
        value = data[f.name]
        if f.name in nested:
            value = nested[f.name](**value)
        elif isinstance(value, list):
            value = tuple(value)
        values[f.name] = value
    return PipelineConfig(**values)
