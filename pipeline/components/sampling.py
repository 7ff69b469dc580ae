"""StatisticsGen, Transform and the Trainer reading a uniform sample of a large split.

At 10 million rows StatisticsGen and Transform's analyzers spend most of a
run reading every row, although statistics and a vocabulary, mean or
variance from a million uniformly drawn rows are as good for what they are
used for (the validation gate, feature selection, scaling the inputs). Big
TFX deployments compute statistics on samples for this reason.

The sample costs nothing to draw: the streaming CsvExampleGen executor
(`pipeline/components/csv_example_gen.py`) sends every row to a random shard of its
split, so any set of shards is a uniform sample of the split. It marks its
output with `SHUFFLED_SHARDS_PROPERTY` and records each split's row count.
Above `sample_rows` rows in a split, these components read only as many of
its shards as give at least that many rows, chosen by a file-name glob (the
one kind of file selection TFX's readers accept), and so read less, decode
less and compute less.

Output of the stock executor (distributed Beam runners) carries no mark: its
shards are not known to be random, so everything is read there, as a cluster
should. `sample_rows=0` reads everything everywhere.

The Trainer and FeatureSelection read rows, not shards, into memory
(models/split_reader.py): a prefix of a marked split, a uniform draw from
every row of an unmarked one. Both kinds of reader decide from
`split_layout`; the Trainer's `run_fn` learns it from its executor here.

The statistics artifact records the fraction of each split that was read
under TFX's own `sample_rate_by_split` property, which the summary and the
report show.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict
from typing import Any

from tfx import types
from tfx.components.statistics_gen import executor as stock_statistics_executor
from tfx.components.trainer import component as stock_trainer
from tfx.components.trainer import executor as stock_trainer_executor
from tfx.components.transform import executor as stock_transform_executor
from tfx.components.util import examples_utils
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.dsl.io import fileio
from tfx.types import artifact_utils, standard_artifacts, standard_component_specs
from tfx.types.component_spec import ExecutionParameter
from tfx.utils import io_utils, json_utils

from models.split_reader import SPLIT_LAYOUTS_KEY, SplitLayout
from pipeline.components import tfx_internals
from pipeline.components.csv_example_gen import SHUFFLED_SHARDS_PROPERTY, SPLIT_ROWS_PROPERTY
from pipeline.components.csv_shuffle import SHARD_DIGITS

# On a statistics artifact (TFX's own name): {split name: fraction read}.
SAMPLE_RATE_PROPERTY = stock_statistics_executor.SAMPLE_RATE_BY_SPLIT_PROPERTY_NAME
SAMPLE_ROWS_KEY = "sample_rows"

def shard_glob(shards: int, fraction: float) -> tuple[str, int] | None:
    """A glob over a split's shard names matching at least `fraction` of its
    `shards`, and how many it matches; None when that is every shard.

    Of two kinds of glob, the one matching fewer shards: the first shards up
    to a round number (`*-0000[0-6]-of-*`: 7; `*-000[0-1]?-of-*`: 20;
    `*-00[0-2]??-of-*`: 300), at most twice as many as wanted however many
    shards there are; or the shards whose index ends in a digit below d
    (`*-????[0-2]-of-*`), about d/10 of them. Both are uniform samples
    because every shard is.
    """
    wanted = math.ceil(fraction * shards)
    if wanted >= shards or shards >= 10**SHARD_DIGITS:
        return None
    total = f"of-{shards:0{SHARD_DIGITS}d}"
    globs = []
    # The smallest power of ten `unit` with wanted <= 10 * unit: indices
    # 0 .. (d + 1) * unit - 1.
    unit = 10 ** max(0, math.ceil(math.log10(wanted / 10)))
    while wanted > 10 * unit:  # float rounding of the logarithm
        unit *= 10
    top = math.ceil(wanted / unit) - 1
    places = round(math.log10(unit))
    prefix = "0" * (SHARD_DIGITS - 1 - places)
    globs.append((f"*-{prefix}[0-{top}]{'?' * places}-{total}*", min(shards, (top + 1) * unit)))
    digits = math.ceil(10 * fraction)
    if digits < 10:
        matched = sum(1 for i in range(shards) if i % 10 < digits)
        globs.append((f"*-{'?' * (SHARD_DIGITS - 1)}[0-{digits - 1}]-{total}*", matched))
    pattern, matched = min(globs, key=lambda glob: glob[1])
    return None if matched >= shards else (pattern, matched)


def split_layout(examples: types.Artifact, split: str) -> SplitLayout:
    """How ExampleGen wrote `split`: in random order (the shuffled-shards mark
    of the streaming executor; the stock one sets none), and its row count
    when recorded. Every reader of a sample of a split decides from this."""
    rows = examples.get_json_value_custom_property(SPLIT_ROWS_PROPERTY) or {}
    shuffled = (examples.has_custom_property(SHUFFLED_SHARDS_PROPERTY)
                and examples.get_int_custom_property(SHUFFLED_SHARDS_PROPERTY) == 1)
    count = rows.get(split)  # a float after a trip through Kubeflow's metadata
    return SplitLayout(shuffled=shuffled, rows=None if count is None else int(count))


def split_sample(
    examples: types.Artifact, split: str, sample_rows: int
) -> tuple[str, float] | None:
    """(file pattern relative to the artifact, fraction of the split) for a
    sample of about `sample_rows` rows of `split`; None to read all of it."""
    layout = split_layout(examples, split)
    if sample_rows <= 0 or not layout.shuffled or (layout.rows or 0) <= sample_rows:
        return None
    split_dir = artifact_utils.get_split_uri([examples], split)
    shards = len(fileio.glob(io_utils.all_files_pattern(split_dir)))
    found = shard_glob(shards, sample_rows / layout.rows)
    if found is None:
        return None
    pattern, matched = found
    return os.path.join(os.path.relpath(split_dir, examples.uri), pattern), matched / shards


class StatisticsGenSpec(standard_component_specs.StatisticsGenSpec):
    PARAMETERS = {
        **standard_component_specs.StatisticsGenSpec.PARAMETERS,
        SAMPLE_ROWS_KEY: ExecutionParameter(type=int),
    }


class TransformSpec(standard_component_specs.TransformSpec):
    PARAMETERS = {
        **standard_component_specs.TransformSpec.PARAMETERS,
        SAMPLE_ROWS_KEY: ExecutionParameter(type=int),
    }


def split_samples(
    input_dict: dict[str, list[types.Artifact]], exec_properties: dict[str, Any]
) -> tuple[types.Artifact, dict[str, tuple[str, float] | None]]:
    """The input Examples, and each split's sample under the `sample_rows` setting."""
    examples = artifact_utils.get_single_instance(input_dict["examples"])
    rows = exec_properties.get(SAMPLE_ROWS_KEY) or 0
    splits = artifact_utils.decode_split_names(examples.split_names)
    return examples, {split: split_sample(examples, split, rows) for split in splits}


