"""ExampleGen's memory does not grow with its input (issue 26).

The streaming conversion runs in a fresh subprocess on 200,000 and on
2,000,000 resampled taxi rows; the larger input may not take more than
`MARGIN` more peak memory (the kernel's `ru_maxrss` of that process). To
show at 2M rows what happens at 100M, the subprocess scales the layout down
in proportion: at most 4 spilled shards per split (not up to 1,024) and 16 MiB of
examples shuffled in memory (not 64 MiB), so 2M rows give spilled shards
of ~200 MB, as 100M rows do with the real settings; and blocks of 1 MiB of
CSV (not 8 MiB), so that pass 2 reaches its steady state (several blocks in
flight) on the small input too.

Measured once on a loaded machine (2026-12-07): 954 MiB on 200k rows, 985
MiB on 2M; the pass 3 of before (whole spilled shards shuffled in memory)
peaked at 2,176 MiB on the same 2M rows.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import data

ROOT = Path(__file__).resolve().parent.parent
MARGIN = 128 * 1024**2
SCRIPT = """
import json, resource, sys
import numpy as np
from pipeline.components import csv_columns, csv_example_gen, csv_shuffle
csv_columns.BLOCK_BYTES = 1024**2
csv_columns.MAX_SHARDS = 4
csv_columns.MAX_SPILL_FILES = 4
csv_shuffle.SHUFFLE_MEMORY_BYTES = 16 * 1024**2
csv_shuffle.OUTPUT_SHARD_BYTES = 4 * 1024**2
known = csv_example_gen.schema_column_types(sys.argv[3])
counts = csv_columns.convert(
    [sys.argv[1]], [sys.argv[2] + "/train", sys.argv[2] + "/eval"], np.array([4, 5]), known
)
print(json.dumps({"rows": sum(counts),
                  "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""


def _peak(csv_path: str, out: Path) -> int:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, csv_path, str(out), str(ROOT / "schema" / "schema.pbtxt")],
        capture_output=True, text=True, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])["peak"]


@pytest.mark.e2e
def test_example_gens_peak_memory_does_not_grow_with_the_input(tmp_path: Path):
    small = data.prepare_dataset(tmp_path / "work", 200_000)
    large = data.prepare_dataset(tmp_path / "work", 2_000_000)
    small_peak = _peak(str(Path(small.data_root) / "data.csv"), tmp_path / "small")
    large_peak = _peak(str(Path(large.data_root) / "data.csv"), tmp_path / "large")
    assert large_peak <= small_peak + MARGIN, (
        f"peak {large_peak / 2**20:.0f} MiB on 2M rows, {small_peak / 2**20:.0f} MiB on 200k"
    )
