"""CSV files as people actually have them (issue 12, part 1).

The shipped data re-saved the ways spreadsheets and exports save it: CRLF line
ends, columns in another order, rows split over several files, quoted
numbers, an empty last line, a UTF-8 byte-order mark, gzip; and data whose
label cannot be learned or computed (every trip paid in cash, no `tips`).

Fast checks test the code that reads the header (preflight, the serving
client) and the gate's advice; four real pipeline runs, each on a fresh
output folder, test that the files run to a pushed model or are refused, and
what the summary and the report then say.
"""

from __future__ import annotations

import csv
import gzip
import re
import shutil
from pathlib import Path

import pytest

from local import summary
from metadata.outcome import read_outcome
from pipeline import preflight
from pipeline.components import gate
from tests.conftest import DATA, PipelineRun, run_cli, run_pipeline

HEADER, *ROWS = list(csv.reader(open(DATA / "data.csv", newline="", encoding="utf-8")))
# Enough training to be blessed on the shipped rows, far fewer than the default.
TRAIN_STEPS = "300"
TIPS, FARE, PAYMENT = (HEADER.index(name) for name in ("tips", "fare", "payment_type"))


def write(path: Path, header: list[str], rows: list[list[str]], *, bom: bool = False,
          crlf: bool = False, quote_all: bool = False, empty_last_line: bool = False) -> Path:
    """`rows` under `header` as a CSV file saved the way an export would save it.

    `quote_all` quotes every cell, the header's names and numbers too.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    ending = "\r\n" if crlf else "\n"
    with open(path, "w", newline="", encoding="utf-8-sig" if bom else "utf-8") as f:
        quoting = csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL
        csv.writer(f, lineterminator=ending, quoting=quoting).writerows([header, *rows])
        if empty_last_line:
            f.write(ending)
    return path


def reordered(rows: list[list[str]], order: list[int]) -> list[list[str]]:
    return [[row[i] for i in order] for row in rows]


# ------------------------------------------------------------ reading the header (fast)


def test_preflight_reads_a_bom_header_crlf_quoted_numbers_and_an_empty_last_line(tmp_path):
    path = write(tmp_path / "excel.csv", HEADER, ROWS[:50], bom=True, crlf=True,
                 quote_all=True, empty_last_line=True)
    assert path.read_bytes().startswith(b'\xef\xbb\xbf"pickup_community_area",')
    assert b'\r\n"' in path.read_bytes() and path.read_bytes().endswith(b'"\r\n\r\n')
    header, rows = preflight.check_csv(path)
    assert header == HEADER  # no "\ufeff" before the first name, no quotes
    assert rows == 50  # the empty last line is not a row


def test_preflight_accepts_a_bom_file_next_to_a_plain_one(tmp_path):
    write(tmp_path / "a.csv", HEADER, ROWS[:10], bom=True)
    write(tmp_path / "b.csv", HEADER, ROWS[10:30])
    files, rows = preflight.check_data(str(tmp_path))
    assert [f.name for f in files] == ["a.csv", "b.csv"] and rows == 30


def test_files_with_the_same_columns_in_another_order_are_named(tmp_path):
    order = list(reversed(range(len(HEADER))))
    write(tmp_path / "a.csv", HEADER, ROWS[:10])
    write(tmp_path / "b.csv", reordered([HEADER], order)[0], reordered(ROWS[10:20], order))
    with pytest.raises(preflight.InputError, match="b.csv has the columns of .*a.csv in a "
                       "different order"):
        preflight.check_data(str(tmp_path))


def test_gzip_csv_is_refused_in_one_line(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "data.csv.gz").write_bytes(gzip.compress((DATA / "data.csv").read_bytes()))
    (data / "disguised.csv").write_bytes(gzip.compress(b"a,b\n1,2\n"))
    with pytest.raises(preflight.InputError, match="data.csv.gz is gzip-compressed CSV"):
        preflight.input_files(str(data))
    with pytest.raises(preflight.InputError, match="disguised.csv is gzip-compressed"):
        preflight.check_csv(data / "disguised.csv")

    output = tmp_path / "out"
    result = run_cli("--data-root", str(data), "--output-dir", str(output))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: {data / 'data.csv.gz'} is gzip-compressed CSV, which is not read: decompress "
        f"it (gunzip {data / 'data.csv.gz'}) or move it out of {data}")
    assert not output.exists()


def test_the_serving_client_reads_a_bom_header(tmp_path):
    from tensorflow.core.example import example_pb2

    from serving import client

    columns = client.load_columns()

    def examples(path: Path) -> list:
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        serialized, dropped = client.read_examples(lines, columns)
        assert dropped == ["tips"]
        return [example_pb2.Example.FromString(e) for e in serialized]

    excel = examples(write(tmp_path / "excel.csv", HEADER, ROWS[:20], bom=True, crlf=True))
    plain = examples(write(tmp_path / "plain.csv", HEADER, ROWS[:20]))
    assert excel == plain and len(plain) == 20


# ------------------------------------------------------------------ the gate's advice


def _finding(feature: str, kind: str) -> dict:
    return {"feature": feature, "split": "train", "type": kind, "description": "..."}


def test_the_gate_never_suggests_letting_the_label_source_through():
    missing = [_finding("tips", "SCHEMA_MISSING_COLUMN")]
    text = gate.failure_message(missing)
    assert "--allow-anomaly tips" not in text and "e.g. --allow-anomaly" not in text
    assert "The label big_tipper (tips > 0.2 x fare) cannot be computed" in text
    assert "fix tips in the data" in text

    mixed = missing + [_finding("payment_type", "ENUM_TYPE_UNEXPECTED_STRING_VALUES"),
                       _finding("fare", "UNEXPECTED_DATA_TYPE")]
    text = gate.failure_message(mixed)
    assert "fix fare and tips in the data" in text
    assert "(e.g. --allow-anomaly payment_type:ENUM_TYPE_UNEXPECTED_STRING_VALUES)" in text
    assert "--allow-anomaly tips" not in text and "--allow-anomaly fare" not in text


def test_a_column_name_with_an_invisible_mark_is_printed_escaped():
    text = gate.failure_message([_finding("\ufeffpickup_community_area", "SCHEMA_NEW_COLUMN"),
                                 _finding("pickup_community_area", "SCHEMA_MISSING_COLUMN")])
    assert "  - '\\ufeffpickup_community_area' (train split)" in text
    assert "  - pickup_community_area (train split)" in text


def test_drift_of_a_label_source_is_not_offered_as_an_allowance_either():
    hint = gate.remedy_hint([_finding("fare", "COMPARATOR_L_INFTY_HIGH")])
    assert not any("cannot be computed" in line for line in hint)
    assert not any("--allow-anomaly" in line for line in hint)
    assert hint and "drift thresholds" in hint[0]


def test_single_class_text_names_the_splits_with_one_class():
    assert summary.single_class_text({"eval": [3, 1000], "train": [0, 4000]}) is None
    assert summary.single_class_text({"eval": [0, 1972], "train": [0, 7933]}) == (
        "the label big_tipper has a single class in the eval split (1,972 trips, no big "
        "tipper) and in the train split (7,933 trips, no big tipper): AUC is undefined")
    assert summary.single_class_text({"eval": [12, 0]}) == (
        "the label big_tipper has a single class in the eval split (12 trips, all big "
        "tippers): AUC is undefined")


# ------------------------------------------------------------------ real runs


@pytest.fixture(scope="module")
def export_run(tmp_path_factory) -> PipelineRun:
    """The shipped rows as an export writes them: three files, CRLF, columns in
    another order, every cell quoted (the header's names and numbers too), an
    empty last line."""
    order = [HEADER.index(name) for name in sorted(HEADER)]
    header, rows = [HEADER[i] for i in order], reordered(ROWS, order)
    data = tmp_path_factory.mktemp("export") / "data"
    third = len(rows) // 3 + 1
    for part in range(3):
        write(data / f"part-{part + 1}.csv", header, rows[part * third:(part + 1) * third],
              crlf=True, quote_all=True, empty_last_line=True)
    return run_pipeline(data, tmp_path_factory.mktemp("export_out"),
                        "--train-steps", TRAIN_STEPS)


@pytest.mark.e2e
def test_an_export_with_crlf_reordered_quoted_columns_in_three_files_is_pushed(
    export_run: PipelineRun,
):
    assert export_run.returncode == 0, export_run.stderr[-3000:]
    result = read_outcome(str(export_run.metadata_path))
    assert result.blessed and result.pushed_path, result
    assert result.metrics["example_count"] > 0
    statistics = _statistics(export_run)
    assert sum(s.num_examples for s in statistics.values()) == len(ROWS)  # no empty rows
    fare = next(f for f in statistics["train"].features if f.path.step[0] == "fare")
    assert fare.HasField("num_stats")  # "12.45" in quotes is a number


def _statistics(run: PipelineRun) -> dict:
    from metadata.artifacts import load_statistics

    latest = max((run.output_dir / "pipeline_root" / "StatisticsGen" / "statistics").iterdir(),
                 key=lambda p: int(p.name))
    return load_statistics(str(latest))


# TFX's io_utils.load_csv_column_names keeps "\ufeff" in the first column's
# name; pipeline/components/csv_example_gen.py strips it on the streaming and stock paths.
@pytest.mark.e2e
def test_an_excel_csv_utf8_file_with_a_bom_is_pushed(tmp_path: Path):
    data = tmp_path / "data"
    write(data / "data.csv", HEADER, ROWS, bom=True, crlf=True)
    run = run_pipeline(data, tmp_path / "out", "--train-steps", TRAIN_STEPS)
    assert "\ufeff" not in run.stderr, run.stderr[-3000:]
    assert run.returncode == 0, run.stderr[-3000:]
    assert read_outcome(str(run.metadata_path)).pushed_path


@pytest.mark.e2e
def test_every_trip_paid_in_cash_says_single_class_not_auc_zero(tmp_path: Path):
    """No big tipper at all: AUC is undefined, and the summary and report say why."""
    rows = [r for r in ROWS if r[PAYMENT] == "Cash"
            and not (r[TIPS] and r[FARE] and float(r[TIPS]) > 0.2 * float(r[FARE]))]
    data = tmp_path / "data"
    write(data / "data.csv", HEADER, rows)
    run = run_pipeline(data, tmp_path / "out", "--train-steps", "20")

    assert run.returncode == 0, run.stderr[-3000:]  # completed: not blessed, and said so
    result = read_outcome(str(run.metadata_path))
    assert result.blessed is False and not result.pushed_path
    assert result.label_counts["eval"][0] == 0 and result.label_counts["train"][0] == 0
    assert sum(result.label_counts["eval"]) == result.metrics["example_count"]
    assert "auc 0.0000" not in run.stdout
    assert "Evaluation: auc undefined," in run.stdout
    line = next(x for x in run.stdout.splitlines() if "single class" in x)
    assert re.fullmatch(
        r"  - the label big_tipper has a single class in the eval split \([\d,]+ trips, no "
        r"big tipper\) and in the train split \([\d,]+ trips, no big tipper\): AUC is "
        r"undefined", line), line
    page = (run.output_dir / "report" / "index.html").read_text(encoding="utf-8")
    evaluation = _section(page, "evaluation")
    assert "Note: the label big_tipper has a single class in the eval split" in evaluation
    assert "undefined (one class)" in evaluation and "0.0000" not in evaluation


@pytest.mark.e2e
def test_a_missing_tips_column_is_refused_with_a_report_next_to_the_accepted_data(
    export_run: PipelineRun, tmp_path: Path
):
    """Into a copy of the export run's folder, so the gate has accepted data before."""
    assert export_run.returncode == 0
    output = tmp_path / "out"
    shutil.copytree(export_run.output_dir, output)
    served = output / "serving_model"
    before = sorted(p.name for p in served.rglob("*"))
    data = tmp_path / "data"
    write(data / "data.csv", [c for c in HEADER if c != "tips"],
          [r[:TIPS] + r[TIPS + 1:] for r in ROWS])

    run = run_pipeline(data, output, "--train-steps", TRAIN_STEPS)

    assert run.returncode == 1
    err = run.stderr
    assert "tips (train split): Column is completely missing [SCHEMA_MISSING_COLUMN]" in err
    assert "The label big_tipper (tips > 0.2 x fare) cannot be computed" in err
    assert "--allow-anomaly tips" not in err and "e.g. --allow-anomaly" not in err
    assert err.strip().splitlines()[-1].startswith("error: Data validation failed: 1 feature")
    assert sorted(p.name for p in served.rglob("*")) == before

    report_path = output / "report" / "index.html"
    assert f"Report: {report_path}" in err
    page = report_path.read_text(encoding="utf-8")
    overview = _section(page, "overview")
    assert "The validation gate refused the data: nothing was trained or pushed" in overview
    anomalies = _section(page, "anomalies")
    assert "accepted by run <code>" in anomalies
    assert "Last accepted: " + f"{_train_rows(export_run):,} train rows." in anomalies
    tips_row = re.search(r"<tr><td><b>tips</b></td>(.*?)</tr>", anomalies).group(1)
    assert "Column is completely missing" in tips_row and "column absent" in tips_row
    assert "with a value" in tips_row  # the accepted data's tips, side by side
    assert "Nothing trained" not in page and "No training history" in _section(page, "training")


def _section(page: str, section_id: str) -> str:
    return re.search(rf'<section id="{section_id}">(.*?)</section>', page, re.S).group(1)


def _train_rows(run: PipelineRun) -> int:
    return int(_statistics(run)["train"].num_examples)
