"""Feature selection: decide, from the data, which candidate columns the model uses.

Three rules, each explained in the recorded decision:
  * presence: a column present in fewer than `min_presence` of training rows is
    dropped (statistics from StatisticsGen);
  * variation: a column with a single distinct value carries nothing;
  * information: the most informative column about the label (the "anchor",
    payment_type on this data) is kept; every other column must add
    information about the label *given the anchor* (conditional mutual
    information of the binned column, missingness included, on up to
    `max_rows` training rows) that is above chance (a permutation test) and
    at least `min_information` bits above what chance gives (`InformationRule`).
    Columns that say little beyond the anchor only let a model overfit: on
    this data they cost AUC.

The decision is a `FeatureSelection` artifact (a JSON report, the selected
names as a custom property) in ML Metadata, plus a `Schema` artifact with the
dropped columns removed. Transform parses only the columns in that schema, so
a dropped column cannot reach the model. Label sources (`tips`, `fare`) always
stay in that schema because the label is computed from them.
"""


import json
import os
from dataclasses import asdict, dataclass

import numpy as np
import pyarrow as pa
import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2
from tfx import types
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact_utils, standard_artifacts
from tfx.utils import io_utils

from artifact_types import FeatureSelection
from metadata import names
from metadata.artifacts import common_stats, present_share
from models import features, split_reader
from pipeline.components import sampling

REPORT_FILE = names.SELECTION_REPORT_FILE  # read back by local.summary and the report
SCHEMA_FILE = "schema.pbtxt"
_NUMERIC_BINS = 16
_MAX_CATEGORIES = 64


@dataclass
class Decision:
    """The verdict on one candidate column."""

    feature: str
    selected: bool
    reason: str
    presence: float
    distinct_values: int
    information_bits: float | None = None  # I(column; label), Miller-Madow corrected
    # I(column; label | anchor) beyond chance: measured minus `chance_bits`.
    conditional_bits: float | None = None
    chance_bits: float | None = None  # its mean over label shuffles within the anchor
    p_value: float | None = None  # share of those shuffles that reach the measured value


def _presence_and_distinct(stats: statistics_pb2.FeatureNameStatistics, rows: int):
    """(share of rows with a value, 0/1/2 for none/one/several distinct values).

    Presence is the gate's definition (`metadata.artifacts.present_share`):
    TFDV's `num_non_missing` counts an empty CSV cell as present, since our
    ExampleGen writes it as an empty value list.
    """
    presence = present_share(stats, rows)
    if stats.HasField("string_stats"):
        distinct = stats.string_stats.unique
    else:
        num = stats.num_stats
        distinct = 0 if not common_stats(stats).tot_num_values else (
            1 if num.min == num.max else 2)
    return presence, distinct


