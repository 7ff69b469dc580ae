"""Where and with what a benchmark ran: a number means little without it."""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

import psutil

# What `python local_runner.py` executes from the repo: if any of it changes
# while a benchmark runs, its runs no longer measure one version of the code.
RUN_SOURCES = (
    "local_runner.py", "local", "pipeline", "metadata", "review", "models", "schema", "serving",
)

PACKAGES = (
    "tfx",
    "tensorflow",
    "tf-keras",
    "apache-beam",
    "tensorflow-transform",
    "tensorflow-data-validation",
    "tensorflow-model-analysis",
    "tfx-bsl",
    "ml-metadata",
)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine_info() -> dict:
    """CPU, cores (all and usable by this process), RAM, OS."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "cpu": cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": usable,
        "physical_cores": psutil.cpu_count(logical=False),
        "ram_bytes": psutil.virtual_memory().total,
        "os": platform.platform(),
    }


def versions() -> dict[str, str]:
    """Python and the TFX stack, read from package metadata (nothing is imported)."""
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def git_revision(root: Path) -> str:
    """Short commit of the repo, marked when the working tree differs from it."""
    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)

    head = git("rev-parse", "--short", "HEAD")
    if head.returncode != 0:
        return "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no").stdout.strip()
    return head.stdout.strip() + (" + uncommitted changes" if dirty else "")


def source_fingerprint(root: Path, sources: tuple[str, ...] = RUN_SOURCES) -> str:
    """Hash of every file our pipeline runs from, committed or not.

    A shared working tree can change under a benchmark (a teammate commits or
    saves a file between rounds); comparing this before each run catches it,
    which `git_revision` alone does not for uncommitted edits.
    """
    digest = hashlib.sha256()
    for name in sources:
        path = root / name
        files = [path] if path.is_file() else sorted(path.rglob("*")) if path.is_dir() else []
        for file in files:
            if not file.is_file() or "__pycache__" in file.parts or file.suffix == ".pyc":
                continue
            digest.update(str(file.relative_to(root)).encode() + b"\0")
            digest.update(file.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def load_average() -> float:
    """1-minute load: shows how busy a shared machine was around a run."""
    return os.getloadavg()[0]
