"""README's "Project layout" matches the tree: every entry exists, every module is listed."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Packages whose every module the layout names (benchmarks/ and tests/ are listed whole).
PACKAGES = ("local", "review", "review/report", "pipeline", "pipeline/components", "metadata",
            "models", "serving", "orchestrators", "monitoring", "options")


def layout_paths() -> list[str]:
    """The paths the layout block names, folders nested by indentation."""
    text = (ROOT / "README.md").read_text()
    block = text.split("## Project layout", 1)[1].split("```", 2)[1]
    paths, stack = [], []  # stack: (indent, folder)
    for line in block.splitlines():
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        name = line.split()[0]
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = "".join(folder for _, folder in stack) + name
        paths.append(path.rstrip("/"))
        if name.endswith("/"):
            stack.append((indent, name))
    return paths


def test_every_entry_of_the_layout_exists():
    missing = [p for p in layout_paths() if not (ROOT / p).exists()]
    assert missing == []


def test_every_module_of_the_packages_is_in_the_layout():
    listed = set(layout_paths())
    modules = [str(p.relative_to(ROOT)) for package in PACKAGES
               for p in sorted((ROOT / package).glob("*.py"))
               if not re.match(r"__(init|main)__\.py", p.name)]
    assert [m for m in modules if m not in listed] == []