def _codes(column: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Small integer codes for a column: quantile bins or top categories; 0 = missing."""
    codes = np.zeros(len(column), dtype=np.int64)
    values = column[present]
    if len(values) == 0:
        return codes
    if np.issubdtype(values.dtype, np.number):
        edges = np.unique(np.quantile(values.astype(float), np.linspace(0, 1, _NUMERIC_BINS + 1)))
        codes[present] = 1 + np.searchsorted(edges[1:-1], values.astype(float), side="right")
    else:
        uniques, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
        rank = np.argsort(-counts)
        top = np.full(len(uniques), _MAX_CATEGORIES + 1)
        top[rank[:_MAX_CATEGORIES]] = np.arange(1, min(len(uniques), _MAX_CATEGORIES) + 1)
        codes[present] = top[inverse]
    return codes


def mutual_information_bits(codes: np.ndarray, label: np.ndarray) -> float:
    """I(code; label) in bits with the Miller-Madow bias correction, floored at 0.

    Used only to pick the anchor, a column thousands of times above its bias.
    """
    n = len(label)
    if n == 0:
        return 0.0
    joint = np.zeros((codes.max() + 1, 2))
    np.add.at(joint, (codes, label.astype(np.int64)), 1)
    p = joint / n
    px, py = p.sum(1, keepdims=True), p.sum(0, keepdims=True)
    nz = p > 0
    mi = float((p[nz] * np.log2(p[nz] / (px @ py)[nz])).sum())
    cells = int(nz.sum()) - int((px > 0).sum()) - int((py > 0).sum()) + 1
    return max(0.0, mi - cells / (2 * n * np.log(2)))


def _dense(codes: np.ndarray) -> tuple[np.ndarray, int]:
    """Codes renumbered 0..k-1, and k."""
    values, inverse = np.unique(codes, return_inverse=True)
    return inverse.astype(np.int64), len(values)


def _plugin_cmi(cells: np.ndarray, label: np.ndarray, shape: tuple[int, int]) -> float:
    """Plug-in I(code; label | given) in bits; `cells` = given * n_codes + code."""
    given_n, codes_n = shape
    counts = np.bincount(cells * 2 + label, minlength=given_n * codes_n * 2)
    joint = counts.reshape(given_n, codes_n, 2).astype(float)
    p_gcy = joint / joint.sum()
    p_g = p_gcy.sum((1, 2), keepdims=True)
    p_gc = p_gcy.sum(2, keepdims=True)
    p_gy = p_gcy.sum(1, keepdims=True)
    nz = p_gcy > 0
    ratio = (p_gcy * p_g)[nz] / (p_gc * p_gy * np.ones_like(p_gcy))[nz]
    return float((p_gcy[nz] * np.log2(ratio)).sum())


def conditional_information_bits(
    codes: np.ndarray, label: np.ndarray, given: np.ndarray
) -> float:
    """Plug-in I(code; label | given) in bits: biased upward, see `InformationTest`."""
    codes, codes_n = _dense(codes)
    given, given_n = _dense(given)
    return _plugin_cmi(given * codes_n + codes, label.astype(np.int64), (given_n, codes_n))


@dataclass(frozen=True)
class Information:
    """What a column adds about the label beyond the anchor, against chance."""

    observed_bits: float  # plug-in I(column; label | anchor)
    chance_bits: float  # its mean when the label is shuffled within each anchor value
    p_value: float  # share of shuffles that reach the observed value (+1 smoothing)

    @property
    def excess_bits(self) -> float:
        """The bias-corrected estimate: observed minus what chance alone gives."""
        return self.observed_bits - self.chance_bits


class InformationTest:
    """A permutation null for I(column; label | anchor), shared by every column.

    The plug-in estimate is biased upward by about (cells - 1) / (2 N ln 2)
    bits, and the Miller-Madow correction undercounts it when the anchor's
    rarer values leave cells with a handful of rows: on a few thousand rows a
    column of many values clears a fixed bar by chance. Shuffling the label
    within each anchor value keeps everything but the column's link to the
    label, so the shuffled information is exactly what chance gives this
    column, at this sample size and cardinality. The shuffles (seeded: the
    same data gives the same decision) are drawn once and reused for every
    column, so the test costs `permutations` bincounts per column.
    """

    def __init__(self, label: np.ndarray, anchor: np.ndarray, permutations: int, seed: int = 0):
        self.label = label.astype(np.int64)
        self.anchor, self.anchor_n = _dense(anchor)
        rng = np.random.default_rng(seed)
        order = np.argsort(self.anchor, kind="stable")
        self.shuffled = []
        for _ in range(permutations):
            # Sorted by anchor, then randomly within each anchor value: the
            # same block structure as `order`, so this moves labels only
            # between rows that share an anchor value.
            within = np.lexsort((rng.random(len(self.label)), self.anchor))
            label = np.empty_like(self.label)
            label[order] = self.label[within]
            self.shuffled.append(label)

    def measure(self, codes: np.ndarray) -> Information:
        codes, codes_n = _dense(codes)
        cells = self.anchor * codes_n + codes
        shape = (self.anchor_n, codes_n)
        observed = _plugin_cmi(cells, self.label, shape)
        null = np.array([_plugin_cmi(cells, label, shape) for label in self.shuffled])
        p_value = (1 + int((null >= observed - 1e-12).sum())) / (1 + len(null))
        return Information(observed, float(null.mean()) if len(null) else 0.0, p_value)


def decide(
    statistics: statistics_pb2.DatasetFeatureStatistics,
    table: pa.Table | None,
    min_presence: float,
    min_information: float,
    permutations: int = 100,
    significance: float = 0.01,
) -> list[Decision]:
    """Apply the three rules to every candidate column (pure: easy to test)."""
    by_name = {f.path.step[0]: f for f in statistics.features}
    label = _label(table) if table is not None else None
    decisions: list[Decision] = []
    codes: dict[str, np.ndarray] = {}
    for name in features.CANDIDATE_FEATURES:
        if name not in by_name:
            decisions.append(Decision(name, False, "absent from the data", 0.0, 0))
            continue
        presence, distinct = _presence_and_distinct(by_name[name], statistics.num_examples)
        decision = Decision(name, True, "", presence, distinct)
        if presence < min_presence:
            decision.selected = False
            decision.reason = f"present in {presence:.1%} of rows (< {min_presence:.0%})"
        elif distinct < 2:
            decision.selected, decision.reason = False, "a single distinct value"
        elif label is not None and name in table.column_names:
            codes[name] = _codes(*_column(table, name))
            decision.information_bits = round(mutual_information_bits(codes[name], label), 5)
        decisions.append(decision)
    if codes:
        rule = InformationRule(min_information, permutations, significance)
        rule.apply(decisions, codes, label)
    for decision in decisions:
        if decision.selected and not decision.reason:
            decision.reason = "kept: present, varied and informative about the label"
    return decisions


@dataclass(frozen=True)
class InformationRule:
    """Keep a column when what it adds beyond the anchor is both real and large.

    Real: no more than `significance` of the label shuffles reach it (on few
    rows, chance alone gives a many-valued column several thousandths of a
    bit). Large: at least `min_information` bits above what chance gives (on
    many rows, tiny but real information passes any significance test, yet
    columns that add a few thousandths of a bit do not make a better model).
    """

    min_information: float
    permutations: int
    significance: float

    def apply(self, decisions: list[Decision], codes: dict, label: np.ndarray) -> None:
        measured = [d for d in decisions if d.feature in codes]
        anchor = max(measured, key=lambda d: d.information_bits)
        anchor.reason = (f"kept: the most informative column "
                         f"({anchor.information_bits:.4f} bits about the label)")
        test = InformationTest(label, codes[anchor.feature], self.permutations)
        for decision in measured:
            if decision is not anchor:
                self._judge(decision, test.measure(codes[decision.feature]), anchor.feature)

    def _judge(self, decision: Decision, info: Information, anchor: str) -> None:
        decision.conditional_bits = round(info.excess_bits, 5)
        decision.chance_bits = round(info.chance_bits, 5)
        decision.p_value = round(info.p_value, 4)
        adds = (f"adds {info.excess_bits:.4f} bits about the label beyond {anchor} "
                f"({info.observed_bits:.4f} measured, {info.chance_bits:.4f} by chance, "
                f"p = {info.p_value:.3f})")
        if info.p_value > self.significance:
            decision.selected = False
            decision.reason = f"{adds}: not above chance (p > {self.significance:g})"
        elif info.excess_bits < self.min_information:
            decision.selected = False
            decision.reason = f"{adds}: < {self.min_information:g}"
        else:
            decision.reason = f"kept: {adds}"


def _column(table: pa.Table, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Values (first of each list) and a presence mask, as numpy arrays."""
    lists = table.column(name).combine_chunks()
    lengths = np.asarray(lists.value_lengths().fill_null(0))
    present = lengths > 0
    flat = lists.flatten().to_numpy(zero_copy_only=False)
    starts = np.asarray(lists.offsets)[:-1][present]
    starts = starts - np.asarray(lists.offsets)[0]
    values = np.empty(len(present), dtype=flat.dtype)
    values[present] = flat[starts]
    return values, present


def _label(table: pa.Table) -> np.ndarray:
    tips, tips_present = _column(table, features.TIPS_KEY)
    fare, fare_present = _column(table, features.FARE_KEY)
    tips = np.where(tips_present, tips, 0.0).astype(float)
    fare = np.where(fare_present, fare, 0.0).astype(float)
    return (tips > features.BIG_TIP_FRACTION * fare).astype(np.int64)


def label_counts(table: pa.Table) -> dict[str, int]:
    """Rows of each label class among the rows measured ("1": big tippers).

    Recorded so that a run can say the label has a single class in the train
    split, where AUC cannot be measured, with counts computed from real rows.
    """
    positives = int(_label(table).sum())
    return {"1": positives, "0": table.num_rows - positives}


def _read_table(examples: types.Artifact, schema: schema_pb2.Schema, max_rows: int) -> pa.Table:
    """A uniform sample of about `max_rows` rows of the train split as an Arrow
    table: its first rows only where ExampleGen wrote them in random order
    (models/split_reader.py).

    Serialized records batched by tf.data and decoded by tfx_bsl's C++ decoder:
    twice as fast as TFXIO's RecordBatches on this data.
    """
    from tfx_bsl.coders import example_coder

    uri = artifact_utils.get_split_uri([examples], "train")
    records = split_reader.sample_records(
        [io_utils.all_files_pattern(uri)], max_rows, sampling.split_layout(examples, "train"))
    decoder = example_coder.ExamplesToRecordBatchDecoder(schema.SerializeToString())
    batches = [
        decoder.DecodeBatch(list(batch))
        for batch in records.batch(16384).as_numpy_iterator()
    ]
    if not batches:
        raise ValueError(f"no examples in the train split at {uri}")
    return pa.Table.from_batches(batches)


def selected_schema(schema: schema_pb2.Schema, decisions: list[Decision]) -> schema_pb2.Schema:
    """The curated schema reduced to the selected columns plus the label sources.

    Columns that are not candidates at all (e.g. the timestamp) go too: Transform
    should parse only what the model or the label needs.
    """
    keep = {d.feature for d in decisions if d.selected} | {features.TIPS_KEY, features.FARE_KEY}
    result = schema_pb2.Schema()
    result.CopyFrom(schema)
    del result.feature[:]
    result.feature.extend(f for f in schema.feature if f.name in keep)
    return result


@component
def FeatureSelectionComponent(  # noqa: N802 - TFX components are named like classes
    statistics: InputArtifact[standard_artifacts.ExampleStatistics],
    schema: InputArtifact[standard_artifacts.Schema],
    examples: InputArtifact[standard_artifacts.Examples],
    transform_schema: OutputArtifact[standard_artifacts.Schema],
    selection: OutputArtifact[FeatureSelection],
    min_presence: Parameter[float] = 0.05,
    min_information: Parameter[float] = 0.008,
    max_rows: Parameter[int] = 200_000,
    permutations: Parameter[int] = 100,
    significance: Parameter[float] = 0.01,
) -> None:
    """Pick the model's input columns from train-split statistics and rows."""
    curated = io_utils.SchemaReader().read(
        io_utils.get_only_uri_in_dir(schema.uri)
    )
    stats_list = tfdv.load_stats_binary(
        os.path.join(artifact_utils.get_split_uri([statistics], "train"), "FeatureStats.pb")
    )
    table = _read_table(examples, curated, max_rows)
    decisions = decide(stats_list.datasets[0], table, min_presence, min_information,
                       permutations, significance)
    io_utils.write_pbtxt_file(
        os.path.join(transform_schema.uri, SCHEMA_FILE), selected_schema(curated, decisions)
    )
    chosen = [d.feature for d in decisions if d.selected]
    report = {"selected": chosen, "rows_measured": table.num_rows,
              "rule": {"min_information": min_information, "significance": significance,
                       "permutations": permutations},
              "label_counts": label_counts(table),
              "decisions": [asdict(d) for d in decisions]}
    io_utils.write_string_file(
        os.path.join(selection.uri, REPORT_FILE), json.dumps(report, indent=2)
    )
    selection.set_string_custom_property("selected", ",".join(chosen))
    selection.set_int_custom_property("num_selected", len(chosen))
