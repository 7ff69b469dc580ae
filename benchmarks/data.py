"""Benchmark input: the shipped CSV as-is, or a deterministic resample of it.

Both pipelines must read byte-identical input, and a number measured on one
machine must be reproducible on another, so the rows are drawn with
`random.Random(seed).choices` (stable across CPython versions and platforms)
and the file's sha256 is recorded with every result.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SOURCE_CSV = PROJECT_ROOT / "data" / "data.csv"
DEFAULT_SEED = 3  # fixed: every benchmark of a given row count reads the same rows
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Dataset:
    """A generated input: `data_root` holds exactly one CSV, as CsvExampleGen wants."""

    data_root: str
    rows: int
    seed: int | None  # None: the shipped file, copied as-is
    source_sha256: str
    sha256: str
    size_bytes: int

    @property
    def description(self) -> str:
        if self.seed is None:
            return f"{self.rows:,} rows (data/data.csv as shipped)"
        return f"{self.rows:,} rows (data/data.csv resampled with replacement, seed {self.seed})"


def split_csv(text: str) -> tuple[str, list[str]]:
    """Header and data lines of a CSV whose records each fit on one line.

    Resampling works on lines so rows are copied byte for byte; that is only
    right if no quoted field spans lines, which is checked here.
    """
    lines = [line for line in text.split("\n") if line]
    if not lines:
        raise ValueError("empty CSV")
    records = sum(1 for _ in csv.reader(io.StringIO(text)))
    if records != len(lines):
        raise ValueError(f"CSV has {records} records on {len(lines)} lines; cannot resample lines")
    return lines[0], lines[1:]


def resample(rows: Sequence[str], count: int, seed: int) -> list[str]:
    """`count` rows drawn uniformly with replacement; same seed, same rows everywhere."""
    if count < 1:
        raise ValueError(f"row count must be positive, got {count}")
    if not rows:
        raise ValueError("no rows to resample")
    return random.Random(seed).choices(rows, k=count)


def render_csv(header: str, rows: Sequence[str]) -> str:
    return "\n".join([header, *rows]) + "\n"


def write_csv(path: Path, header: str, rows: Sequence[str], chunk_rows: int = 100_000) -> None:
    """`render_csv(header, rows)` written in chunks: 10M rows as one string would
    need several GiB (the text, then its encoded copy)."""
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(header + "\n")
        for start in range(0, len(rows), chunk_rows):
            f.write("\n".join(rows[start : start + chunk_rows]) + "\n")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def dataset_dir(work_dir: Path, rows: int, seed: int | None, source_sha256: str) -> Path:
    """One folder per (row count, seed, source file), so regenerated inputs never mix."""
    name = f"rows-{rows}-shipped" if seed is None else f"rows-{rows}-seed-{seed}"
    return work_dir / "data" / f"{name}-{source_sha256[:12]}"


def prepare_dataset(
    work_dir: Path, rows: int, seed: int = DEFAULT_SEED, source: Path = SOURCE_CSV
) -> Dataset:
    """The input folder for `rows` rows, generated once and reused afterwards.

    A row count equal to the shipped file's is the shipped file itself (what the
    issue's 15,002-row goals refer to), not a resample that would repeat ~37 %
    of the rows and drop as many.
    """
    text = source.read_text(encoding="utf-8")
    source_sha = hashlib.sha256(text.encode("utf-8")).hexdigest()
    header, source_rows = split_csv(text)
    used_seed = None if rows == len(source_rows) else seed
    folder = dataset_dir(work_dir, rows, used_seed, source_sha)
    # CsvExampleGen reads every file under its input folder, so the CSV gets a
    # folder of its own and the manifest sits next to that folder.
    manifest = folder / MANIFEST
    if manifest.exists():
        return Dataset(**json.loads(manifest.read_text()))
    data_root = folder / "csv"
    data_root.mkdir(parents=True, exist_ok=True)
    csv_path = data_root / "data.csv"
    selected = source_rows if used_seed is None else resample(source_rows, rows, used_seed)
    partial = folder / "data.csv.partial"  # moved into data_root only when complete
    write_csv(partial, header, selected)
    os.replace(partial, csv_path)
    dataset = Dataset(
        data_root=str(data_root),
        rows=rows,
        seed=used_seed,
        source_sha256=source_sha,
        sha256=sha256_of(csv_path),
        size_bytes=csv_path.stat().st_size,
    )
    tmp_manifest = folder / f"{MANIFEST}.partial"
    tmp_manifest.write_text(json.dumps(asdict(dataset), indent=2))
    os.replace(tmp_manifest, manifest)
    return dataset
