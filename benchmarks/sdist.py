"""What TFX's "Creating temporary sdist package" costs, timed on its own.

Before each Beam-based component, `BaseBeamExecutor` calls
`dependency_utils.make_beam_dependency_flags`, which (unless the Beam flags
already name packages) runs `build_ephemeral_package()`: copy the installed
tfx package to a temp dir and run `setup.py sdist` on it, to hand remote Beam
workers an `--extra_package`. Beam's direct runner never stages that package,
so a local run pays for nothing. This times the call itself, in a subprocess
(`python -m benchmarks.sdist N` prints JSON) with TMPDIR pointed at a scratch
folder that the caller removes: the function leaves its temp dirs behind.

Those leftovers also count the builds of a pipeline run: each build leaves
`$TMPDIR/tmpXXXX/build/tfx/setup.py`, whatever the log level (the "Creating
temporary sdist package" line is INFO and only visible when a runner asks for it).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def count_builds(tmp_dir: Path) -> int:
    """How many ephemeral sdists a run built, from what they left in its TMPDIR."""
    return sum(1 for _ in tmp_dir.glob("*/build/tfx/setup.py"))


def time_builds(repeats: int) -> list[dict]:
    """Seconds and sdist size of `repeats` consecutive builds (imports excluded)."""
    from tfx.utils import dependency_utils

    builds = []
    for _ in range(repeats):
        started = time.perf_counter()
        path = dependency_utils.build_ephemeral_package()
        builds.append(
            {"seconds": time.perf_counter() - started, "sdist_bytes": os.path.getsize(path)}
        )
    return builds


def main(argv: list[str]) -> int:
    repeats = int(argv[0]) if argv else 3
    print(json.dumps(time_builds(repeats)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
