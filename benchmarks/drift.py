"""`python -m benchmarks.drift`: how often the gate's drift check cries wolf, and what it catches.

Method (docs/drift.md has the results):

* Every drop is a sample of the shipped rows (data/data.csv). A span of N rows
  gives the gate a train split of 4/5 of N (ExampleGen's 4:1 hash split), so
  each sample has 0.8 N rows. When two such samples fit in the shipped rows
  they are drawn disjoint, without replacement (a random split, as in the
  issue); larger ones are drawn with replacement.
* Same distribution: `--pairs` independent (baseline, new drop) pairs per span
  size. A refusal here is a false alarm.
* Shifts (`SHIFTS`): `--shift-trials` new drops per size and shift, each built
  from a fresh sample and compared with one of the baselines above.
* Statistics come from TFDV's `generate_statistics_in_memory` with
  `StatsOptions()` defaults, on Arrow record batches typed the way our
  CsvExampleGen types them: the generators and options StatisticsGen runs
  (tests/test_drift.py checks this against a pipeline run's StatisticsGen
  output). They are cached under --work-dir, so re-scoring after a threshold
  change (`--score-only`) takes seconds.
* A drop is refused when the gate would refuse it: schema anomalies (what
  ExampleValidator reports), presence below the schema's minimum, or drift
  (`pipeline.components.drift.drift_findings`). The same statistics are also scored
  with TFDV's comparators of another schema (`--old-schema FILE`, e.g. the
  schema before issue 16: `git show main:schema/schema.pbtxt > FILE`), drift
  findings only, for comparison.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from benchmarks import tables

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SOURCE_CSV = PROJECT_ROOT / "data" / "data.csv"
SCHEMA = PROJECT_ROOT / "schema" / "schema.pbtxt"
DEFAULT_WORK_DIR = "/tmp/taxi-drift-bench"
DEFAULT_SIZES = (2_000, 5_000, 20_000, 50_000)
TRAIN_FRACTION = 0.8  # 4 of ExampleGen's 5 hash buckets


def load_rows() -> tuple[pd.DataFrame, dict[str, pa.DataType]]:
    """The shipped rows, and each column's type as our CsvExampleGen infers it."""
    from pipeline.components.csv_columns import FLOAT, infer_types, read_header

    names = read_header(str(SOURCE_CSV))
    # Floats reach the examples as float32 (pipeline/components/csv_columns.py `_cast`).
    types = {name: pa.float32() if kind == FLOAT else kind
             for name, kind in infer_types([str(SOURCE_CSV)], names, names).items()}
    # Only empty cells are missing (pandas would also read "NA", "null"... as missing).
    return pd.read_csv(SOURCE_CSV, keep_default_na=False, na_values=[""]), types


def to_record_batch(frame: pd.DataFrame, types: dict[str, pa.DataType]) -> pa.RecordBatch:
    """Rows as CsvExampleGen's examples decode: one-value lists, empty where the cell was."""
    from pipeline.components.csv_columns import _as_value_lists

    arrays = []
    for name, kind in types.items():
        column = frame[name]
        if pa.types.is_binary(kind):
            cells = [None if pd.isna(v) else str(v).encode() for v in column]
            values = pa.array(cells, pa.binary())
        else:
            values = pa.array(column.astype("float64"), from_pandas=True).cast(kind, safe=False)
        arrays.append(_as_value_lists(values))
    return pa.RecordBatch.from_arrays(arrays, list(types))


# -- shifts: each takes (sampled rows, rng) and returns the drifted rows ---------------------
Shift = Callable[[pd.DataFrame, np.random.Generator], pd.DataFrame]


