"""Run TFX's own Chicago Taxi native-Keras example, as shipped, on chosen paths.

`python -m benchmarks.tfx_taxi --data-root D --output-dir O --module-file M --mode MODE`

The example (tfx/examples/chicago_taxi_pipeline/taxi_pipeline_native_keras.py)
takes its paths from module-level variables under $HOME, so this driver imports
it and calls its `_create_pipeline` with our paths instead. Everything else is
the example's own: its components, its module file, 1000 train steps, its Beam
flags (only the direct running mode is chosen, since the issue quotes both),
INFO logging as in its `__main__`. It runs under LocalDagRunner, like ours.

Nothing heavy is imported at module level: the benchmark imports this module
for `metadata_path` and `beam_args` without loading TFX.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

EXAMPLE_MODULE = "tfx.examples.chicago_taxi_pipeline.taxi_pipeline_native_keras"
MODULE_FILE_NAME = "taxi_utils_native_keras.py"
MODES = ("in_memory", "multi_processing")
SHIPPED_MODE = "multi_processing"  # the example's `_beam_pipeline_args` default


def metadata_path(output_dir: str) -> str:
    return os.path.join(output_dir, "metadata.db")


def pipeline_root(output_dir: str) -> str:
    return os.path.join(output_dir, "pipeline_root")


def serving_model_dir(output_dir: str) -> str:
    return os.path.join(output_dir, "serving_model")


def beam_args(shipped: Sequence[str], mode: str) -> list[str]:
    """The example's Beam flags with only `--direct_running_mode` set to `mode`."""
    if mode not in MODES:
        raise ValueError(f"unknown direct running mode {mode!r}; expected one of {MODES}")
    kept = [a for a in shipped if not a.startswith("--direct_running_mode")]
    return [f"--direct_running_mode={mode}", *kept]


def shipped_module_file() -> str:
    """Path of the example's module file inside the installed tfx package."""
    import importlib.util

    spec = importlib.util.find_spec(EXAMPLE_MODULE)
    if spec is None or spec.origin is None:
        raise ImportError(f"{EXAMPLE_MODULE} is not installed")
    return os.path.join(os.path.dirname(spec.origin), MODULE_FILE_NAME)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--module-file", default=None,
                        help="copy of taxi_utils_native_keras.py (default: the installed one)")
    parser.add_argument("--mode", choices=MODES, default=SHIPPED_MODE)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import absl.logging
    from tfx.examples.chicago_taxi_pipeline import taxi_pipeline_native_keras as example
    from tfx.orchestration.local.local_dag_runner import LocalDagRunner

    absl.logging.set_verbosity(absl.logging.INFO)  # as the example's __main__ does
    output_dir = os.path.abspath(args.output_dir)
    pipeline = example._create_pipeline(
        pipeline_name=example._pipeline_name,
        pipeline_root=pipeline_root(output_dir),
        data_root=os.path.abspath(args.data_root),
        module_file=os.path.abspath(args.module_file or shipped_module_file()),
        serving_model_dir=serving_model_dir(output_dir),
        metadata_path=metadata_path(output_dir),
        beam_pipeline_args=beam_args(example._beam_pipeline_args, args.mode),
    )
    LocalDagRunner().run(pipeline)
    return 0


if __name__ == "__main__":
    sys.exit(main())
