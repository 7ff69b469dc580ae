"""`python -m benchmarks.example_gen CSV [--schema schema.pbtxt]`: ExampleGen's
streaming conversion alone, with its memory per pass.

Runs `csv_columns.convert` on one CSV file in this process (4:1 train/eval
buckets, output in a temporary folder), samples this process's RSS every
0.25 s, and prints one JSON line: rows per split, wall and CPU seconds, RSS
after the imports, the kernel's peak (`ru_maxrss`), the sampled peak during
each pass (type pass, pass 2 "spill", pass 3 "write_shuffled") and the output
shards per split. Without `--schema` every column gets a type pass.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import threading
import time

import numpy as np
import psutil

from pipeline.components import csv_columns, csv_example_gen

PASSES = ("infer_types", "spill", "write_shuffled")


def profile(csv_path: str, schema: str | None) -> dict:
    process, started, phase = psutil.Process(), time.time(), ["imports done"]
    peaks: dict[str, int] = {}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peaks[phase[0]] = max(peaks.get(phase[0], 0), process.memory_info().rss)
            stop.wait(0.25)

    for name in PASSES:  # convert() looks each pass up on the module
        real = getattr(csv_columns, name)

        def timed(*args, _real=real, _name=name, **kwargs):
            phase[0] = _name
            try:
                return _real(*args, **kwargs)
            finally:
                phase[0] = f"after {_name}"

        setattr(csv_columns, name, timed)
    base = process.memory_info().rss
    threading.Thread(target=sample, daemon=True).start()
    with tempfile.TemporaryDirectory(prefix="example_gen_bench-") as out:
        dirs = [os.path.join(out, "train"), os.path.join(out, "eval")]
        known = csv_example_gen.schema_column_types(schema)
        counts = csv_columns.convert([csv_path], dirs, np.array([4, 5]), known)
        shards = [len(os.listdir(d)) for d in dirs]
    stop.set()
    mib = 1024**2
    return {
        "rows": counts, "wall_s": round(time.time() - started, 1),
        "cpu_s": round(sum(os.times()[:2]), 1), "rss_after_imports_mib": base // mib,
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
        "sampled_peak_by_pass_mib": {k: v // mib for k, v in peaks.items()},
        "shards": shards, "load": os.getloadavg(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.example_gen")
    parser.add_argument("csv")
    parser.add_argument("--schema", help="the curated schema: its columns get no type pass")
    args = parser.parse_args(argv)
    print(json.dumps(profile(args.csv, args.schema)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
