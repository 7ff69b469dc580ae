"""Run the whole pipeline on this machine: `python local_runner.py --help`."""

from __future__ import annotations

import argparse
import sys
import time


def build_parser(description: str = "Run the Chicago Taxi TFX pipeline locally with Beam's "
                                    "direct runner.") -> argparse.ArgumentParser:
    """The local run's options; the Luigi runner and the Airflow DAG file read the same ones."""
    from pipeline.configs import PipelineConfig

    defaults = PipelineConfig()
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data-root", default=defaults.data_root,
                        help="folder of CSV files to train on (default: the repo's data/)")
    parser.add_argument("--output-dir", default=defaults.output_dir,
                        help="where artifacts, ML Metadata and the served model go "
                             "(default: ./outputs)")
    parser.add_argument("--schema", default=defaults.schema_path,
                        help="curated schema (default: schema/schema.pbtxt)")
    parser.add_argument("--train-steps", type=int, default=defaults.train_steps,
                        help="training steps (default: %(default)s)")
    parser.add_argument("--eval-steps", type=int, default=defaults.eval_steps,
                        help="eval-split batches scored for the training curve "
                             "(default: %(default)s)")
    parser.add_argument("--sample-rows", type=int, default=defaults.sample_rows,
                        help="rows of a split StatisticsGen and Transform's analyzers read; "
                             "larger splits are read as a uniform sample, 0 reads every row "
                             "(default: %(default)s)")
    parser.add_argument("--no-cache", action="store_true",
                        help="re-run every component even if its inputs are unchanged")
    parser.add_argument("--beam-arg", action="append", default=None, metavar="FLAG",
                        help="a Beam pipeline flag, repeatable (default: follows the data "
                             "size, e.g. --direct_running_mode=in_memory)")
    parser.add_argument("--allow-anomaly", action="append", default=[], metavar="FEATURE[:TYPE]",
                        help="let the validation gate pass this anomaly (a feature, or "
                             "feature:ANOMALY_TYPE as printed by the gate); repeatable")
    parser.add_argument("--from", dest="from_node", metavar="NODE",
                        help="run only from this node on (e.g. Trainer), on what the latest "
                             "earlier run recorded for the nodes before it")
    parser.add_argument("--to", dest="to_node", metavar="NODE",
                        help="run only up to this node (e.g. Evaluator)")
    parser.add_argument("--push-as", choices=("stable", "canary"), default=defaults.push_as,
                        help="label a pushed model gets in the live TF Serving config: stable "
                             "(served to everyone) or canary (default: %(default)s)")
    parser.add_argument("--serving-settle-seconds", type=int,
                        default=defaults.serving_settle_seconds,
                        help="seconds a running TF Serving gets to load a new version before "
                             "the stable label moves to it (default: %(default)s)")
    from metadata import store

    store.add_cli_option(parser)
    parser.add_argument("--notify-webhook", metavar="URL", default=None,
                        help="post the run's outcome as Slack-compatible JSON; write a secret "
                             "part as ${ENV_VAR} (read from the environment, never printed)")
    parser.add_argument("--verbose", action="store_true",
                        help="show TensorFlow, Beam and absl output on the terminal instead "
                             "of writing it to <output-dir>/logs/")
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
