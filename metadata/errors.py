"""An error's first line: what every command prints of a failure it reports in one line.

Not ML Metadata, but it lives in the lowest layer so that every package (and
the bare-TensorFlow serving check, which imports nothing heavier) can share
one rule: the message's first line, or the error's class when it has none.
"""

from __future__ import annotations


def first_line(error: BaseException, with_type: bool = False) -> str:
    """The first line of `error`'s message (its class name when the message is
    empty); `with_type` puts the class name before it ("ValueError: ...")."""
    lines = str(error).strip().splitlines()
    if not lines:
        return type(error).__name__
    return f"{type(error).__name__}: {lines[0]}" if with_type else lines[0]
