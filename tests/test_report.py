"""The HTML run report: sections, images, numbers, and a real browser rendering it."""

from __future__ import annotations

import html
import json
import math
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from metadata.graph import MetadataGraph
from metadata.store import open_store
from review import report
from tests.three_runs import CACHED_IN_SECOND_RUN, ThreeRuns, three_runs

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
BROWSER_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)


class Page(HTMLParser):
    """Sections (id -> text), images and links of a report page."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.sections: dict[str, str] = {}
        self.images: list[str] = []
        self.links: list[str] = []
        self._current: str | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self._current = attrs.get("id")
            self.sections[self._current] = ""
        elif tag == "img":
            self.images.append(attrs.get("src", ""))
        elif tag in ("a", "link", "script"):
            self.links.append(attrs.get("href") or attrs.get("src") or "")

    def handle_endtag(self, tag):
        if tag == "section":
            self._current = None

    def handle_data(self, data):
        if self._current:
            self.sections[self._current] += data


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> ThreeRuns:
    return three_runs(tmp_path_factory)


@pytest.fixture(scope="module")
def page_path(runs: ThreeRuns) -> Path:
    """The first run's report (copied before the second run replaced it)."""
    written = runs.output_dir / "report" / "index.html"
    assert f"Report: {written}" in runs.first.stdout.splitlines()
    return runs.first_report / "index.html"


