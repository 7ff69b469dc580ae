"""One rule for an error's first line (metadata/errors.py), and no copies of it."""

from __future__ import annotations

import ast
from pathlib import Path

from metadata.errors import first_line

ROOT = Path(__file__).resolve().parent.parent


def test_the_first_line_of_the_message_or_the_class_when_there_is_none():
    error = ValueError("  bad input\n  Traceback follows\n")
    assert first_line(error) == "bad input"
    assert first_line(error, with_type=True) == "ValueError: bad input"
    assert first_line(KeyError()) == "KeyError"
    assert first_line(RuntimeError(" \n "), with_type=True) == "RuntimeError"


def test_no_module_defines_its_own_first_line_helper():
    copies, helper = [], ROOT / "metadata" / "errors.py"
    for path in sorted(ROOT.rglob("*.py")):
        top = path.relative_to(ROOT).parts[0]
        if top.startswith(".") or top == "tests" or path == helper:  # venvs, tests
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and "first_line" in node.name:
                copies.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}")
    assert copies == []
