"""One option, declared once, and the argparse parser built from a list of them.

An `Option` says what a setting is (flag, type, kind, help); `add_options`
puts a list of them on a parser with the defaults a runner gives, and, for a
runner read from its environment (Kubeflow's `KFP_*`, the Airflow DAG file's
`TAXI_*`), with each option's environment variable as its default. argparse
checks such a value as it checks the flag (`type=int` turns `KFP_TRAIN_STEPS=x`
into the same one-line `error:` as `--train-steps x`).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

Lookup = Callable[[str], "str | None"]
# Values of an on/off option's environment variable that mean "off".
OFF = ("", "0", "false")


@dataclass(frozen=True)
class Option:
    """A command-line option as every runner that takes it reads it.

    `kind`: "value" (one value, of `type`), "append" (repeatable; from the
    environment, space-separated words) or "switch" (on when given).
    `field`: the PipelineConfig field whose value is its default, if any.
    `env`: its environment variable's name after the runner's prefix (default:
    the dest in capitals), or a full name starting with "=" (e.g.
    "=GOOGLE_CLOUD_PROJECT"); `env=None` on a switch read from no variable.
    """

    flag: str
    help: str
    kind: Literal["value", "append", "switch"] = "value"
    type: Callable[[str], Any] | None = None
    metavar: str | None = None
    dest: str | None = None
    choices: tuple[str, ...] | None = None
    field: str | None = None
    env: str | None = ""

    @property
    def name(self) -> str:
        """The attribute of the parsed arguments."""
        return self.dest or self.flag.lstrip("-").replace("-", "_")

    def env_name(self, prefix: str) -> str | None:
        """Its environment variable for a runner whose variables start with `prefix`."""
        if self.env is None:
            return None
        if self.env.startswith("="):
            return self.env[1:]
        return prefix + (self.env or self.name.upper())

    def but(self, **changes: Any) -> Option:
        """The same option with another help text, default field, ... for one runner."""
        return dataclasses.replace(self, **changes)


def env_value(option: Option, raw: str) -> Any:
    """An environment variable's text as the option's default (argparse applies `type`)."""
    if option.kind == "append":
        return shlex.split(raw)
    if option.kind == "switch":
        return raw.strip().lower() not in OFF
    return raw


def add_options(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    options: Iterable[Option],
    defaults: Mapping[str, Any] | None = None,
    env_prefix: str | None = None,
    lookup: Lookup = os.environ.get,
) -> None:
    """Put `options` on `parser`: defaults by option name from `defaults`, and, with an
    `env_prefix`, each option's environment variable (read with `lookup`) over them."""
    defaults = defaults or {}
    for option in options:
        default = defaults.get(option.name, [] if option.kind == "append" else None)
        if option.kind == "switch":
            default = bool(default)
        text = option.help
        variable = option.env_name(env_prefix) if env_prefix is not None else None
        if variable:
            raw = lookup(variable)
            if raw not in (None, ""):
                default = env_value(option, raw)
            text += f" [env {variable}" + (
                ", space-separated]" if option.kind == "append" else
                "=1]" if option.kind == "switch" else "]")
        kwargs: dict[str, Any] = {"default": default, "help": text}
        if option.dest:
            kwargs["dest"] = option.dest
        if option.kind == "switch":
            kwargs["action"] = "store_true"
        else:
            kwargs.update(metavar=option.metavar, choices=option.choices, type=option.type)
            if option.kind == "append":
                kwargs["action"] = "append"
        parser.add_argument(option.flag, **kwargs)


def config_defaults(options: Iterable[Option], config: Any) -> dict[str, Any]:
    """Each option's default taken from the `config` (a PipelineConfig) field it names."""
    return {o.name: getattr(config, o.field) for o in options if o.field}