@pytest.fixture(scope="module")
def page(page_path: Path) -> Page:
    return Page(page_path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def first_run(runs: ThreeRuns) -> report.RunData:
    return report.load_run(str(runs.first.metadata_path), recorded_run_ids(runs)[0])


def recorded_run_ids(runs: ThreeRuns) -> list[str]:

    return MetadataGraph(open_store(str(runs.first.metadata_path))).run_ids()


# -- structure ----------------------------------------------------------------------------------
@pytest.mark.e2e
def test_every_section_is_present_in_order(page: Page):
    assert list(page.sections) == [section_id for section_id, _ in report.SECTIONS]
    for section_id, title in report.SECTIONS:
        assert page.sections[section_id].startswith(title), section_id


@pytest.mark.e2e
def test_every_image_is_a_png_next_to_the_page(page: Page, page_path: Path):
    assert len(page.images) >= 20, "a histogram per feature plus the run's plots"
    for src in page.images:
        assert not re.match(r"^[a-z]+:", src), f"not a relative file: {src}"
        data = (page_path.parent / src).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 1000, src
    on_disk = {f"img/{p.name}" for p in (page_path.parent / "img").iterdir()}
    assert on_disk == set(page.images), "no stale or missing images"


@pytest.mark.e2e
def test_the_page_works_offline(page: Page, page_path: Path):
    text = page_path.read_text(encoding="utf-8")
    assert "<script" not in text
    # In-page anchors, or local files (the pushed version's model card) that exist.
    local = [link.removeprefix("file://") for link in page.links if not link.startswith("#")]
    assert all(link.startswith("/") and Path(link).is_file() for link in local), page.links
    assert "http://" not in text and "https://" not in text


# -- content -----------------------------------------------------------------------------------
def _selection(run: report.RunData) -> dict:
    selection = report.load_selection(run)
    assert selection is not None
    return selection


@pytest.mark.e2e
def test_statistics_and_selection_cover_every_feature(page: Page, first_run):
    selection = _selection(first_run)
    for decision in selection["decisions"]:
        assert decision["feature"] in page.sections["statistics"]
        assert decision["reason"] in page.sections["feature-selection"]
    assert f"Selected: {', '.join(selection['selected'])}" in page.sections["feature-selection"]


@pytest.mark.e2e
def test_anomalies_match_example_validator(page: Page, first_run):
    from metadata.artifacts import anomalies_by_split

    uri = first_run.output("anomalies", "ExampleAnomalies").uri
    for split, anomalies in anomalies_by_split(uri).items():
        count = len(anomalies.anomaly_info)
        expected = f"{split}: {count} anomalies" if count else f"{split}: no anomalies"
        assert expected in page.sections["anomalies"]
        for feature in anomalies.anomaly_info:
            assert feature in page.sections["anomalies"]


def _slice_values(text: str, feature: str) -> list[str]:
    """First-column values of the table under `feature`'s heading."""
    part = text.split(f'<h3 id="slice-{feature}">', 1)[1].split("</table>", 1)[0]
    return re.findall(r"<tr><td><b>(.*?)</b></td>", part)


@pytest.mark.e2e
def test_metrics_overall_and_per_slice(page: Page, page_path: Path, runs: ThreeRuns):
    from metadata.outcome import read_outcome

    metrics = read_outcome(str(runs.first.metadata_path), recorded_run_ids(runs)[0]).metrics
    assert f"AUC{metrics['auc']:.4f}" in page.sections["evaluation"]
    text = page_path.read_text(encoding="utf-8")
    assert {"Cash", "Credit Card"} <= set(_slice_values(text, "payment_type"))
    assert _slice_values(text, "trip_start_hour") == [str(hour) for hour in range(24)]


@pytest.mark.e2e
def test_training_baseline_and_push(page: Page, runs: ThreeRuns):
    assert "loss" in page.sections["training"] and "val_accuracy" in page.sections["training"]
    assert "No baseline" in page.sections["baseline"], "the first run has nothing to compare"
    versions = sorted(p for p in runs.first.serving_base.iterdir() if p.name.isdigit())
    push = page.sections["push"]
    assert f"Pushed model version {versions[0].name}" in push
    assert str(versions[0]) in push
    assert f"Model version {versions[0].name}" in page.sections["lineage"]


@pytest.mark.e2e
def test_a_retrained_run_compares_with_the_baseline(runs: ThreeRuns, first_run):
    page = Page((runs.second_report / "index.html").read_text(encoding="utf-8"))
    baseline = page.sections["baseline"]
    assert "No baseline" not in baseline
    first_version = min(p for p in runs.first.serving_base.iterdir() if p.name.isdigit())
    assert (f"the model being served when the candidate was evaluated, "
            f"version {first_version.name}, {first_version}") in baseline
    assert "candidatebaselinechange" in baseline
    assert re.search(r"AUC(0\.\d{4}){2}-?0\.\d{4}", baseline), baseline
    for component in CACHED_IN_SECOND_RUN:
        assert f"{component}cached" in page.sections["overview"]
    assert "Trainerran" in page.sections["overview"]


@pytest.mark.e2e
def test_a_repeated_run_says_its_results_are_reused(runs: ThreeRuns):
    page = Page((runs.output_dir / "report" / "index.html").read_text(encoding="utf-8"))
    second_run_id = recorded_run_ids(runs)[1]
    assert page.sections["overview"].startswith("Run overviewNothing changed since version")
    reused = f"this is the evaluation computed by run {second_run_id}"
    assert reused in page.sections["evaluation"] and reused in page.sections["baseline"]
    assert "reused that push from the cache" in page.sections["push"]


# -- pure helpers on synthetic data --------------------------------------------------------
def _num_stats(standard: list[float], deciles: list[tuple[float, float]]):
    from tensorflow_metadata.proto.v0 import statistics_pb2

    stats = statistics_pb2.NumericStatistics()
    hist = stats.histograms.add(type=statistics_pb2.Histogram.STANDARD)
    for i, count in enumerate(standard):
        hist.buckets.add(low_value=i, high_value=i + 1, sample_count=count)
    quantiles = stats.histograms.add(type=statistics_pb2.Histogram.QUANTILES)
    for low, high in deciles:
        quantiles.buckets.add(low_value=low, high_value=high, sample_count=10)
    return stats


def test_histogram_switches_to_deciles_when_one_bucket_dominates():
    even = _num_stats([10, 20, 30, 40], [(0, 1)] * 10)
    bars, caption = report.numeric_histogram(even)
    assert caption == "equal-width buckets" and [b[2] for b in bars] == [0.1, 0.2, 0.3, 0.4]
    edges = [0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 100]  # a spike at 0 and one huge outlier
    skewed = _num_stats([99, 0, 0, 1], list(zip(edges, edges[1:], strict=False)))
    bars, caption = report.numeric_histogram(skewed)
    assert caption.startswith("deciles") and "axis cut at 12 (max 100)" in caption
    assert max(b[0] + b[1] for b in bars) <= 12
    spike = min(bars, key=lambda b: b[1])
    assert spike[2] > 10 * bars[-1][2], "a decile of identical values is drawn as a spike"


def _matrices(*rows):
    keys = ("truePositives", "falsePositives", "trueNegatives", "falseNegatives")
    return {"confusionMatrixAtThresholds": {"matrices": [
        {k: float(v) for k, v in zip(keys, row, strict=True) if v} for row in rows]}}


def test_roc_points_and_undefined_auc():
    fpr, tpr = report.roc_points(_matrices((5, 5, 0, 0), (4, 1, 4, 1), (0, 0, 5, 5)))
    assert fpr == [1.0, 0.2, 0.0] and tpr == [1.0, 0.8, 0.0]
    only_negatives = _matrices((0, 7, 0, 0))
    assert report.class_counts(only_negatives) == (0.0, 7.0)
    assert math.isnan(report.defined_metrics({"auc": 0.0}, only_negatives)["auc"])
    assert report.defined_metrics({"auc": 0.7}, _matrices((1, 1, 0, 0)))["auc"] == 0.7


def test_calibration_bins_average_predictions_and_labels():
    plot = {"calibrationHistogramBuckets": {"buckets": [
        {"numWeightedExamples": 2.0, "totalWeightedRefinedPrediction": 0.1,
         "totalWeightedLabel": 0.0},
        {"numWeightedExamples": 2.0, "totalWeightedRefinedPrediction": 0.14,
         "totalWeightedLabel": 1.0},
        {"numWeightedExamples": 1.0, "totalWeightedRefinedPrediction": 0.9,
         "totalWeightedLabel": 1.0},
        {"numWeightedExamples": 0.0},
    ]}}
    bins = report.calibration_bins(plot)
    assert [(round(p, 3), round(o, 3), n) for p, o, n in bins] == [
        (0.06, 0.25, 4.0), (0.9, 1.0, 1.0)]


def _evaluation(baseline: bool, failed: bool) -> report.Evaluation:
    from tensorflow_model_analysis.proto import validation_result_pb2

    validation = validation_result_pb2.ValidationResult(validation_ok=not failed)
    if failed:
        per_slice = validation.metric_validations_per_slice.add()
        per_slice.failures.add().metric_key.name = "auc"
    config = {"metricsSpecs": [{"metrics": [{"className": "AUC", "perSliceThresholds": [{
        "slicingSpecs": [{}], "threshold": {
            "valueThreshold": {"lowerBound": 0.95},
            "changeThreshold": {"absolute": -0.01, "direction": "HIGHER_IS_BETTER"}}}]}]}]}
    candidate = {(): {"auc": 0.94, "auc_diff": 0.02, "example_count": 10.0}}
    base = {(): {"auc": 0.92, "example_count": 10.0}} if baseline else {}
    return report.Evaluation("/nowhere", config, candidate, base, {}, {}, validation)


def test_blessing_rules_show_pass_fail_and_unchecked():
    checks = report.threshold_checks(_evaluation(baseline=False, failed=True))
    assert [(c.metric, c.value, c.passed) for c in checks] == [
        ("auc", 0.94, False), ("auc", 0.02, None)]
    checks = report.threshold_checks(_evaluation(baseline=True, failed=False))
    assert [c.passed for c in checks] == [True, True]


def test_baseline_section_tabulates_the_change():
    text = report.section_baseline(_evaluation(baseline=True, failed=False), "/m/1")
    cells = re.findall(r"<td>(.*?)</td>", text)
    assert cells[cells.index("AUC"):cells.index("AUC") + 4] == ["AUC", "0.9400", "0.9200",
                                                                 "0.0200"]
    assert "No baseline" in report.section_baseline(_evaluation(False, False), None)


# -- a real browser ---------------------------------------------------------------------------
_PROBE = """<script>
window.addEventListener("load", function () {
  var images = Array.prototype.map.call(document.images, function (i) {
    return {src: i.getAttribute("src"), ok: i.complete && i.naturalWidth > 0};
  });
  var sections = Array.prototype.map.call(document.querySelectorAll("section[id]"),
    function (s) { return {id: s.id, height: s.offsetHeight}; });
  var pre = document.createElement("pre");
  pre.id = "probe";
  pre.textContent = JSON.stringify({images: images, sections: sections});
  document.body.appendChild(pre);
});
</script>"""


def _browser() -> str | None:
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


@pytest.mark.skipif(
    _browser() is None,
    reason="headless Chromium not found (Debian: apt-get install chromium; .ci/run installs "
    "it); the report itself is still checked by the other tests",
)
@pytest.mark.e2e
def test_headless_chromium_loads_every_image_and_section(page_path: Path, tmp_path: Path):
    browser = _browser()
    copy = tmp_path / "report"
    shutil.copytree(page_path.parent, copy)
    broken = '<img src="img/does-not-exist.png" alt="control">'  # the probe must catch this
    probe = copy / "probe.html"
    probe.write_text(page_path.read_text(encoding="utf-8")
                     .replace("</body>", f"{broken}{_PROBE}</body>"), encoding="utf-8")
    result = subprocess.run(
        [browser, *BROWSER_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
         "--virtual-time-budget=15000", "--dump-dom", probe.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    match = re.search(r'<pre id="probe">(.*?)</pre>', result.stdout, re.S)
    assert match, f"the page did not finish loading:\n{result.stderr[-2000:]}"
    found = json.loads(html.unescape(match.group(1)))
    images = {i["src"]: i["ok"] for i in found["images"]}
    assert images.pop("img/does-not-exist.png") is False
    assert images and all(images.values()), [src for src, ok in images.items() if not ok]
    sections = {s["id"]: s["height"] for s in found["sections"]}
    assert list(sections) == [section_id for section_id, _ in report.SECTIONS]
    assert all(height > 0 for height in sections.values()), sections


def test_selection_section_shows_chance_and_the_rule(tmp_path: Path):
    """The numbers FeatureSelection records for each decision, and its rule."""
    from review.report.plots import Images
    from review.report.sections import section_selection

    selection = {"selected": ["payment_type"], "rows_measured": 6000,
                 "rule": {"min_information": 0.008, "significance": 0.01, "permutations": 100},
                 "decisions": [
                     {"feature": "payment_type", "selected": True, "reason": "kept",
                      "presence": 1.0, "information_bits": 0.47},
                     {"feature": "dropoff_census_tract", "selected": False, "reason": "< 0.008",
                      "presence": 0.7, "information_bits": 0.005, "conditional_bits": 0.0074,
                      "chance_bits": 0.0028, "p_value": 0.0099}]}
    text = section_selection(selection, Images(str(tmp_path)))
    assert "by chance" in text and "p &le; 0.01" in text and "0.008 bits" in text
    cells = re.findall(r"<td>(.*?)</td>", text)
    tract = cells.index("<b>dropoff_census_tract</b>")
    assert cells[tract + 5:tract + 8] == ["0.0074", "0.0028", "0.010"]
