"""Run the serving check (serving/model_check.py) on a model in a fresh process.

The check must run where only core TensorFlow is imported, as in TF Serving;
the Pusher's own process has TFX, Transform and Beam loaded, so the check is
a separate Python process, and this reads its one-line JSON verdict.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from models import contract

CHECK_TIMEOUT_SECONDS = 300
# The folder holding the project's packages, put on the check process's path
# so `python -m serving.model_check` finds them from any working directory.
PROJECT_ROOT = str(Path(__file__).resolve().parent.parent)


@dataclass(frozen=True)
class CheckResult:
    """What the isolated serving check said."""

    ok: bool
    reason: str
    details: dict


def check_environment() -> dict[str, str]:
    """This process's environment for the check process, with the project importable.

    tensorflow-transform sets TF_USE_LEGACY_KERAS=1 in this process when
    imported; inherited, it would make TensorFlow import tf_keras in the check.
    """
    environment = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    environment["TF_CPP_MIN_LOG_LEVEL"] = "2"
    path = environment.get("PYTHONPATH")
    environment["PYTHONPATH"] = PROJECT_ROOT + (os.pathsep + path if path else "")
    return environment


def run_serving_check(model_dir: str, timeout: int = CHECK_TIMEOUT_SECONDS) -> CheckResult:
    """Run serving/model_check.py on `model_dir` in a fresh TensorFlow-only process."""
    command = [
        sys.executable, "-m", "serving.model_check", model_dir,
        "--signature", contract.SIGNATURE_NAME,
        "--warmup", os.path.join(model_dir, contract.WARMUP_FILE),
        "--probability-output", contract.OUTPUT_KEY,
    ]
    try:
        finished = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, env=check_environment()
        )
    except subprocess.TimeoutExpired:
        return CheckResult(False, f"the serving check did not finish within {timeout} s", {})
    return parse_check_output(finished.returncode, finished.stdout, finished.stderr)


def parse_check_output(returncode: int, stdout: str, stderr: str) -> CheckResult:
    """The check's verdict from its last stdout line, or why it gave none."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    try:
        result = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        result = None
    if not isinstance(result, dict) or "ok" not in result:
        tail = [line for line in stderr.splitlines() if line.strip()][-1:] or ["no output"]
        return CheckResult(
            False, f"the serving check crashed (exit code {returncode}): {tail[0]}", {}
        )
    details = {k: v for k, v in result.items() if k not in ("ok", "reason")}
    return CheckResult(bool(result["ok"]) and returncode == 0, result.get("reason", ""), details)
