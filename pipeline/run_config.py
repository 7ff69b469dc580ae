"""A run's `PipelineConfig` from a runner's options: checked before a run, unchecked for a DAG.

Every runner that runs the pipeline on this machine's files (local, Luigi,
Airflow) builds its configuration here. `checked_config` runs the preflight
first (readable CSV, a schema, a writable output folder, a reachable MySQL
store), so unusable input fails in one line before anything is written.
`dag_config` builds the same configuration without opening any file, socket or
database: an Airflow DAG file is parsed every few seconds by the scheduler, and
its checks belong in the DAG's first tasks (airflow_runner.py).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from metadata import store
from pipeline import preflight
from pipeline.configs import PipelineConfig, default_beam_args


def checked_config(args: argparse.Namespace) -> PipelineConfig:
    """The run's configuration, once its input and output pass the preflight checks.

    `preflight.InputError` (one line) when they do not; nothing is written then.
    """
    files, _ = preflight.check_data(args.data_root)
    preflight.check_schema(args.schema)
    check_metadata_store(args)
    preflight.check_output_dir(args.output_dir)
    return dag_config(args, input_bytes=sum(path.stat().st_size for path in files))


def check_metadata_store(args: argparse.Namespace) -> None:
    """A bad `--metadata-mysql` spec or an unreachable server stops the run before it writes."""
    metadata_mysql = getattr(args, "metadata_mysql", None)
    if metadata_mysql:
        try:
            store.check_reachable(store.location(args.output_dir, metadata_mysql))
        except (ValueError, store.MetadataConnectionError) as error:
            raise preflight.InputError(str(error)) from None


def dag_config(args: argparse.Namespace, input_bytes: int | None = None) -> PipelineConfig:
    """The configuration for `args`, with no check and nothing opened or written.

    It lists the data folder (which files ExampleGen reads, their sizes for the
    default Beam flags) but reads none of them; a missing folder gives the
    configuration of an empty one, which the preflight then refuses.
    """
    if input_bytes is None:
        input_bytes = _listed_bytes(args.data_root)
    data_root = Path(args.data_root)
    pattern = preflight.input_pattern(args.data_root) if data_root.is_dir() else (
        preflight.FLAT_PATTERN)
    return PipelineConfig(
        input_pattern=pattern,
        allowed_anomalies=tuple(args.allow_anomaly),
        data_root=os.path.abspath(args.data_root),
        output_dir=os.path.abspath(args.output_dir),
        schema_path=os.path.abspath(args.schema),
        train_steps=args.train_steps,
        eval_steps=args.eval_steps,
        sample_rows=args.sample_rows,
        enable_cache=not args.no_cache,
        beam_pipeline_args=tuple(args.beam_arg or default_beam_args(input_bytes)),
        metadata_mysql=getattr(args, "metadata_mysql", None),
        push_as=args.push_as,
        serving_settle_seconds=args.serving_settle_seconds,
    )


def _listed_bytes(data_root: str) -> int:
    """The size of the CSV files ExampleGen would read (from the listing), 0 if none."""
    try:
        return sum(path.stat().st_size for path in preflight.input_files(data_root))
    except (preflight.InputError, OSError):
        return 0
