"""Every option of the runners, declared once; each runner's list of the ones it takes.

A runner builds its parser from its list (`add_options`), with PipelineConfig's
defaults (`field`) and, where it reads settings from its environment, a prefix:
Kubeflow's `KFP_*`, the Airflow DAG file's `TAXI_*` (`AIRFLOW`). An option's
meaning is the same everywhere; where a runner's default differs (Kubeflow's
schema is inside the image), its list says so with `.but(...)`.
"""

from __future__ import annotations

import argparse

from metadata import store
from options.option import Option, add_options

# ---------------------------------------------------------------------- what the pipeline reads

DATA_ROOT = Option("--data-root", "folder of CSV files to train on (default: the repo's data/)",
                   field="data_root")
OUTPUT_DIR = Option("--output-dir", "where artifacts, ML Metadata and the served model go "
                    "(default: ./outputs)", field="output_dir")
SCHEMA = Option("--schema", "curated schema (default: schema/schema.pbtxt)", field="schema_path")
TRAIN_STEPS = Option("--train-steps", "training steps (default: %(default)s)", type=int,
                     field="train_steps")
EVAL_STEPS = Option("--eval-steps", "eval-split batches scored for the training curve "
                    "(default: %(default)s)", type=int, field="eval_steps")
SAMPLE_ROWS = Option("--sample-rows", "rows of a split StatisticsGen and Transform's analyzers "
                     "read; larger splits are read as a uniform sample, 0 reads every row "
                     "(default: %(default)s)", type=int, field="sample_rows")
NO_CACHE = Option("--no-cache", "re-run every component even if its inputs are unchanged",
                  kind="switch")
BEAM_ARG = Option("--beam-arg", "a Beam pipeline flag, repeatable (default: follows the data "
                  "size, e.g. --direct_running_mode=in_memory)", kind="append", metavar="FLAG",
                  env="BEAM_ARGS")
ALLOW_ANOMALY = Option("--allow-anomaly", "let the validation gate pass this anomaly (a "
                       "feature, or feature:ANOMALY_TYPE as printed by the gate); repeatable",
                       kind="append", metavar="FEATURE[:TYPE]", env="ALLOW_ANOMALIES")
PUSH_AS = Option("--push-as", "label a pushed model gets in the live TF Serving config: stable "
                 "(served to everyone) or canary (default: %(default)s)",
                 choices=("stable", "canary"), field="push_as")
SERVING_SETTLE_SECONDS = Option(
    "--serving-settle-seconds", "seconds a running TF Serving gets to load a new version before "
    "the stable label moves to it (default: %(default)s)", type=int,
    field="serving_settle_seconds")
METADATA_MYSQL = Option(
    "--metadata-mysql", f"keep ML Metadata in this MySQL/MariaDB database instead of "
    f"<output-dir>/{store.SQLITE_FILENAME}; user and password from ${store.USER_ENV} "
    f"(default {store.DEFAULT_USER}) and ${store.PASSWORD_ENV}; TLS with the CA file "
    f"${store.SSL_CA_ENV}", metavar="HOST:PORT/DB")

# ---------------------------------------------------------------------- how a local run goes

FROM_NODE = Option("--from", "run only from this node on (e.g. Trainer), on what the latest "
                   "earlier run recorded for the nodes before it", metavar="NODE",
                   dest="from_node")
TO_NODE = Option("--to", "run only up to this node (e.g. Evaluator)", metavar="NODE",
                 dest="to_node")
NOTIFY_WEBHOOK = Option("--notify-webhook", "post the run's outcome as Slack-compatible JSON; "
                        "write a secret part as ${ENV_VAR} (read from the environment, never "
                        "printed)", metavar="URL")
VERBOSE = Option("--verbose", "show TensorFlow, Beam and absl output on the terminal instead "
                 "of writing it to <output-dir>/logs/", kind="switch")

# The local runner's options; the Luigi runner takes them too (and adds its own).
LOCAL = (DATA_ROOT, OUTPUT_DIR, SCHEMA, TRAIN_STEPS, EVAL_STEPS, SAMPLE_ROWS, NO_CACHE, BEAM_ARG,
         ALLOW_ANOMALY, FROM_NODE, TO_NODE, PUSH_AS, SERVING_SETTLE_SECONDS, METADATA_MYSQL,
         NOTIFY_WEBHOOK, VERBOSE)
# The Luigi runner's own, after the local runner's.
LUIGI = (
    Option("--workers", "Luigi workers, i.e. nodes run at once (default: %(default)s; more "
           "than one needs --metadata-mysql)", type=int),
    Option("--scheduler-url", "a central Luigi scheduler (luigid), e.g. http://localhost:8082/ "
           "(default: Luigi's local scheduler in this process)", metavar="URL"),
)
# What the Airflow DAG file reads as TAXI_<NAME> (an Airflow Variable, else the environment).
AIRFLOW = (DATA_ROOT, OUTPUT_DIR, SCHEMA, TRAIN_STEPS, EVAL_STEPS, SAMPLE_ROWS, METADATA_MYSQL,
           NOTIFY_WEBHOOK)
AIRFLOW_PREFIX = "TAXI_"
# Options whose relative paths the Airflow DAG file takes from the repository's folder.
PATHS = (DATA_ROOT.name, OUTPUT_DIR.name, SCHEMA.name)


# ---------------------------------------------------------------------- Kubeflow / Vertex AI

PIPELINE_ROOT = Option("--pipeline-root", "object-storage folder for every artifact, e.g. "
                       "gs://BUCKET/root (required)")
IMAGE = Option("--image", "pipeline image every component runs in, e.g. REGISTRY/IMAGE:TAG, "
               "built from Dockerfile (required)")
SERVING_BASE = Option("--serving-base", "TF Serving base path the blessed model is pushed to, "
                      "one subfolder per version (default: PIPELINE_ROOT/serving_model/"
                      "chicago_taxi)")
PIPELINE_NAME = Option("--pipeline-name", "pipeline name (default: %(default)s)")
HOST = Option("--host", "Kubeflow Pipelines endpoint, e.g. http://localhost:8080 after "
              "`kubectl port-forward`")
TOKEN = Option("--token", "bearer token for a Kubeflow Pipelines endpoint behind "
               "authentication (prefer the variable: a flag shows in the process list)")
NAMESPACE = Option("--namespace", "Kubeflow profile namespace on a multi-user deployment")
EXPERIMENT = Option("--experiment", "Kubeflow Pipelines experiment (default: %(default)s)")
PROJECT = Option("--project", "Google Cloud project for Vertex AI", env="=GOOGLE_CLOUD_PROJECT")
REGION = Option("--region", "Vertex AI region, e.g. us-central1", env="=GOOGLE_CLOUD_REGION")
SERVICE_ACCOUNT = Option("--service-account", "service account the Vertex AI run acts as "
                         "(default: the project's Compute Engine default)",
                         env="=VERTEX_SERVICE_ACCOUNT")
KUBEFLOW_PREFIX = "KFP_"


def add_metadata_option(parser: argparse.ArgumentParser) -> None:
    """`--metadata-mysql HOST:PORT/DB`, on every command that opens ML Metadata."""
    add_options(parser, [METADATA_MYSQL])


def metadata_location(args: argparse.Namespace) -> store.Location:
    """The store named by `--output-dir` / `--metadata-mysql`; ValueError on a malformed spec."""
    return store.location(args.output_dir, getattr(args, "metadata_mysql", None))
