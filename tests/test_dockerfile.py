"""The pipeline image's Dockerfile: what it copies exists, and it installs the lock file.

There is no Docker engine here, so the Dockerfile is read, not built: these
tests catch the mistakes that would only show when a user builds it (a COPY of
a missing or ignored file, an install that resolves versions the tests never
ran with, a project folder the compiled spec cannot import from).
"""

from __future__ import annotations

import ast
import json
import posixpath
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline import kubeflow

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
LOCK_FILE = "requirements.lock"
BASE_IMAGE = "gcr.io/tfx-oss-public/tfx"


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


def instructions(path: Path = DOCKERFILE) -> list[Instruction]:
    """Dockerfile instructions, with continuation lines joined and comments dropped."""
    result, pending = [], ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, arguments = (pending + stripped).partition(" ")
        result.append(Instruction(keyword.upper(), arguments.strip()))
        pending = ""
    return result


def _words(arguments: str) -> list[str]:
    """Arguments in shell form or JSON (exec) form."""
    return json.loads(arguments) if arguments.startswith("[") else shlex.split(arguments)


def copies() -> list[tuple[list[str], str]]:
    """(sources, destination) of every COPY / ADD, flags such as --chown dropped."""
    result = []
    for instruction in instructions():
        if instruction.keyword in ("COPY", "ADD"):
            words = [w for w in _words(instruction.arguments) if not w.startswith("--")]
            result.append((words[:-1], words[-1]))
    return result


def workdir() -> str:
    return [i.arguments for i in instructions() if i.keyword == "WORKDIR"][-1]


def image_paths() -> dict[str, str]:
    """Image path -> project path, for everything COPY puts into the image (Docker's rules)."""
    shipped = {}
    for sources, destination in copies():
        target = posixpath.normpath(posixpath.join(workdir(), destination))
        for source in (s.rstrip("/") for s in sources):
            into_folder = destination.endswith("/") or destination == "." or len(sources) > 1
            if (ROOT / source).is_dir() or not into_folder:
                shipped[target] = source  # a folder's contents, or a file under a new name
            else:
                shipped[posixpath.join(target, posixpath.basename(source))] = source
    return shipped


def python_path() -> list[str]:
    """The literal PYTHONPATH entries the Dockerfile sets (before any ${...} expansion)."""
    entries = []
    for instruction in instructions():
        for word in _words(instruction.arguments) if instruction.keyword == "ENV" else []:
            name, _, value = word.partition("=")
            if name == "PYTHONPATH":
                entries += [e for e in value.split("$", 1)[0].split(":") if e]
    return entries


def shipped_top_level_modules() -> set[str]:
    """Top-level Python modules and packages the image can import from its PYTHONPATH."""
    modules = set()
    for target, source in image_paths().items():
        if posixpath.dirname(target) not in python_path():
            continue
        if source.endswith(".py"):
            modules.add(Path(source).stem)
        elif (ROOT / source / "__init__.py").is_file():
            modules.add(posixpath.basename(target))
    return modules


def project_file_in_image(image_path: str) -> Path | None:
    """The project file COPY puts at `image_path`, if any."""
    for target, source in image_paths().items():
        if image_path == target:
            return ROOT / source
        if image_path.startswith(target + "/") and (ROOT / source).is_dir():
            return ROOT / source / image_path[len(target) + 1:]
    return None


