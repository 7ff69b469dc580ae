"""`python -m benchmarks.monitoring`: false alarms and detections of monitoring.check's checks.

Method (docs/monitoring.md has the results):

* "Training": a random 80 % of the shipped rows (data/data.csv), as the
  pipeline's train split, with statistics computed as StatisticsGen computes
  them (benchmarks/drift.py's record batches: empty cells as empty lists).
* Request windows of 1k, 10k and 100k rows are drawn with replacement from
  all shipped rows (the population the training rows are a sample of), built
  as the client sends them: a missing cell is an absent feature, no `tips`.
* Each window goes through the check's own functions (monitoring/checks.py):
  schema anomalies in the SERVING environment, training-serving skew, and
  drift against the previous window that passed. A same-distribution window
  with any finding is a false alarm.
* Shifts, each applied to fresh windows: a category mix change (a third of
  cash trips paid by card), a numeric scale change (fare x1.2), a column that
  stops arriving (trip_seconds absent), a unit change (fare in cents).
* The served-probability check is not simulated here (it needs a trained
  model); its bar is the same Kolmogorov-Smirnov noise bound at 1/1000.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from benchmarks import tables
from benchmarks.drift import SCHEMA, fares_up, load_rows, more_credit_cards, to_record_batch

DEFAULT_SIZES = (1_000, 10_000, 100_000)
DEFAULT_WINDOWS = (200, 100, 20)
DEFAULT_SHIFT_WINDOWS = (10, 10, 5)
DEFAULT_OUT = "/tmp/taxi-monitoring-bench.json"


def fare_in_cents(rows: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Unit change: fares sent in cents."""
    rows = rows.copy()
    rows["fare"] = (rows["fare"] * 100).round(0)
    return rows


def trip_seconds_stops(rows: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """A column that stops arriving: trip_seconds absent from every request."""
    return rows.drop(columns=["trip_seconds"])


SHIFTS = {
    "payment_mix": more_credit_cards,
    "fare_x1.2": fares_up(1.2),
    "trip_seconds_absent": trip_seconds_stops,
    "fare_in_cents": fare_in_cents,
}


def request_batch(frame: pd.DataFrame, types: dict[str, pa.DataType]) -> pa.RecordBatch:
    """Rows as serialized requests decode: a missing cell is an absent (null) feature."""
    arrays, names = [], []
    for name, kind in types.items():
        if name == "tips" or name not in frame:
            continue
        column = frame[name]
        if pa.types.is_binary(kind):
            cells = [None if pd.isna(v) else [str(v).encode()] for v in column]
        else:
            cast = float if pa.types.is_floating(kind) else int
            cells = [None if pd.isna(v) else [cast(v)] for v in column]
        arrays.append(pa.array(cells, pa.list_(kind)))
        names.append(name)
    return pa.RecordBatch.from_arrays(arrays, names)


def _statistics(batch: pa.RecordBatch):
    import tensorflow_data_validation as tfdv
    from tensorflow_data_validation.statistics import stats_impl

    return stats_impl.generate_statistics_in_memory(batch, tfdv.StatsOptions())


def _findings(window, training, previous, schema) -> list[dict]:
    from monitoring import checks

    return (checks.schema_findings(window, schema)
            + checks.skew_findings(window, training, schema)
            + checks.drift_findings(window, previous, schema))


def _key(found: list[dict]) -> list[str]:
    return sorted({f"{f['feature']}:{f['check']}" for f in found})


def measure(sizes, windows, shift_windows, seed: int) -> dict:
    import tensorflow_data_validation as tfdv

    rows, types = load_rows()
    types = {n: t for n, t in types.items() if n in rows}
    schema = tfdv.load_schema_text(str(SCHEMA))
    rng = np.random.default_rng(seed)
    train = rows.iloc[rng.permutation(len(rows))[: round(len(rows) * 0.8)]]
    training = _statistics(to_record_batch(train, types))
    results = {}
    for size, count, shifted in zip(sizes, windows, shift_windows, strict=True):
        started = time.time()
        previous, alarms, reasons = None, 0, Counter()
        for _ in range(count):
            window = _statistics(request_batch(rows.iloc[rng.integers(0, len(rows), size)], types))
            found = _findings(window, training, previous, schema)
            if found:
                alarms += 1
                reasons.update(_key(found))
            else:
                previous = window
        detected = {}
        for name, shift in SHIFTS.items():
            hits, how = 0, Counter()
            for _ in range(shifted):
                frame = shift(rows.iloc[rng.integers(0, len(rows), size)], rng)
                found = _findings(_statistics(request_batch(frame, types)), training, previous,
                                  schema)
                hits += bool(found)
                how.update(_key(found))
            detected[name] = {"windows": shifted, "refused": hits, "findings": dict(how)}
        results[str(size)] = {"windows": count, "false_alarms": alarms,
                              "false_alarm_findings": dict(reasons), "shifts": detected,
                              "seconds": round(time.time() - started, 1)}
        print(f"{size:,} requests: {alarms}/{count} clean windows refused; " + ", ".join(
            f"{n} {d['refused']}/{d['windows']}" for n, d in detected.items()), flush=True)
    return results


def markdown(results: dict) -> str:
    rows = [[f"{int(size):,}", r["windows"],
             f"{r['false_alarms']} ({r['false_alarms'] / r['windows']:.1%})",
             *(f"{d['refused']}/{d['windows']}" for d in r["shifts"].values())]
            for size, r in results.items()]
    headers = ["requests per window", "clean windows", "false alarms", *SHIFTS]
    return tables.markdown_table(headers, rows)


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.monitoring", description=__doc__
                                     .splitlines()[0])
    parser.add_argument("--sizes", type=_ints, default=list(DEFAULT_SIZES),
                        help="requests per window, comma-separated (default: 1000,10000,100000)")
    parser.add_argument("--windows", type=_ints, default=list(DEFAULT_WINDOWS),
                        help="clean windows per size (default: 200,100,20)")
    parser.add_argument("--shift-windows", type=_ints, default=list(DEFAULT_SHIFT_WINDOWS),
                        help="windows per size and shift (default: 10,10,5)")
    parser.add_argument("--seed", type=int, default=24)
    parser.add_argument("--out", default=DEFAULT_OUT, help="JSON results (default: %(default)s)")
    args = parser.parse_args(argv)
    if not len(args.sizes) == len(args.windows) == len(args.shift_windows):
        parser.error("--sizes, --windows and --shift-windows need one value per size")
    results = measure(args.sizes, args.windows, args.shift_windows, args.seed)
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(markdown(results))
    print(f"results: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