def sampled_patterns(
    examples: types.Artifact, samples: dict[str, tuple[str, float] | None]
) -> dict[str, str]:
    """{a split's full file pattern, as TFX builds it: its sample's} for sampled splits."""
    return {
        io_utils.all_files_pattern(artifact_utils.get_split_uri([examples], split)):
            os.path.join(examples.uri, sample[0])
        for split, sample in samples.items() if sample
    }


class StatisticsExecutor(stock_statistics_executor.Executor):
    """TFX's StatisticsGen executor, given only the sampled shards of large splits."""

    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        examples, samples = split_samples(input_dict, exec_properties)
        if not any(samples.values()):
            super().Do(input_dict, output_dict, exec_properties)
            return
        # A copy, so the custom patterns never reach the recorded input artifact.
        sampled = type(examples)()
        sampled.copy_from(examples)
        patterns = {
            split: sample[0] if sample else os.path.join(f"Split-{split}", "*")
            for split, sample in samples.items()
        }
        sampled.set_string_custom_property(
            *examples_utils.get_custom_split_patterns_key_and_property(patterns)
        )
        super().Do({**input_dict, "examples": [sampled]}, output_dict, exec_properties)
        statistics = artifact_utils.get_single_instance(output_dict["statistics"])
        statistics.set_json_value_custom_property(
            SAMPLE_RATE_PROPERTY,
            json_utils.dumps({s: sample[1] if sample else 1.0 for s, sample in samples.items()}),
        )