def _pattern_regex(pattern: str) -> re.Pattern:
    """A .dockerignore pattern as a regex (Go filepath.Match plus '**')."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out, i = out + ".*", i + 2
            if pattern.startswith("/", i):
                out, i = out + "/?", i + 1
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def ignored(relative: str, patterns: list[str]) -> bool:
    """Whether Docker leaves `relative` out of the build context.

    As Docker does: the last pattern that matches the path or one of its parent
    folders wins, and '!' re-includes.
    """
    parts = relative.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    excluded = False
    for raw in patterns:
        negate = raw.startswith("!")
        regex = _pattern_regex(raw.lstrip("!").strip("/"))
        if any(regex.fullmatch(c) for c in candidates):
            excluded = not negate
    return excluded


def dockerignore_patterns() -> list[str]:
    lines = DOCKERIGNORE.read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_base_image_is_tfx_of_the_locked_version():
    (base,) = [i.arguments for i in instructions() if i.keyword == "FROM"]
    image, _, tag = base.partition(":")
    locked = re.search(r"^tfx==(\S+)$", (ROOT / LOCK_FILE).read_text(), re.M).group(1)
    assert image == BASE_IMAGE
    assert tag == locked == "1.16.0"


def test_installs_exactly_the_lock_file_without_resolving():
    installs = [i.arguments for i in instructions()
                if i.keyword == "RUN" and "pip install" in i.arguments]
    assert len(installs) == 1, f"one pip install expected, found {installs}"
    words = shlex.split(installs[0])
    assert "--no-deps" in words
    assert words[words.index("-r") + 1] == LOCK_FILE
    install_args = words[words.index("install") + 1:]
    named = [w for w in install_args if not w.startswith("-") and w != LOCK_FILE]
    assert named == [], f"packages installed outside the lock file: {named}"
    steps = instructions()
    run_index = next(n for n, i in enumerate(steps) if i.arguments == installs[0])
    copied_before = {source for step in steps[:run_index] if step.keyword == "COPY"
                     for source in _words(step.arguments)[:-1]}
    assert LOCK_FILE in copied_before, "the lock file must be copied before it is installed"


def test_every_copied_file_exists():
    sources = [source for sources, _ in copies() for source in sources]
    assert sources, "the Dockerfile copies nothing"
    missing = [source for source in sources if not (ROOT / source).exists()]
    assert missing == []


def test_build_context_keeps_what_is_copied_and_nothing_heavy_or_secret():
    patterns = dockerignore_patterns()
    kept = []
    for sources, _ in copies():
        for source in sources:
            path = ROOT / source
            files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
            kept += [str(f.relative_to(ROOT)) for f in files if "__pycache__" not in f.parts]
    dropped = [f for f in kept if ignored(f, patterns)]
    assert dropped == [], f".dockerignore leaves copied files out of the context: {dropped}"
    for unwanted in (".venv/bin/python", "data/data.csv", "outputs/metadata.sqlite",
                     ".git/HEAD", "tests/conftest.py", "build/chicago-taxi.yaml",
                     "models/__pycache__/features.cpython-310.pyc"):
        assert ignored(unwanted, patterns), f"{unwanted} would be sent to the Docker daemon"


def test_image_ships_the_code_and_schema_the_spec_names():
    assert workdir() == kubeflow.IMAGE_PROJECT_DIR
    assert {"models", "pipeline", "artifact_types", "kubeflow_runner"} <= (
        shipped_top_level_modules())
    schema = project_file_in_image(kubeflow.DEFAULT_SCHEMA)
    assert schema is not None and schema.is_file(), (
        f"the runner's default schema {kubeflow.DEFAULT_SCHEMA} is not in the image"
    )


def test_image_ships_the_node_runner_azure_ml_steps_run():
    """Each Azure ML step runs `python -m orchestrators.node_runner` in this image."""
    assert "orchestrators" in shipped_top_level_modules()
    assert project_file_in_image(f"{kubeflow.IMAGE_PROJECT_DIR}/orchestrators/node_runner.py")


def _project_modules() -> set[str]:
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    return packages | {p.stem for p in ROOT.glob("*.py")}


def test_shipped_code_imports_no_project_module_left_out_of_the_image():
    """A shipped module importing e.g. `serving` would fail only inside the container."""
    shipped, project = shipped_top_level_modules(), _project_modules()
    missing = {}
    for source in image_paths().values():
        path = ROOT / source
        for file in [path] if path.suffix == ".py" else sorted(path.rglob("*.py")):
            tree = ast.parse(file.read_text())
            for node in ast.walk(tree):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                    [node.module] if isinstance(node, ast.ImportFrom) and node.module
                    and not node.level else [])
                for name in names:
                    top = name.split(".")[0]
                    if top in project and top not in shipped:
                        missing.setdefault(str(file.relative_to(ROOT)), []).append(name)
    assert missing == {}


def test_entrypoint_is_left_to_the_base_image():
    """Kubeflow sets each component's command; Dataflow needs the base's Beam boot."""
    overrides = [i.keyword for i in instructions() if i.keyword in ("ENTRYPOINT", "CMD")]
    assert overrides == []


@pytest.mark.parametrize("image", ["registry.example/team/taxi:abc123"])
def test_make_image_builds_this_dockerfile_with_the_given_tag(image: str):
    result = subprocess.run(["make", "-n", "image", f"IMAGE={image}"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert f"docker build -t {image} ." in result.stdout
