"""Airflow DAG file: the same pipeline as local_runner.py, one Airflow task per TFX component.

Put this file (or a symlink to it) in Airflow's dags folder; see the README's
"Run it on Airflow". Settings come from Airflow Variables, else environment
variables of the same name, else local_runner.py's defaults: `TAXI_<OPTION>`
for each option of `options.declared.AIRFLOW` (`python local_runner.py --help`
says what each does and its default), plus the DAG's schedule:

    TAXI_DATA_ROOT       --data-root       CSV files
    TAXI_OUTPUT_DIR      --output-dir      artifacts, ML Metadata, served model
    TAXI_SCHEMA          --schema          curated schema
    TAXI_TRAIN_STEPS     --train-steps     training steps
    TAXI_EVAL_STEPS      --eval-steps      eval batches for the training curve
    TAXI_SAMPLE_ROWS     --sample-rows     rows of a split statistics and Transform read
    TAXI_METADATA_MYSQL  --metadata-mysql  HOST:PORT/DB for ML Metadata; MLMD_MYSQL_USER and
                                           MLMD_MYSQL_PASSWORD from the workers' environment
    TAXI_NOTIFY_WEBHOOK  --notify-webhook  post each run's outcome (Slack-compatible JSON) to
                                           this URL; write its secret part as ${ENV_VAR}
    TAXI_SCHEDULE        the DAG's schedule, e.g. @daily (default: none, trigger by hand)

Relative paths are taken from this repository's folder: Airflow's working
directory is not the repository's. The settings are read by the same code as
the local runner's flags, so a malformed setting (e.g. a number that is not
one) shows as this DAG's import error, one line naming the variable.

Airflow parses this file every `min_file_process_interval` (30 s by default),
within `dagbag_import_timeout`: parsing only builds the DAG. It reads the
settings (Airflow Variables come from Airflow's own database), lists the data
folder and reads the schema (its digest is part of the DAG), but opens no data
file, writes nothing and connects to no ML Metadata store. The checks a local run
makes before it starts (readable CSV, a schema, a writable output folder, a
reachable MySQL store) run when the DAG's first tasks start (`before_task`), and
fail them with the same one-line message.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent  # the repository, also when linked from a dags folder
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from airflow.exceptions import AirflowFailException  # noqa: E402
from airflow.models import Variable  # noqa: E402
from tfx.orchestration.airflow.airflow_dag_runner import (  # noqa: E402
    AirflowDagRunner,
    AirflowPipelineConfig,
)

from options import declared  # noqa: E402
from options.option import add_options, config_defaults  # noqa: E402
from pipeline import preflight, run_config  # noqa: E402
from pipeline.components import tfx_internals  # noqa: E402
from pipeline.configs import PipelineConfig  # noqa: E402
from pipeline.pipeline import create_pipeline  # noqa: E402

SCHEDULE = "TAXI_SCHEDULE"
# Only a reference point for the schedule; catchup=False never back-fills from it.
START_DATE = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)


def setting(name: str) -> str | None:
    """An Airflow Variable, else the environment variable of the same name."""
    value = Variable.get(name, default_var=None)
    return value if value not in (None, "") else os.environ.get(name) or None


def settings() -> argparse.Namespace:
    """local_runner.py's options for the current settings; ValueError, one line naming the
    variable, for a malformed one."""
    defaults = config_defaults(declared.LOCAL, PipelineConfig())
    defaults[declared.OUTPUT_DIR.name] = str(ROOT / "outputs")  # the local default, here
    parser = argparse.ArgumentParser(prog=Path(__file__).name, exit_on_error=False)
    add_options(parser, declared.AIRFLOW, defaults, declared.AIRFLOW_PREFIX, setting)
    add_options(parser, [o for o in declared.LOCAL if o not in declared.AIRFLOW], defaults)
    try:
        args = parser.parse_args([])
    except argparse.ArgumentError as error:
        (option,) = [o for o in declared.AIRFLOW if o.flag == error.argument_name]
        raise ValueError(f"{option.env_name(declared.AIRFLOW_PREFIX)}: {error.message}") from None
    for name in declared.PATHS:
        setattr(args, name, str(ROOT / getattr(args, name)))  # an absolute path stays as it is
    return args


def notify_on_result(context: dict) -> None:
    """Airflow callback (a failed task's, and the DAG's on success): post the run's outcome
    to TAXI_NOTIFY_WEBHOOK as local_runner.py --notify-webhook does; never fails the run."""
    args = settings()
    if not args.notify_webhook:
        return
    from metadata import store
    from monitoring import notify

    notify.airflow_result(context, args.notify_webhook, args.output_dir,
                          store.location(args.output_dir, args.metadata_mysql))


def before_task(context: dict) -> None:
    """Airflow's pre-execute hook of every task, in the process that runs the task.

    The DAG's first tasks (those with no upstream task) check the input and
    output first: a run with unusable settings fails there, in one line, and
    nothing downstream runs.
    """
    args = settings()
    if not context["task"].upstream_task_ids:
        try:
            run_config.checked_config(args)
        except preflight.InputError as error:  # bad input: no retry helps
            raise AirflowFailException(str(error)) from None


def build_dag():
    """The Airflow DAG of `create_pipeline` for the current settings; reads no file."""
    config = run_config.dag_config(settings())
    dag_config = {
        "schedule": setting(SCHEDULE),
        "start_date": START_DATE,
        "catchup": False,
        "max_active_runs": 1,  # two runs at once would race on the same output folder
        "on_success_callback": notify_on_result,
        "default_args": {
            "on_failure_callback": notify_on_result,  # the failing task's error
            "pre_execute": before_task,
        },
    }
    # Each task's launch builds no TFX sdist for a local Beam runner (tfx_internals).
    launchers = tfx_internals.airflow_launcher_classes()
    return AirflowDagRunner(AirflowPipelineConfig(
        airflow_dag_config=dag_config, supported_launcher_classes=launchers
    )).run(create_pipeline(config))


DAG = build_dag()
