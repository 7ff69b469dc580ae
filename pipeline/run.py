"""Run the pipeline with TFX's LocalDagRunner and print what happened."""

from __future__ import annotations

import argparse
import os
import sys
import time

from pipeline.configs import PipelineConfig, default_beam_args


class RunError(Exception):
    """A run cannot start or did not finish; its message is one readable line."""


def skip_tfx_sdist_for_direct_runner() -> None:
    """Stop TFX from building an sdist of itself before each Beam component.

    TFX hands Beam a freshly built `tfx_ephemeral` sdist (`--extra_package`) so
    that remote workers can import TFX. Beam's direct runner runs in this
    interpreter (or in local subprocesses of it) where TFX is already
    installed, so for local runs the sdist is pure cost.
    """
    from tfx.dsl.components.base import base_beam_executor
    from tfx.utils import dependency_utils

    def _unchanged(beam_pipeline_args: list[str]) -> list[str]:
        return beam_pipeline_args

    dependency_utils.make_beam_dependency_flags = _unchanged
    base_beam_executor.dependency_utils = dependency_utils


def config_from_args(args: argparse.Namespace) -> PipelineConfig:
    if not os.path.isdir(args.data_root):
        raise RunError(f"data folder not found: {args.data_root}")
    beam_args = args.beam_arg if args.beam_arg else default_beam_args(args.data_root)
    return PipelineConfig(
        data_root=os.path.abspath(args.data_root),
        output_dir=os.path.abspath(args.output_dir),
        schema_path=os.path.abspath(args.schema),
        train_steps=args.train_steps,
        eval_steps=args.eval_steps,
        enable_cache=not args.no_cache,
        beam_pipeline_args=tuple(beam_args),
    )


def format_summary(summary, total_seconds: float) -> str:
    lines = ["", "Run summary", "-----------"]
    for run in summary.components:
        lines.append(f"  {run.component:<32} {run.state:<7} {run.seconds:7.1f} s")
    lines.append(f"  {'total (wall clock)':<32} {'':<7} {total_seconds:7.1f} s")
    if summary.metrics:
        shown = ("auc", "binary_accuracy", "precision", "recall", "example_count")
        metrics = ", ".join(
            f"{name} {summary.metrics[name]:.4f}" if name != "example_count"
            else f"eval examples {int(summary.metrics[name])}"
            for name in shown if name in summary.metrics
        )
        lines.append(f"Evaluation: {metrics}")
    if summary.blessed is None:
        lines.append("Model: not evaluated")
    else:
        lines.append(f"Model: {'BLESSED' if summary.blessed else 'NOT blessed'}")
    if summary.pushed_path:
        lines.append(f"Pushed: {summary.pushed_path}")
    else:
        reason = "the model was not blessed" if summary.blessed is False else "no push happened"
        lines.append(f"Pushed: nothing ({reason})")
    return "\n".join(lines)


def run_locally(args: argparse.Namespace, started: float) -> int:
    """Run the pipeline for `args`; 0 when the run completed, 1 otherwise."""
    try:
        config = config_from_args(args)
        os.makedirs(config.output_dir, exist_ok=True)
        from tfx import v1 as tfx

        from pipeline import summary as run_summary
        from pipeline.pipeline import create_pipeline

        if not any(a.startswith("--runner") for a in config.beam_pipeline_args):
            skip_tfx_sdist_for_direct_runner()
        tfx.orchestration.LocalDagRunner().run(create_pipeline(config))
        summary = run_summary.summarize(config.metadata_path)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - the CLI turns any failure into one line
        message = str(error).strip().splitlines()[0] if str(error).strip() else ""
        print(f"error: {type(error).__name__}: {message}", file=sys.stderr)
        return 1
    print(format_summary(summary, time.time() - started))
    return 0
