"""The report's pictures: matplotlib figures saved as PNGs next to the page.

Each function takes data already read (`review.report.data`) and returns the
image's path relative to the page, or the numbers a plot is made of (bars,
ROC points, calibration bins), which the tests check without drawing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from review.report.data import METRIC_LABELS

IMAGE_DIR = "img"


@dataclass(frozen=True)
class Image:
    """A saved PNG: its path relative to the page, and its alt text."""

    src: str
    alt: str


class Images:
    """Saves matplotlib figures as PNGs in the page's image folder."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        os.makedirs(os.path.join(folder, IMAGE_DIR), exist_ok=True)

    def save(self, figure, name: str, alt: str) -> Image:
        import matplotlib.pyplot as plt

        relative = f"{IMAGE_DIR}/{name}.png"
        figure.savefig(os.path.join(self.folder, relative), dpi=100, bbox_inches="tight")
        plt.close(figure)
        return Image(relative, alt)


def _pyplot():
    """pyplot on the Agg backend: no display needed, same PNGs everywhere."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 8, "axes.spines.top": False, "axes.spines.right": False})
    return plt


def _histogram(num_stats, kind: int):
    return next((h for h in num_stats.histograms if h.type == kind), None)


def numeric_histogram(num_stats) -> tuple[list[tuple[float, float, float]], str]:
    """Bars (left, width, height) for a numeric feature, and a caption.

    TFDV keeps an equal-width and an equal-count (decile) histogram. The
    equal-width one is shown unless one bucket holds most values (fare,
    trip_miles: a few huge outliers squash the rest into one bar); then the
    deciles are drawn as densities, a decile of identical values as a spike,
    and the axis is cut a little past the 9th decile so the bulk is visible.
    """
    from tensorflow_metadata.proto.v0 import statistics_pb2

    standard = _histogram(num_stats, statistics_pb2.Histogram.STANDARD)
    quantiles = _histogram(num_stats, statistics_pb2.Histogram.QUANTILES)
    if standard is None or not standard.buckets:
        return [], "no histogram"
    total = sum(b.sample_count for b in standard.buckets) or 1.0
    if max(b.sample_count for b in standard.buckets) / total <= 0.8 or quantiles is None:
        return [(b.low_value, b.high_value - b.low_value, b.sample_count / total)
                for b in standard.buckets], "equal-width buckets"
    return _decile_bars(quantiles.buckets)


def _decile_bars(buckets) -> tuple[list[tuple[float, float, float]], str]:
    if buckets[0].low_value == buckets[-1].high_value:
        value = buckets[0].low_value
        return [(value - 0.5, 1.0, 1.0)], f"every value is {value:.6g}"
    inner = [b.low_value for b in buckets[1:]]
    lo, hi = buckets[0].low_value, buckets[-1].high_value
    cut = min(hi, inner[-1] + 0.5 * (inner[-1] - inner[0])) if inner else hi
    span = (cut - lo) or 1.0
    total = sum(b.sample_count for b in buckets) or 1.0
    bars = []
    for b in buckets:
        share = b.sample_count / total
        width = min(b.high_value, cut) - b.low_value
        if b.low_value >= cut:
            continue
        if width <= span * 0.01:  # a decile of (nearly) one value: a spike
            bars.append((b.low_value - span * 0.005, span * 0.01, share / 0.01))
        else:
            bars.append((b.low_value, width, share * span / (b.high_value - b.low_value)))
    caption = "deciles as densities"
    if cut < hi:
        caption += f"; axis cut at {cut:.4g} (max {hi:.4g})"
    return bars, caption


def feature_plot(images: Images, name: str, stats) -> tuple[Image, str]:
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(2.8, 1.1))
    if stats.HasField("string_stats"):
        top = list(stats.string_stats.top_values)[:6][::-1]
        axis.barh([t.value[:18] or "(empty)" for t in top], [t.frequency for t in top],
                  color="#4c72b0")
        axis.tick_params(axis="y", labelsize=6)
        caption = f"top {len(top)} of {stats.string_stats.unique} values"
    else:
        bars, caption = numeric_histogram(stats.num_stats)
        for left, width, height in bars:
            axis.bar(left, height, width=width, align="edge", color="#4c72b0")
        axis.set_yticks([])
    return images.save(figure, f"feature_{name}", f"histogram of {name}"), caption


def selection_plot(decisions: list[dict], images: Images) -> Image | None:
    measured = [d for d in decisions if d.get("information_bits") is not None]
    if not measured:
        return None
    plt = _pyplot()
    measured.sort(key=lambda d: d["information_bits"])
    figure, axis = plt.subplots(figsize=(6, 0.22 * len(measured) + 0.6))
    names = [d["feature"] for d in measured]
    axis.barh(names, [d["information_bits"] for d in measured], color="#cccccc",
              label="information about the label")
    axis.barh(names, [d.get("conditional_bits") or 0 for d in measured],
              color=["#4c72b0" if d["selected"] else "#dd8452" for d in measured],
              label="beyond the anchor (blue: kept, orange: dropped)")
    axis.set_xlabel("bits")
    axis.legend(loc="lower right", fontsize=7, frameon=False)
    return images.save(figure, "feature_selection", "information per feature")


def training_plot(history: dict, steps: int | None, images: Images) -> Image:
    plt = _pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(7, 2.4))
    for axis, metric in zip(axes, ("loss", "accuracy"), strict=True):
        for key, style in ((metric, "-o"), (f"val_{metric}", "--s")):
            values = history.get(key)
            if not values:
                continue
            per_point = (steps / len(values)) if steps else 1
            x = [(i + 1) * per_point for i in range(len(values))]
            label = "eval split" if key.startswith("val_") else "training batches"
            axis.plot(x, values, style, markersize=3, label=label)
        axis.set_title(metric)
        axis.set_xlabel("training step" if steps else "epoch")
        axis.legend(fontsize=7, frameon=False)
    return images.save(figure, "training_curve", "training and evaluation loss and accuracy")


def slice_plot(feature: str, slices: list, images: Images) -> Image:
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(7, 2.2))
    labels = [str(value)[:12] for value, _ in slices]
    x = range(len(slices))
    counts = axis.twinx()
    counts.bar(x, [m.get("example_count", 0) for _, m in slices], color="#dddddd")
    counts.set_ylabel("examples")
    axis.set_zorder(counts.get_zorder() + 1)
    axis.patch.set_visible(False)
    for name, style in (("auc", "-o"), ("binary_accuracy", "-s")):
        axis.plot(x, [m.get(name, float("nan")) for _, m in slices], style, markersize=3,
                  label=METRIC_LABELS[name])
    axis.set_xticks(list(x), labels, rotation=45 if len(labels) > 8 else 0, fontsize=7)
    axis.set_ylim(0, 1.02)
    axis.legend(loc="lower left", fontsize=7, frameon=False)
    axis.set_xlabel(feature)
    return images.save(figure, f"slices_{feature}", f"AUC and accuracy per {feature}")


def roc_points(plot: dict) -> tuple[list[float], list[float]]:
    """(false-positive rates, true-positive rates) from TFMA's confusion matrices."""
    fpr, tpr = [], []
    for m in plot.get("confusionMatrixAtThresholds", {}).get("matrices", []):
        tp, fp = m.get("truePositives", 0.0), m.get("falsePositives", 0.0)
        tn, fn = m.get("trueNegatives", 0.0), m.get("falseNegatives", 0.0)
        if tp + fn > 0 and fp + tn > 0:
            tpr.append(tp / (tp + fn))
            fpr.append(fp / (fp + tn))
    return fpr, tpr


