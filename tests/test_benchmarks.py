"""The benchmark harness's own logic: input generation, parsing, aggregation.

Fast and pipeline-free: nothing here runs TFX or asserts on timings (the
benchmark itself is `python -m benchmarks`, not a test).
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

import pytest

from benchmarks import cli, data, machine, mlmd, report, sdist, tfx_taxi
from benchmarks.measure import ProcessMeasurement, run_measured
from benchmarks.mlmd import ComponentTime, RecordedRun
from benchmarks.report import COLD, OURS, THEIRS, BenchmarkReport, RunResult, rerun_kind

HEADER = "a,b,tips"
ROWS = ["1,x,0.0", '2,"y, z",1.5', "3,,0.0", "4,w,2.0"]


def table_rows(text: str) -> list[list[str]]:
    """The cells of every row of the Markdown pipe tables in `text`: the header and
    the body rows, not the alignment rule (`|---|--:|`)."""
    return [[cell.strip() for cell in line.strip()[1:-1].split("|")]
            for line in text.splitlines()
            if line.startswith("|") and not set(line) <= set("|-: ")]


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "source.csv"
    path.write_text(data.render_csv(HEADER, ROWS))
    return path


# --- input generation ---------------------------------------------------------

def test_split_csv_keeps_rows_byte_for_byte():
    header, rows = data.split_csv(data.render_csv(HEADER, ROWS))
    assert header == HEADER
    assert rows == ROWS


def test_split_csv_refuses_records_spanning_lines():
    with pytest.raises(ValueError, match="cannot resample lines"):
        data.split_csv('a,b\n1,"two\nlines"\n')


def test_resample_is_deterministic_and_with_replacement():
    first = data.resample(ROWS, 1000, seed=3)
    assert first == data.resample(ROWS, 1000, seed=3)
    assert first != data.resample(ROWS, 1000, seed=4)
    assert len(first) == 1000
    assert set(first) == set(ROWS)  # every row drawn, so rows repeat


def test_resample_draws_are_pinned():
    # random.Random(seed).choices is stable across CPython versions; if this
    # ever changes, the recorded sha256 of every generated input changes too.
    assert data.resample(list("abcd"), 8, seed=3) == list("acbccaad")


@pytest.mark.parametrize("count", [0, -1])
def test_resample_rejects_non_positive_counts(count: int):
    with pytest.raises(ValueError):
        data.resample(ROWS, count, seed=3)


def test_shipped_row_count_is_the_file_as_is(tmp_path: Path, source: Path):
    dataset = data.prepare_dataset(tmp_path / "work", len(ROWS), source=source)
    assert dataset.seed is None
    copied = Path(dataset.data_root) / "data.csv"
    assert copied.read_bytes() == source.read_bytes()
    assert dataset.sha256 == dataset.source_sha256


def test_resampled_dataset_is_alone_in_its_folder_and_reused(tmp_path: Path, source: Path):
    work = tmp_path / "work"
    dataset = data.prepare_dataset(work, 10, seed=7, source=source)
    root = Path(dataset.data_root)
    # CsvExampleGen reads every file of its input folder: only the CSV may be there.
    assert [p.name for p in root.iterdir()] == ["data.csv"]
    lines = (root / "data.csv").read_text().splitlines()
    assert lines[0] == HEADER
    assert lines[1:] == data.resample(ROWS, 10, seed=7)
    assert data.prepare_dataset(work, 10, seed=7, source=source) == dataset
    assert data.prepare_dataset(work, 10, seed=8, source=source).data_root != dataset.data_root


def test_the_repo_data_resamples():
    header, rows = data.split_csv(data.SOURCE_CSV.read_text())
    assert header.endswith("tips")
    assert len(rows) == 15002


# --- helpers run in subprocesses ------------------------------------------------

def test_mlmd_output_round_trips():
    run = RecordedRun(
        run_id="r1",
        components=[ComponentTime("CsvExampleGen", "ran", 2.5)],
        metrics={"auc": 0.95},
        blessed=True,
    )
    printed = "TensorFlow noise\n" + json.dumps({"/s.db": [asdict(run)]}) + "\n"
    assert mlmd.parse_output(printed) == {"/s.db": [run]}


def test_mlmd_output_must_not_be_empty():
    with pytest.raises(ValueError):
        mlmd.parse_output("\n")


def test_sdist_builds_are_counted_from_their_leftovers(tmp_path: Path):
    for name in ("tmpa", "tmpb"):
        build = tmp_path / name / "build" / "tfx"
        build.mkdir(parents=True)
        (build / "setup.py").write_text("")
    (tmp_path / "tmpwheel").mkdir()  # a user-module wheel build: not an sdist
    assert sdist.count_builds(tmp_path) == 2
    assert sdist.count_builds(tmp_path / "missing") == 0


def test_tfx_example_beam_args_change_only_the_mode():
    shipped = ["--direct_running_mode=multi_processing", "--direct_num_workers=0"]
    assert tfx_taxi.beam_args(shipped, "in_memory") == [
        "--direct_running_mode=in_memory", "--direct_num_workers=0"]
    assert tfx_taxi.beam_args(shipped, "multi_processing") == shipped
    with pytest.raises(ValueError):
        tfx_taxi.beam_args(shipped, "multi_threading")


def test_tfx_example_module_file_is_installed():
    assert Path(tfx_taxi.shipped_module_file()).is_file()


# --- measuring and aggregating --------------------------------------------------

def test_run_measured_sees_memory_and_exit_code(tmp_path: Path):
    code = "b = bytearray(150 * 1024 * 1024); raise SystemExit(3)"
    m = run_measured([sys.executable, "-c", code], cwd=tmp_path, env={},
                     log_path=tmp_path / "log.txt", timeout=60, interval=0.05)
    assert m.returncode == 3
    assert not m.timed_out
    assert m.max_process_rss_bytes >= 150 * 1024 * 1024
    assert m.peak_tree_rss_bytes >= m.max_process_rss_bytes


def measurement(wall: float, rss: int = 1, rc: int = 0) -> ProcessMeasurement:
    return ProcessMeasurement(returncode=rc, wall_seconds=wall, cpu_seconds=wall,
                              peak_tree_rss_bytes=rss, max_process_rss_bytes=rss,
                              peak_processes=1, samples=1)


def result(pipeline: str, kind: str, n: int, wall: float, components=(), rc: int = 0,
           rss: int = report.GIB) -> RunResult:
    recorded = RecordedRun(
        run_id=f"{pipeline}-{n}-{kind}",
        components=[ComponentTime(name, state, s) for name, state, s in components],
    )
    return RunResult(pipeline, kind, n, measurement(wall, rss, rc), recorded)


def test_failed_runs_stay_out_of_medians():
    results = [result(OURS, COLD, 1, 10), result(OURS, COLD, 2, 99, rc=1),
               result(OURS, COLD, 3, 20)]
    assert [r.round for r in report.select(results, OURS, COLD)] == [1, 3]
    assert report.median(r.measurement.wall_seconds
                         for r in report.select(results, OURS, COLD)) == 15


def test_ratio_and_median_handle_missing_values():
    assert report.ratio(1.0, 4.0) == 0.25
    assert report.ratio(None, 4.0) is None
    assert report.ratio(1.0, 0.0) is None
    assert report.median([None, 3.0, 1.0]) == 2.0
    assert report.median([]) is None


def test_component_medians_keep_run_order_and_skip_states():
    runs = [
        result(OURS, COLD, 1, 10, [("A", "ran", 1.0), ("B", "cached", 0.0)]),
        result(OURS, COLD, 2, 10, [("A", "ran", 3.0), ("B", "ran", 4.0)]),
    ]
    assert report.component_medians(runs) == {"A": 2.0, "B": 2.0}
    assert list(report.component_medians(runs)) == ["A", "B"]
    assert report.component_medians(runs, ("cached",)) == {"A": 2.0, "B": 4.0}


def test_outside_components_is_wall_minus_component_time():
    run = result(OURS, COLD, 1, 10.0, [("A", "ran", 3.0), ("B", "ran", 2.5)])
    assert run.outside_components == pytest.approx(4.5)
    assert result(OURS, COLD, 1, 10.0).outside_components is None


def test_component_lines_show_times_metrics_and_blessing():
    run = result(OURS, COLD, 2, 10.0, [("Trainer", "ran", 4.0)])
    run.recorded.metrics = {"auc": 0.93, "example_count": 1012.0}
    run.recorded.blessed = False
    text = report.describe_components(run)
    assert text.startswith("[round 2] Ours, cold, from ML Metadata")
    assert "Trainer" in text and "4.0 s" in text
    assert "(outside components)" in text and "6.0 s" in text
    assert "auc 0.9300, example_count 1012, NOT blessed" in text


def test_kinds_are_ordered_cold_then_reruns():
    results = [result(THEIRS, rerun_kind(2), 1, 1), result(OURS, COLD, 1, 1),
               result(OURS, rerun_kind(1), 1, 1)]
    assert report.kinds(results) == [COLD, "re-run 1", "re-run 2"]


def sample_report() -> BenchmarkReport:
    results = [
        result(OURS, COLD, 1, 30.0, [("CsvExampleGen", "ran", 3.0), ("Trainer", "ran", 10.0)]),
        result(THEIRS, COLD, 1, 60.0, [("CsvExampleGen", "ran", 6.0), ("SchemaGen", "ran", 1.0)],
               rss=2 * report.GIB),
        result(OURS, rerun_kind(1), 1, 12.0,
               [("CsvExampleGen", "cached", 0.0), ("Evaluator", "ran", 5.0)]),
        result(THEIRS, rerun_kind(1), 1, 16.0, [("CsvExampleGen", "cached", 0.0)], rc=1),
    ]
    return BenchmarkReport(
        started="2025-01-02 03:04", command="python -m benchmarks --rounds 1",
        dataset="15,002 rows", dataset_sha256="ab" * 32, tfx_mode="in_memory", rounds=1,
        machine={"cpu": "Test CPU", "logical_cores": 2, "usable_cores": 2,
                 "physical_cores": 1, "ram_bytes": 8 * report.GIB, "os": "Linux"},
        versions={"python": "3.10.0", "tfx": "1.16.0"}, revision="abc1234",
        results=results, sdist=report.SdistTiming(seconds=[1.0, 3.0, 2.0], sdist_bytes=1 << 20),
        note="shared machine",
    )


def test_markdown_has_rounds_medians_ratios_and_components():
    text = report.render_markdown(sample_report())
    assert "Test CPU, 2 logical cores, 8.0 GiB RAM" in text
    assert "Note: shared machine" in text
    rows = table_rows(text)
    assert ["cold, round 1", "30.0", "60.0", "0.50x"] in [r[:4] for r in rows]
    median = next(r for r in rows if r[0] == "**cold, median** (n=1/1)")
    assert median[1:4] == ["**30.0**", "**60.0**", "**0.50x**"]
    assert median[-3:] == ["1.00 (1.00)", "2.00 (2.00)", "0.50x"]
    assert ["re-run 1, round 1", "12.0", "failed", "–"] in [r[:4] for r in rows]
    assert ["CsvExampleGen", "3.0", "6.0"] in rows
    assert ["SchemaGen", "–", "1.0"] in rows
    assert ["(outside components: interpreter start, imports, compile, orchestration)",
            "17.0", "53.0"] in rows
    # Number columns stay right-aligned where the tables are rendered.
    assert "|:----" in text and "--:|" in text
    assert "Re-run 1, components not cached (median): Ours: Evaluator 5.0 s; " \
           "outside components 7.0 s." in text
    assert "median 2.0 s (n=3, 1.0–3.0 s)" in text


def test_markdown_estimates_sdist_cost_per_tfx_run():
    bench = sample_report()
    bench.results[1].sdist_builds = 4
    assert "about 8 s of each cold TFX example run" in report.render_markdown(bench)


def test_code_changes_during_a_benchmark_are_flagged():
    runs = [result(OURS, COLD, 1, 10), result(OURS, rerun_kind(1), 1, 5)]
    runs[0].source, runs[1].source = "aaa", "aaa"
    assert report.source_warning(runs) is None
    runs[1].source = "bbb"
    warning = report.source_warning(runs)
    assert "`aaa`: round 1 cold; `bbb`: round 1 re-run 1" in warning


def test_source_fingerprint_follows_code_not_bytecode(tmp_path: Path):
    (tmp_path / "pipeline" / "__pycache__").mkdir(parents=True)
    (tmp_path / "pipeline" / "a.py").write_text("x = 1\n")
    before = machine.source_fingerprint(tmp_path, ("pipeline", "missing.py"))
    (tmp_path / "pipeline" / "__pycache__" / "a.cpython-310.pyc").write_bytes(b"\0")
    assert machine.source_fingerprint(tmp_path, ("pipeline", "missing.py")) == before
    (tmp_path / "pipeline" / "a.py").write_text("x = 2\n")
    assert machine.source_fingerprint(tmp_path, ("pipeline", "missing.py")) != before


# --- command line ---------------------------------------------------------------

def test_work_dir_must_be_outside_the_repo(tmp_path: Path):
    with pytest.raises(SystemExit):
        cli.check_work_dir(str(data.PROJECT_ROOT / "outputs" / "bench"))
    assert cli.check_work_dir(str(tmp_path / "w")) == (tmp_path / "w").resolve()


def test_defaults_follow_the_issue():
    args = cli.parse_args([])
    assert args.rows == 15002
    assert args.tfx_mode == "multi_processing"  # what the example ships with
    assert args.rounds >= 1 and args.reruns >= 1
    with pytest.raises(SystemExit):
        cli.parse_args(["--tfx-mode", "multi_threading"])


def test_commands_point_each_pipeline_at_the_same_data(tmp_path: Path):
    ours = cli.ours_command("/data", tmp_path / "o", ["--train-steps=10"])
    theirs = cli.theirs_command("/data", tmp_path / "t", tmp_path / "m.py", "in_memory")
    assert ours[ours.index("--data-root") + 1] == theirs[theirs.index("--data-root") + 1]
    assert ours[-1] == "--train-steps=10"
    assert theirs[1:3] == ["-m", "benchmarks.tfx_taxi"]
    assert cli.metadata_path(OURS, tmp_path / "o") == str(tmp_path / "o" / "metadata.sqlite")
    assert cli.metadata_path(THEIRS, tmp_path / "t") == str(tmp_path / "t" / "metadata.db")


def test_scale_table_puts_sizes_side_by_side_per_million_rows(tmp_path: Path):
    from benchmarks import scale

    paths = []
    for rows, wall in ((1_000_000, 100.0), (10_000_000, 800.0)):
        bench = sample_report()
        bench.dataset = f"{rows:,} rows (data/data.csv resampled with replacement, seed 3)"
        bench.results[0].measurement.wall_seconds = wall
        paths.append(tmp_path / f"{rows}.json")
        paths[-1].write_text(json.dumps(asdict(bench), default=str))
    table = scale.render([row for path in paths for row in scale.read_rows(path)])
    rows = table_rows(table)
    assert len(table.splitlines()) == 2 + 4  # header, rule, ours and TFX's at each size
    assert rows[1][:4] == ["1,000,000", "Ours", "100.0", "100.0"]
    assert rows[3][:4] == ["10,000,000", "Ours", "800.0", "80.0"]
    # CsvExampleGen, StatisticsGen, Transform, Trainer, Evaluator
    shown = rows[0].index("CsvExampleGen")
    assert rows[1][shown:shown + 5] == ["3.0", "–", "–", "10.0", "–"]
    assert rows[2][:4] == ["1,000,000", "TFX example", "60.0", "60.0"]


def test_the_batch_comparison_table_states_the_ratio_and_the_load():
    from benchmarks import batch

    args = batch.parse_args(["--rows", "1000"])
    row = {"rows": 1000, "ok": True, "cpu": 1.0, "peak_tree_bytes": 2**30,
           "largest_process_bytes": 2**29, "load_before": 1.5, "load_after": 2.0}
    text = batch.markdown([{**row, "pipeline": "ours", "wall": 3.0},
                           {**row, "pipeline": "BulkInferrer", "wall": 12.0,
                            "components": {"BulkInferrer": 8.0}}], args)
    assert ["1,000", "ours", "yes", "3.0", "1.0", "1.00 GiB", "0.50 GiB", "1.5 / 2.0",
            "-"] in table_rows(text)
    assert "BulkInferrer 8.0 s" in text
    assert "1,000 rows: ours takes 0.25x BulkInferrer's wall time." in text


def test_the_bulk_inferrer_model_artifact_points_at_the_pushed_version(tmp_path):
    from benchmarks.bulk_inferrer import model_root

    version = tmp_path / "serving_model" / "chicago_taxi" / "123"
    version.mkdir(parents=True)
    root = Path(model_root(str(version), str(tmp_path / "out")))
    assert (root / "Format-Serving").resolve() == version.resolve()
    assert model_root(str(version), str(tmp_path / "out")) == str(root)  # idempotent


def test_spans_scores_recorded_runs_under_any_blessing_rule():
    from benchmarks import spans
    from pipeline.configs import EvaluationThresholds

    good = {"candidate/auc": 0.9447, "candidate/binary_accuracy": 0.8897}
    worse = {"candidate/auc": 0.9388, "candidate/binary_accuracy": 0.8781, "diff/auc": -0.019}
    old = EvaluationThresholds(min_auc=0.945, min_accuracy=0.89, max_accuracy_drop=1.0)
    assert spans.refused_by(good, old) == ["auc floor", "accuracy floor"]
    assert spans.refused_by(good, EvaluationThresholds()) == []
    assert spans.refused_by(worse, EvaluationThresholds()) == ["auc drop"]
    lines = [{"halving": 0, "span": 1, "case": "good", "returncode": 0, "blessed": True,
              "pushed": True, "metrics": good},
             {"halving": 0, "span": 2, "case": "good", "returncode": 0, "blessed": False,
              "pushed": False, "metrics": worse}]
    rules = {"now": EvaluationThresholds()}
    assert ["0", "2", "good", "0", "0.9388", "0.8781", "-0.0190", "–", "no", "no",
            "auc drop"] in table_rows(spans.score(lines, rules))
    summary = spans.summary_lines(lines, rules)
    assert summary[:2] == ["same-distribution later spans blessed and pushed: 0 of 1 "
                           "(0 run(s) failed)", "good models refused by now: 1 of 2"]


def test_selection_table_gives_share_and_median_bits():
    from benchmarks import selection

    result = {2000: {"fare": {"selected": 0.94, "bits": 0.0185}, "company": {
        "selected": 0.0, "bits": None}}, 5000: {"fare": {"selected": 1.0, "bits": 0.0186},
                                              "company": {"selected": 0.0, "bits": None}}}
    assert table_rows(selection.table(result)) == [
        ["column", "2,000 rows", "5,000 rows"], ["fare", "94% (0.0185)", "100% (0.0186)"],
        ["company", "0%", "0%"]]
