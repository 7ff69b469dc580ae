"""The packages depend on each other one way, and the readers do not load TensorFlow.

    runners (local_runner.py, kubeflow_runner.py, airflow_runner.py, luigi_runner.py,
             azureml_runner.py)
      -> orchestrators (one node per task: Luigi, Azure ML)
      -> monitoring (checks of served requests, notifications)
      -> local (running) -> review (the report at the end of a run)
      -> pipeline (DAG, settings, preflight, compile) -> pipeline.components -> serving
      -> models -> options -> metadata
    metadata (ML Metadata names and reading, and the one rule for an error's first
    line) imports no other package, so every layer may use it (models.trainer names
    its history file from it); review and local read runs through it.
    artifact_types (the custom artifact classes compiled Kubeflow specs name) imports no
    project package; the pipeline's components define their outputs with it.
    options (every runner's and tool's options, declared once) sits just above metadata
    (its --metadata-mysql), so the runners and every tool with a command line can use it.
    README.md's "Project layout" states the same order.

Imports are read with `ast`, so the test sees lazy imports inside functions
too (LAZY_ONLY would list any allowed against the direction; none is). Inside
a package, modules import each other one way too: no two modules import each
other, directly or round a longer circle, lazily or not.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("models", "metadata", "serving", "pipeline.components", "pipeline", "review", "local",
            "orchestrators", "monitoring", "artifact_types", "options")
# Package -> the project packages its modules may import.
ALLOWED = {
    "artifact_types": set(),
    "metadata": set(),
    "options": {"metadata"},
    "models": {"metadata"},
    "serving": {"models", "metadata", "options"},
    "pipeline.components": {"artifact_types", "models", "metadata", "serving"},
    "pipeline": {"pipeline.components", "artifact_types", "models", "metadata", "options"},
    "review": {"metadata", "models", "options"},
    "local": {"pipeline", "pipeline.components", "review", "metadata", "models", "options"},
    "orchestrators": {"local", "pipeline", "pipeline.components", "review", "metadata",
                      "models", "options"},
    # Watching the served model: reads ML Metadata and lineage (review), the gate's drift
    # checks (pipeline.components), the capture files (serving) and a run's summary (local);
    # nothing imports it but the runners.
    "monitoring": {"local", "review", "pipeline.components", "serving", "metadata", "models",
                   "options"},
}
# (package, imported package): allowed only inside a function, with the reason.
LAZY_ONLY: dict[tuple[str, str], str] = {}
READERS = ("review.report", "review.lineage", "review.schema_draft", "local.summary",
           "metadata.outcome", "metadata.graph", "metadata.evaluation", "metadata.artifacts",
           # forks Luigi workers: must not have loaded TensorFlow
           "orchestrators.luigi_run")


def _package(module: str) -> str | None:
    """The layer a dotted module name belongs to, None outside the project's packages."""
    for package in PACKAGES:  # pipeline.components before pipeline
        if module == package or module.startswith(package + "."):
            return package
    return None


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(imported module, at module level) for every import in a file."""
    tree = ast.parse(path.read_text())
    top_level = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in top_level) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            # `from pipeline.components import gate` imports pipeline.components.gate
            found += [(f"{node.module}.{alias.name}", id(node) in top_level)
                      for alias in node.names]
    return found


def _modules() -> list[tuple[str, Path]]:
    result = []
    for package in ("models", "metadata", "serving", "pipeline", "review", "local",
                    "orchestrators", "monitoring", "artifact_types", "options"):
        for path in sorted((ROOT / package).rglob("*.py")):
            dotted = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            result.append((dotted.removesuffix(".__init__"), path))
    return result


def test_every_package_imports_only_the_layers_below_it():
    wrong = []
    for module, path in _modules():
        own = _package(module)
        for imported, at_top in _imports(path):
            target = _package(imported)
            if target is None or target == own:
                continue
            lazy_ok = (own, target) in LAZY_ONLY and not at_top
            if target not in ALLOWED[own] and not lazy_ok:
                wrong.append(f"{module} imports {imported}" + ("" if at_top else " (lazily)"))
    assert wrong == []


def test_the_allowed_directions_have_no_cycle():
    edges = {p: set(ALLOWED[p]) | {t for (s, t) in LAZY_ONLY if s == p} for p in ALLOWED}
    done: set[str] = set()

    def visit(package: str, path: tuple[str, ...]) -> None:
        assert package not in path, " -> ".join((*path, package))
        if package in done:
            return
        for target in edges[package]:
            visit(target, (*path, package))
        done.add(package)

    for package in edges:
        visit(package, ())


@pytest.mark.parametrize("module", READERS)
def test_readers_import_without_tensorflow(module: str):
    code = (f"import sys, {module}; "
            "loaded = [m for m in ('tensorflow', 'tensorflow_model_analysis', "
            "'tensorflow_data_validation', 'tfx') if m in sys.modules]; "
            "assert not loaded, loaded")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]


def _module_of(imported: str, modules: set[str]) -> str | None:
    """The project module an import loads: `from review.lineage import Lineage` imports
    the module review.lineage, `from pipeline.components import gate` the module gate."""
    while imported and imported not in modules:
        imported = imported.rpartition(".")[0]
    return imported or None


def _module_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One circle of imports in `edges` (module -> modules it imports), or None."""
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> list[str] | None:
        if module in path:
            return path[path.index(module):] + [module]
        if module in done:
            return None
        for target in sorted(edges.get(module, ())):
            found = visit(target, path + [module])
            if found:
                return found
        done.add(module)
        return None

    for module in sorted(edges):
        found = visit(module, [])
        if found:
            return found
    return None


def test_no_import_circle_between_modules_of_a_package():
    """E.g. gate.py imports drift.py, so drift.py must not import gate.py, not even lazily
    or for type hints: shared pieces go into a module below both (findings.py)."""
    paths = dict(_modules())
    modules = set(paths)
    edges: dict[str, set[str]] = {}
    for module, path in paths.items():
        for imported, _ in _imports(path):
            target = _module_of(imported, modules)
            # Within its package; a package's __init__ may gather its own modules.
            if (target and target != module and _package(target) == _package(module)
                    and not target.startswith(module + ".")):
                edges.setdefault(module, set()).add(target)
    assert _module_cycle(edges) is None, " -> ".join(_module_cycle(edges))


def test_the_circle_check_finds_a_circle():
    assert _module_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _module_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