def calibration_bins(plot: dict, bins: int = 10) -> list[tuple[float, float, float]]:
    """(mean prediction, observed rate, examples) in `bins` equal prediction ranges."""
    sums = [[0.0, 0.0, 0.0] for _ in range(bins)]
    for bucket in plot.get("calibrationHistogramBuckets", {}).get("buckets", []):
        n = bucket.get("numWeightedExamples", 0.0)
        if not n:
            continue
        predicted = bucket.get("totalWeightedRefinedPrediction", 0.0) / n
        index = min(bins - 1, max(0, int(predicted * bins)))
        sums[index][0] += bucket.get("totalWeightedRefinedPrediction", 0.0)
        sums[index][1] += bucket.get("totalWeightedLabel", 0.0)
        sums[index][2] += n
    return [(p / n, label / n, n) for p, label, n in sums if n]


def roc_calibration_plot(images: Images, curves: list[tuple[str, dict, float | None]],
                         plot: dict) -> Image:
    """ROC curves of (label, plot, AUC) and the candidate's calibration from `plot`."""
    plt = _pyplot()
    figure, (roc, calibration) = plt.subplots(1, 2, figsize=(7, 3.2))
    for label, curve, auc in curves:
        fpr, tpr = roc_points(curve)
        roc.plot(fpr, tpr, "-" if label == "candidate" else "--",
                 label=f"{label} (AUC {auc:.4f})" if auc is not None else label)
    roc.plot([0, 1], [0, 1], ":", color="grey")
    roc.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC curve")
    roc.legend(fontsize=7, frameon=False, loc="lower right")
    bins = calibration_bins(plot)
    calibration.plot([0, 1], [0, 1], ":", color="grey")
    calibration.scatter([b[0] for b in bins], [b[1] for b in bins],
                        s=[max(8, 80 * b[2] / max(x[2] for x in bins)) for b in bins])
    calibration.plot([b[0] for b in bins], [b[1] for b in bins], "-", linewidth=1)
    calibration.set(xlabel="mean predicted probability", ylabel="observed big-tipper rate",
                    title="calibration (10 bins; dot size: examples)", xlim=(0, 1), ylim=(0, 1))
    return images.save(figure, "roc_calibration", "ROC curve and calibration plot")