class TransformExecutor(stock_transform_executor.Executor):
    """TFX's Transform executor whose analyzers read only the sampled shards of
    large splits (the transform graph still applies to every row)."""

    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        examples, samples = split_samples(input_dict, exec_properties)
        substitutes = sampled_patterns(examples, samples)
        with tfx_internals.transform_analyze_paths(substitutes):
            super().Do(input_dict, output_dict, exec_properties)


class TrainerExecutor(stock_trainer_executor.GenericExecutor):
    """TFX's Trainer executor, telling `run_fn` how each split was written
    (in its custom_config), so that it reads a uniform sample of a large
    split whatever ExampleGen wrote it (models/split_reader.py)."""

    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        examples = artifact_utils.get_single_instance(
            input_dict[standard_component_specs.EXAMPLES_KEY])
        key = standard_component_specs.CUSTOM_CONFIG_KEY
        config = json_utils.loads(exec_properties.get(key) or "null") or {}
        config[SPLIT_LAYOUTS_KEY] = {
            split: asdict(split_layout(examples, split))
            for split in artifact_utils.decode_split_names(examples.split_names)
        }
        super().Do(input_dict, output_dict, {**exec_properties, key: json_utils.dumps(config)})


# The classes were named StatisticsGen and Transform; ML Metadata and every
# cache key know their nodes by those type names (tfx_internals.recorded_as).
@tfx_internals.recorded_as("pipeline.components.sampling.StatisticsGen")
class SampledStatisticsGen(base_beam_component.BaseBeamComponent):
    """TFX's StatisticsGen (its executor and outputs) on every split, reading a
    uniform sample of the shards of splits over `sample_rows` rows."""

    SPEC_CLASS = StatisticsGenSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(StatisticsExecutor)

    def __init__(self, examples: types.BaseChannel, sample_rows: int):
        super().__init__(spec=StatisticsGenSpec(
            examples=examples,
            exclude_splits=json_utils.dumps([]),
            statistics=types.Channel(type=standard_artifacts.ExampleStatistics),
            sample_rows=sample_rows,
        ))


@tfx_internals.recorded_as("pipeline.components.sampling.Transform")
class SampledTransform(base_beam_component.BaseBeamComponent):
    """TFX's Transform (its executor) as this pipeline uses it, its analyzers
    reading a uniform sample of the shards of splits over `sample_rows` rows.

    It writes no statistics (StatisticsGen already describes the raw data;
    Transform's pre- and post-transform statistics would cost a second and
    third pass over it) and no transformed examples (the Trainer applies the
    transform graph itself, in large batches, cheaper than writing a
    transformed copy of every example).
    """

    SPEC_CLASS = TransformSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(TransformExecutor)

    def __init__(
        self,
        examples: types.BaseChannel,
        schema: types.BaseChannel,
        preprocessing_fn: str,
        sample_rows: int,
    ):
        super().__init__(spec=TransformSpec(
            examples=examples,
            schema=schema,
            preprocessing_fn=preprocessing_fn,
            force_tf_compat_v1=0,
            transform_graph=types.Channel(type=standard_artifacts.TransformGraph),
            updated_analyzer_cache=types.Channel(type=standard_artifacts.TransformCache),
            custom_config=json_utils.dumps(None),
            disable_statistics=1,
            sample_rows=sample_rows,
        ))


class SampledTrainer(stock_trainer.Trainer):
    """TFX's Trainer (its parameters and outputs) whose `run_fn` reads a
    uniform sample of each split, as a prefix only of a shuffled split."""

    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(TrainerExecutor)
