"""Every runner's options come from one declaration: the same flag means the same thing in
every parser, and a runner's environment variables are read as its flags are."""

from __future__ import annotations

import argparse
import re

import pytest

import local_runner
from options import declared
from options.option import add_options
from pipeline import kubeflow
from tests.conftest import ROOT


def _actions(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {flag: action for action in parser._actions for flag in action.option_strings}


def test_a_flag_two_runners_take_is_parsed_the_same_way():
    local, kfp = _actions(local_runner.build_parser()), _actions(kubeflow.build_parser())
    shared = set(local) & set(kfp) - {"-h", "--help"}
    assert {"--data-root", "--train-steps", "--beam-arg", "--allow-anomaly", "--no-cache"} <= (
        shared)
    for flag in shared:
        a, b = local[flag], kfp[flag]
        assert (type(a), a.dest, a.type, a.metavar, a.choices) == (
            type(b), b.dest, b.type, b.metavar, b.choices), flag


def _parse(options, settings: dict[str, str], defaults=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(exit_on_error=False)
    add_options(parser, options, defaults, "TAXI_", settings.get)
    return parser.parse_args([])


def test_a_runners_variables_are_read_and_checked_as_its_flags():
    args = _parse(declared.LOCAL, {"TAXI_TRAIN_STEPS": "7", "TAXI_BEAM_ARGS": "--a=1 --b=2",
                                   "TAXI_NO_CACHE": "1", "TAXI_METADATA_MYSQL": "h:1/db"})
    assert (args.train_steps, args.beam_arg, args.no_cache, args.metadata_mysql) == (
        7, ["--a=1", "--b=2"], True, "h:1/db")
    assert _parse(declared.LOCAL, {"TAXI_NO_CACHE": "0"}).no_cache is False
    with pytest.raises(argparse.ArgumentError, match="invalid int value: 'x'") as error:
        _parse(declared.LOCAL, {"TAXI_TRAIN_STEPS": "x"})
    assert error.value.argument_name == "--train-steps"


def test_the_airflow_dag_file_documents_the_variables_it_reads():
    """airflow_runner.py reads TAXI_<OPTION> for each option of declared.AIRFLOW; its
    docstring's table (variable, flag) is that list."""
    text = (ROOT / "airflow_runner.py").read_text()
    table = dict(re.findall(r"^    (TAXI_\w+) +(--[\w-]+)", text, re.M))
    assert table == {o.env_name(declared.AIRFLOW_PREFIX): o.flag for o in declared.AIRFLOW}
