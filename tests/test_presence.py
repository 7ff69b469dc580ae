"""The 5 % presence rule on statistics TFDV computes from real CSV rows.

Our CsvExampleGen writes an empty CSV cell as a feature with an empty value
list. TFDV then counts that row in `num_non_missing` (the list is there) but
adds nothing to `tot_num_values`. These tests write real rows of the shipped
data with most `company` cells emptied through the executor, decode the
examples as StatisticsGen does and compute statistics with TFDV, then check
that the gate and feature selection both see the real share of rows with a
value (`metadata.artifacts.present_share`), not TFDV's "non-missing" count.
"""

from __future__ import annotations

import csv
import glob
from pathlib import Path

import numpy as np
import pytest

from metadata.artifacts import by_name, present_share
from pipeline.components import csv_columns, feature_selection, gate
from tests.conftest import DATA

ROWS = 200
WITH_COMPANY = 8  # 4 % of rows: below the 5 % bar
WITH_MILES = 100  # 50 %


@pytest.fixture(scope="module")
def statistics(tmp_path_factory):
    """TFDV statistics of real shipped rows, `company` and `trip_miles` mostly emptied."""
    import tensorflow as tf
    from tensorflow_data_validation import StatsOptions
    from tensorflow_data_validation.statistics import stats_impl
    from tfx_bsl.coders import example_coder

    folder = tmp_path_factory.mktemp("presence")
    with open(DATA / "data.csv", newline="") as f:
        reader = csv.DictReader(f)
        rows = [row for _, row in zip(range(ROWS), reader, strict=False)]
        header = reader.fieldnames
    for i, row in enumerate(rows):
        if i >= WITH_COMPANY:
            row["company"] = ""
        if i >= WITH_MILES:
            row["trip_miles"] = ""
    for i in range(WITH_COMPANY):
        rows[i]["company"] = rows[i]["company"] or "Acme"
    source = folder / "rows.csv"
    with open(source, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)
    out = folder / "examples"
    assert csv_columns.convert([str(source)], [str(out)], np.array([1])) == [ROWS]
    records = [record.numpy() for path in sorted(glob.glob(str(out / "*")))
               for record in tf.data.TFRecordDataset(path, compression_type="GZIP")]
    batch = example_coder.ExamplesToRecordBatchDecoder().DecodeBatch(records)
    return stats_impl.generate_statistics_in_memory(batch, StatsOptions())


def _common(feature):
    kind = feature.string_stats if feature.HasField("string_stats") else feature.num_stats
    return kind.common_stats


def test_tfdv_counts_an_empty_cell_as_non_missing_but_not_as_a_value(statistics):
    company = by_name(statistics.datasets[0])["company"]
    assert _common(company).num_non_missing == ROWS, "why num_non_missing cannot be used"
    assert _common(company).tot_num_values == WITH_COMPANY
    assert present_share(company, ROWS) == pytest.approx(WITH_COMPANY / ROWS)
    miles = by_name(statistics.datasets[0])["trip_miles"]
    assert present_share(miles, ROWS) == pytest.approx(WITH_MILES / ROWS)


def test_the_gate_refuses_the_column_below_the_schemas_presence(statistics):
    from tensorflow_metadata.proto.v0 import schema_pb2

    schema = schema_pb2.Schema()
    for name in ("company", "trip_miles", "fare"):
        feature = schema.feature.add(name=name)
        feature.presence.min_fraction = 0.05
    found = gate.presence_findings(statistics, schema, "train")
    assert [(f["feature"], f["type"]) for f in found] == [("company", "LOW_PRESENCE")]
    assert "has a value in 4.0% of rows" in found[0]["description"]


def test_feature_selection_drops_the_column_present_in_under_5_percent(statistics):
    decisions = {d.feature: d for d in feature_selection.decide(
        statistics.datasets[0], None, min_presence=0.05, min_information=0.008)}
    assert not decisions["company"].selected
    assert decisions["company"].reason == "present in 4.0% of rows (< 5%)"
    assert decisions["trip_miles"].presence == pytest.approx(0.5)
    assert decisions["fare"].presence == 1.0


def test_gate_and_selection_share_one_definition():
    """Both rules read presence through metadata.artifacts.present_share, nowhere else."""
    root = Path(__file__).resolve().parent.parent
    for module in ("pipeline/components/gate.py", "pipeline/components/feature_selection.py",
                   "pipeline/components/drift.py", "review/report/sections.py"):
        text = (root / module).read_text()
        assert "present_share" in text, module
        assert "num_non_missing /" not in text and "tot_num_values /" not in text, module
