"""Run the whole pipeline on Luigi, one task per TFX node: `python luigi_runner.py --help`.

The local runner's options (same parser, preflight, lock, progress lines,
summary and report), plus Luigi's own: `--workers N` and `--scheduler-url URL`
for a central `luigid`. orchestrators/luigi_run.py does the work.
"""

from __future__ import annotations

import sys
import time

import local_runner
from options import declared
from options.option import add_options


def build_parser():
    parser = local_runner.build_parser(
        "Run the Chicago Taxi TFX pipeline on Luigi: one Luigi task per TFX node, each "
        "run by TFX's portable launcher in its own process."
    )
    add_options(parser, declared.LUIGI, {"workers": 1})
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    started = time.time()
    from orchestrators import luigi_run

    return local_runner.notify_outcome(args, luigi_run.run_with_luigi(args, started))


if __name__ == "__main__":
    sys.exit(main())
