"""Run the whole pipeline on this machine: `python local_runner.py --help`."""

from __future__ import annotations

import argparse
import sys
import time


def build_parser(description: str = "Run the Chicago Taxi TFX pipeline locally with Beam's "
                                    "direct runner.") -> argparse.ArgumentParser:
    """The local run's options (options/declared.py); the Luigi runner and the Airflow DAG
    file read the same ones."""
    from options import declared
    from options.option import add_options, config_defaults
    from pipeline.configs import PipelineConfig

    parser = argparse.ArgumentParser(description=description)
    add_options(parser, declared.LOCAL, config_defaults(declared.LOCAL, PipelineConfig()))
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.time()
    from local import run

    return notify_outcome(args, run.run_locally(args, started))


def notify_outcome(args: argparse.Namespace, code: int) -> int:
    """Post the run's outcome to `--notify-webhook` (never changes the exit status)."""
    if args.notify_webhook:
        from metadata import store
        from monitoring import notify

        where = store.location(args.output_dir, args.metadata_mysql)
        notify.send(args.notify_webhook,
                    notify.run_payload(args.output_dir, where, code, getattr(args, "failure", "")))
    return code


if __name__ == "__main__":
    sys.exit(main())
