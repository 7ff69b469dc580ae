"""The benchmarks' Markdown tables, drawn by tabulate (pinned) in one format.

Cells arrive already formatted ("0.8000", "1,000", "0.50x", "–") and are printed
as given: tabulate's number parsing would turn "0.8000" into "0.8". Tables go
into docs/*.md, so they are Markdown pipe tables; tabulate's "pipe" format is
its "github" format plus the alignment colons that keep number columns
right-aligned where GitHub renders them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from tabulate import tabulate


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[object]],
                   right: Iterable[int] = ()) -> str:
    """A Markdown pipe table; columns numbered in `right` are right-aligned."""
    right = set(right)
    align = ["right" if i in right else "left" for i in range(len(headers))]
    return tabulate([[str(c) for c in row] for row in rows], headers=list(headers),
                    tablefmt="pipe", disable_numparse=True, colalign=align)
