"""Airflow DAG file: the same pipeline as local_runner.py, one Airflow task per TFX component.

Put this file (or a symlink to it) in Airflow's dags folder; see the README's
"Run it on Airflow". Settings come from Airflow Variables, else environment
variables of the same name, else local_runner.py's defaults:

    TAXI_DATA_ROOT       --data-root       CSV files (default: the repo's data/)
    TAXI_OUTPUT_DIR      --output-dir      artifacts, ML Metadata, served model (default: outputs/)
    TAXI_SCHEMA          --schema          curated schema (default: schema/schema.pbtxt)
    TAXI_TRAIN_STEPS     --train-steps     training steps (default: 2000)
    TAXI_EVAL_STEPS      --eval-steps      eval batches for the training curve (default: 50)
    TAXI_SAMPLE_ROWS     --sample-rows     rows of a split statistics and Transform read
                                           (default: 500000; 0: every row)
    TAXI_METADATA_MYSQL  --metadata-mysql  HOST:PORT/DB for ML Metadata (default: SQLite
                                           under the output folder); MLMD_MYSQL_USER and
                                           MLMD_MYSQL_PASSWORD from the workers' environment
    TAXI_SCHEDULE        the DAG's schedule, e.g. @daily (default: none, trigger by hand)
    TAXI_NOTIFY_WEBHOOK  --notify-webhook  post each run's outcome (Slack-compatible JSON) to
                                           this URL; write its secret part as ${ENV_VAR}

Relative paths are taken from this repository's folder: Airflow's working
directory is not the repository's. The settings are read and checked by the
same code as the local runner's flags, so a bad setting shows as this DAG's
import error with the runner's one-line message.
"""

from __future__ import annotations

import datetime
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent  # the repository, also when linked from a dags folder
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from airflow.models import Variable  # noqa: E402
from tfx.orchestration.airflow.airflow_dag_runner import (  # noqa: E402
    AirflowDagRunner,
    AirflowPipelineConfig,
)

import local_runner  # noqa: E402
from local import run  # noqa: E402
from pipeline.components import tfx_internals  # noqa: E402
from pipeline.pipeline import create_pipeline  # noqa: E402

# Airflow Variable / environment variable -> local_runner.py flag.
FLAGS = {
    "TAXI_DATA_ROOT": "--data-root",
    "TAXI_OUTPUT_DIR": "--output-dir",
    "TAXI_SCHEMA": "--schema",
    "TAXI_TRAIN_STEPS": "--train-steps",
    "TAXI_EVAL_STEPS": "--eval-steps",
    "TAXI_SAMPLE_ROWS": "--sample-rows",
    "TAXI_METADATA_MYSQL": "--metadata-mysql",
}
PATH_SETTINGS = {"TAXI_DATA_ROOT", "TAXI_OUTPUT_DIR", "TAXI_SCHEMA"}
SCHEDULE = "TAXI_SCHEDULE"
NOTIFY = "TAXI_NOTIFY_WEBHOOK"
# Only a reference point for the schedule; catchup=False never back-fills from it.
START_DATE = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)


def setting(name: str) -> str | None:
    """An Airflow Variable, else the environment variable of the same name."""
    value = Variable.get(name, default_var=None)
    return value if value not in (None, "") else os.environ.get(name) or None


def runner_argv() -> list[str]:
    """local_runner.py's command line for the current settings."""
    argv = ["--output-dir", str(ROOT / "outputs")]  # the local default, anchored to the repo
    for name, flag in FLAGS.items():
        value = setting(name)
        if value is not None:
            if name in PATH_SETTINGS:
                value = str(ROOT / value)  # an absolute value stays as it is
            argv += [flag, value]
    return argv


def notify_on_result(context: dict) -> None:
    """Airflow callback (a failed task's, and the DAG's on success): post the run's outcome
    to TAXI_NOTIFY_WEBHOOK as local_runner.py --notify-webhook does; never fails the run."""
    url = setting(NOTIFY)
    if not url:
        return
    from metadata import store
    from monitoring import notify

    args = local_runner.parse_args(runner_argv())
    notify.airflow_result(context, url, args.output_dir,
                          store.location(args.output_dir, args.metadata_mysql))


def build_dag():
    """The Airflow DAG of `create_pipeline` for the current settings."""
    config = run.config_from_args(local_runner.parse_args(runner_argv()))
    dag_config = {
        "schedule": setting(SCHEDULE),
        "start_date": START_DATE,
        "catchup": False,
        "max_active_runs": 1,  # two runs at once would race on the same output folder
        "on_success_callback": notify_on_result,
        "default_args": {"on_failure_callback": notify_on_result},  # the failing task's error
    }
    # Each task's launch builds no TFX sdist for a local Beam runner (tfx_internals).
    launchers = tfx_internals.airflow_launcher_classes()
    return AirflowDagRunner(AirflowPipelineConfig(
        airflow_dag_config=dag_config, supported_launcher_classes=launchers
    )).run(create_pipeline(config))


DAG = build_dag()