def more_credit_cards(rows: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Payment mix: a third of cash trips paid by card instead (card share 33 % -> ~55 %)."""
    rows = rows.copy()
    cash = np.flatnonzero((rows["payment_type"] == "Cash").to_numpy())
    moved = rng.choice(cash, size=len(cash) // 3, replace=False)
    rows.iloc[moved, rows.columns.get_loc("payment_type")] = "Credit Card"
    return rows


def fares_up(factor: float) -> Shift:
    def shift(rows: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        rows = rows.copy()
        rows["fare"] = (rows["fare"] * factor).round(2)
        return rows

    shift.__doc__ = f"Fare scale: every fare x{factor}."
    return shift


def hours_in_utc(rows: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Shifted time window: trip_start_hour written in UTC (Chicago + 6 h)."""
    rows = rows.copy()
    rows["trip_start_hour"] = (rows["trip_start_hour"] + 6) % 24
    return rows


def blanked(column: str, share: float) -> Shift:
    def shift(rows: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        rows = rows.copy()
        rows.loc[rng.random(len(rows)) < share, column] = np.nan
        return rows

    shift.__doc__ = f"{column}: {share:.0%} of its values empty."
    return shift


SHIFTS: dict[str, Shift] = {
    "payment_mix": more_credit_cards,
    "fare_x1.2": fares_up(1.2),
    "fare_x1.1": fares_up(1.1),
    "hour_utc": hours_in_utc,
    "company_mostly_empty": blanked("company", 0.8),
    "dropoff_tract_30pct_empty": blanked("dropoff_census_tract", 0.3),
}
# The case: span 1 = first half of the file, span 2 = second half (fare p90 34.0 vs
# 21.05): really different, so the gate should refuse it. Only at sizes that fit in a half.
FILE_ORDER = "file_order_halves"


@dataclass
class Sampler:
    rows: pd.DataFrame
    types: dict[str, pa.DataType]
    rng: np.random.Generator

    def indices(self, count: int, pool: np.ndarray, exclude: np.ndarray | None = None):
        if exclude is not None and 2 * count <= len(pool):
            pool = np.setdiff1d(pool, exclude)
        if count <= len(pool) and 2 * count <= len(self.rows):
            return self.rng.choice(pool, size=count, replace=False)
        return self.rng.choice(pool, size=count, replace=True)


def train_rows(span_rows: int) -> int:
    return round(span_rows * TRAIN_FRACTION)


def compute(work: Path, sizes: list[int], pairs: int, shift_trials: int, seed: int) -> None:
    """Statistics of every sample, cached as <work>/stats/<size>/<case>-<i>.pb."""
    import tensorflow_data_validation as tfdv
    from tensorflow_data_validation.statistics import stats_impl

    rows, types = load_rows()
    options = tfdv.StatsOptions()  # StatisticsGen's defaults (the pipeline sets none)
    everything = np.arange(len(rows))
    halves = (everything[: len(rows) // 2], everything[len(rows) // 2 :])
    timings = []
    for size in sizes:
        sampler = Sampler(rows, types, np.random.default_rng([seed, size]))
        folder = work / "stats" / str(size)
        folder.mkdir(parents=True, exist_ok=True)
        count = train_rows(size)

        def save(name: str, frame: pd.DataFrame, folder: Path = folder) -> None:
            path = folder / f"{name}.pb"
            if path.exists():
                return
            start = time.process_time()
            stats = stats_impl.generate_statistics_in_memory(to_record_batch(frame, types), options)
            timings.append(time.process_time() - start)
            path.write_bytes(stats.SerializeToString())

        for i in range(pairs):
            base = sampler.indices(count, everything)
            save(f"base-{i:03d}", rows.iloc[base])
            save(f"same-{i:03d}", rows.iloc[sampler.indices(count, everything, exclude=base)])
            if i < shift_trials:
                fresh = rows.iloc[sampler.indices(count, everything, exclude=base)]
                for name, shift in SHIFTS.items():
                    save(f"{name}-{i:03d}", shift(fresh, sampler.rng))
                if count <= len(halves[0]):
                    save(f"{FILE_ORDER}-base-{i:03d}", rows.iloc[sampler.indices(count, halves[0])])
                    save(f"{FILE_ORDER}-{i:03d}", rows.iloc[sampler.indices(count, halves[1])])
        print(f"span {size:,}: statistics cached in {folder}", flush=True)
    if timings:
        print(f"{len(timings)} statistics computed, median {np.median(timings):.2f} s CPU each")


def load(path: Path):
    from tensorflow_metadata.proto.v0 import statistics_pb2

    stats = statistics_pb2.DatasetFeatureStatisticsList()
    stats.ParseFromString(path.read_bytes())
    return stats


def gate_findings(current, baseline, schema) -> list[dict]:
    """What the gate would refuse the drop for (ExampleValidator + presence + drift)."""
    import tensorflow_data_validation as tfdv

    from pipeline.components import drift, gate

    schema_findings = gate.findings(tfdv.validate_statistics(current, schema), "train")
    schema_findings += gate.presence_findings(current, schema, "train")
    return schema_findings + drift.drift_findings(current, baseline, schema)


def old_findings(current, baseline, old_schema) -> list[dict]:
    """What TFDV's comparators, as the old schema configured them, said (drift only)."""
    import tensorflow_data_validation as tfdv

    from pipeline.components import gate

    anomalies = tfdv.validate_statistics(current, old_schema, previous_statistics=baseline)
    return [f for f in gate.findings(anomalies, "train") if f["type"].startswith("COMPARATOR_")]


def score(work: Path, sizes: list[int], old_schema_path: Path | None) -> dict:
    """Refusal rates per size and case, for the current schema (and the old one)."""
    import tensorflow_data_validation as tfdv

    schema = tfdv.load_schema_text(str(SCHEMA))
    old_schema = tfdv.load_schema_text(str(old_schema_path)) if old_schema_path else None
    results: dict = {}
    for size in sizes:
        folder = work / "stats" / str(size)
        cases = sorted({p.stem.rsplit("-", 1)[0] for p in folder.glob("*.pb")} - {"base"})
        cases = [c for c in cases if not c.endswith("-base")]
        for case in cases:
            refused, old_refused, trials, why = 0, 0, 0, Counter()
            for path in sorted(folder.glob(f"{case}-[0-9]*.pb")):
                index = path.stem.rsplit("-", 1)[1]
                base_name = f"{case}-base-{index}" if case == FILE_ORDER else f"base-{index}"
                if not (folder / f"{base_name}.pb").exists():
                    continue  # an interrupted --compute: its baseline was not written
                current, baseline = load(path), load(folder / f"{base_name}.pb")
                found = gate_findings(current, baseline, schema)
                trials += 1
                refused += bool(found)
                why.update({f"{f['feature']}:{f['type']}" for f in found})
                if old_schema is not None:
                    old_refused += bool(old_findings(current, baseline, old_schema))
            results.setdefault(case, {})[size] = {
                "trials": trials,
                "refused": refused,
                "old_drift_refused": old_refused if old_schema is not None else None,
                "reasons": dict(why.most_common()),
            }
    return results


def markdown(results: dict, sizes: list[int]) -> str:
    """Table: refusals / trials per case and span size (new gate; old drift check)."""
    rows = []
    for case in ["same"] + [c for c in results if c != "same"]:
        cells = [case]
        for size in sizes:
            r = results.get(case, {}).get(size)
            if r is None:
                cells.append("n/a")
                continue
            old = "" if r["old_drift_refused"] is None else f" (old: {r['old_drift_refused']})"
            cells.append(f"{r['refused']}/{r['trials']}{old}")
        rows.append(cells)
    return tables.markdown_table(["drop", *(f"{s:,} rows" for s in sizes)], rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.drift", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work-dir", default=DEFAULT_WORK_DIR)
    parser.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)),
                        help="span sizes in rows, comma-separated (default: %(default)s)")
    parser.add_argument("--pairs", type=int, default=100,
                        help="same-distribution pairs per size (default: %(default)s)")
    parser.add_argument("--shift-trials", type=int, default=10,
                        help="drifted drops per size and shift (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--old-schema", default=None,
                        help="schema whose TFDV comparators to score too, for comparison")
    parser.add_argument("--score-only", action="store_true", help="use cached statistics only")
    args = parser.parse_args(argv)
    work = Path(args.work_dir)
    sizes = [int(s) for s in args.sizes.split(",")]
    if not args.score_only:
        compute(work, sizes, args.pairs, args.shift_trials, args.seed)
    results = score(work, sizes, Path(args.old_schema) if args.old_schema else None)
    (work / "results.json").write_text(json.dumps(results, indent=2))
    print(markdown(results, sizes))
    for case, per_size in results.items():
        for size, r in per_size.items():
            if r["reasons"]:
                print(f"{case} @ {size:,}: {r['reasons']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
