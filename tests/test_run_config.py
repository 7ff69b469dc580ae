"""A run's configuration from a runner's options: checked before a run, unchecked for a DAG,
and where its ML Metadata lives."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import local_runner
from metadata import store
from pipeline import preflight, run_config
from pipeline.configs import PipelineConfig
from tests.conftest import DATA


def _args(*argv: str):
    return local_runner.parse_args(list(argv))


def test_the_checked_and_the_dag_config_are_the_same_for_usable_input(tmp_path: Path):
    args = _args("--data-root", str(DATA), "--output-dir", str(tmp_path / "out"))
    assert run_config.dag_config(args) == run_config.checked_config(args)


def test_the_dag_config_checks_and_writes_nothing(tmp_path: Path):
    output = tmp_path / "out"
    args = _args("--data-root", str(tmp_path / "missing"), "--output-dir", str(output))
    config = run_config.dag_config(args)
    assert config.input_pattern == preflight.FLAT_PATTERN
    assert config.beam_pipeline_args == ("--direct_running_mode=in_memory",
                                         "--direct_num_workers=1")
    assert not output.exists()
    with pytest.raises(preflight.InputError, match="data folder not found"):
        run_config.checked_config(args)
    assert not output.exists()


def test_the_dag_config_reads_the_span_layout_from_the_listing(tmp_path: Path):
    (tmp_path / "span-3").mkdir()
    shutil.copy(DATA / "data.csv", tmp_path / "span-3" / "data.csv")
    args = _args("--data-root", str(tmp_path), "--output-dir", str(tmp_path / "out"))
    assert run_config.dag_config(args).input_pattern == preflight.SPAN_PATTERN


def test_a_malformed_mysql_spec_is_a_one_line_input_error(tmp_path: Path):
    args = _args("--data-root", str(DATA), "--output-dir", str(tmp_path),
                 "--metadata-mysql", "localhost/mlmd")
    with pytest.raises(preflight.InputError, match="wants HOST:PORT/DATABASE"):
        run_config.checked_config(args)


def test_metadata_path_is_the_sqlite_file_only_when_ml_metadata_is_one(tmp_path: Path):
    local = PipelineConfig(output_dir=str(tmp_path))
    assert local.metadata_path == str(tmp_path / store.SQLITE_FILENAME) == local.metadata_location
    mysql = PipelineConfig(output_dir=str(tmp_path), metadata_mysql="db.example:3306/mlmd")
    assert mysql.metadata_path is None
    assert store.describe(mysql.metadata_location) == "mysql://db.example:3306/mlmd"
    assert PipelineConfig(output_dir="gs://b/root", local_metadata=False).metadata_path is None
