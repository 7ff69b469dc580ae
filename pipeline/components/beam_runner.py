"""Whether a component's Beam flags run it on this machine or on a cluster.

The streaming CsvExampleGen (csv_example_gen.py) and the skipped TFX sdist
(tfx_internals.py) both decide by it, so they cannot disagree on a flag such
as `--runner=DirectRunner`.
"""

from __future__ import annotations

from collections.abc import Iterable

from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

# Beam's runners that run on this machine.
LOCAL_RUNNERS = frozenset(
    {"direct", "directrunner", "bundlebaseddirectrunner", "switchingdirectrunner"}
)


def is_local_runner(beam_pipeline_args: Iterable[str]) -> bool:
    """Whether the Beam flags run pipelines on this machine (no `--runner`, or a
    direct runner) rather than on a cluster."""
    runner = PipelineOptions(list(beam_pipeline_args)).view_as(StandardOptions).runner
    if runner is None:
        return True
    name = runner if isinstance(runner, str) else type(runner).__name__
    return name.rsplit(".", 1)[-1].lower() in LOCAL_RUNNERS
