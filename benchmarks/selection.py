"""`python -m benchmarks.selection`: how often feature selection keeps each column, by span size.

Method (results in docs/benchmarks.md, "Feature selection stability"):

* A span of N rows gives FeatureSelection a train split of 4/5 of N
  (ExampleGen's 4:1 hash split), so each sample is 0.8 N rows of the shipped
  data/data.csv, drawn without replacement (at 15,000 rows, 12,000 of the
  15,002: the samples overlap heavily and the rates are near 0 or 1).
* Each sample is decided by `pipeline.components.feature_selection.decide`,
  the function the component runs, with the pipeline's settings
  (`FeatureSelectionSettings`), on TFDV statistics computed with
  StatisticsGen's options and rows typed as our CsvExampleGen types them
  (benchmarks.drift's loaders). No pipeline runs: a sample takes well under
  a second.
* The table gives, per column and size, the share of samples that selected
  it, and the median of the bits it adds beyond the anchor above chance.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from benchmarks import tables

DEFAULT_SIZES = (2_000, 5_000, 7_500, 15_000)
TRAIN_FRACTION = 0.8  # 4 of ExampleGen's 5 hash buckets


def decide_sample(frame, types, rows: np.ndarray, settings) -> list:
    """FeatureSelection's decisions on these rows, as the component makes them."""
    import pyarrow as pa
    import tensorflow_data_validation as tfdv
    from tensorflow_data_validation.statistics import stats_impl

    from benchmarks.drift import to_record_batch
    from pipeline.components import feature_selection

    batch = to_record_batch(frame.iloc[rows], types)
    statistics = stats_impl.generate_statistics_in_memory(batch, tfdv.StatsOptions())
    return feature_selection.decide(
        statistics.datasets[0], pa.Table.from_batches([batch]), settings.min_presence,
        settings.min_information, settings.permutations, settings.significance)


def measure(sizes: tuple[int, ...], samples: int, seed: int, settings) -> dict:
    """{size: {column: {"selected": share, "bits": median bits beyond the anchor}}}."""
    from benchmarks.drift import load_rows

    frame, types = load_rows()
    rng = np.random.default_rng(seed)
    result: dict[int, dict] = {}
    for size in sizes:
        train_rows = min(int(TRAIN_FRACTION * size), len(frame))
        chosen: dict[str, list[bool]] = {}
        bits: dict[str, list[float]] = {}
        for _ in range(samples):
            rows = rng.choice(len(frame), size=train_rows, replace=False)
            for decision in decide_sample(frame, types, rows, settings):
                chosen.setdefault(decision.feature, []).append(decision.selected)
                if decision.conditional_bits is not None:
                    bits.setdefault(decision.feature, []).append(decision.conditional_bits)
        result[size] = {name: {"selected": float(np.mean(flags)),
                               "bits": float(np.median(bits[name])) if name in bits else None}
                        for name, flags in chosen.items()}
        print(f"span {size:,} ({train_rows:,} train rows): {samples} samples done", flush=True)
    return result


def table(result: dict) -> str:
    """Markdown: one row per column, "share selected (median bits beyond the anchor)"."""
    sizes = list(result)
    rows = []
    for name in result[sizes[0]]:
        cells = [name]
        for size in sizes:
            entry = result[size][name]
            bits = "" if entry["bits"] is None else f" ({entry['bits']:.4f})"
            cells.append(f"{entry['selected']:.0%}{bits}")
        rows.append(cells)
    return tables.markdown_table(["column", *(f"{s:,} rows" for s in sizes)], rows)


def main(argv: list[str] | None = None) -> int:
    from pipeline.configs import FeatureSelectionSettings

    parser = argparse.ArgumentParser(prog="python -m benchmarks.selection", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=50, help="samples per size")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="also write the result as JSON here")
    parser.add_argument("--min-information", type=float,
                        help="another bar than the pipeline's (to compare)")
    parser.add_argument("--significance", type=float,
                        help="another significance than the pipeline's (to compare)")
    args = parser.parse_args(argv)
    if args.samples < 1 or min(args.sizes) < 10:
        parser.error("--samples must be positive and every size at least 10")
    settings = FeatureSelectionSettings()
    changes = {"min_information": args.min_information, "significance": args.significance}
    settings = replace(settings, **{k: v for k, v in changes.items() if v is not None})
    started = time.process_time()
    result = measure(tuple(args.sizes), args.samples, args.seed, settings)
    print(f"\nsettings: {settings}; {time.process_time() - started:.0f} s CPU\n")
    print(table(result))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
