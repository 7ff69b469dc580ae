"""One run at a time per output folder.

Two runs writing one ML Metadata store and one serving folder would race, so a
run holds an exclusive `flock` on `<output-dir>/.run.lock` for its whole life.
The kernel drops the lock when the process ends, however it ends (kill -9
included), so a killed run never leaves a stale lock behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator


class RunLockedError(RuntimeError):
    """Another run is using the output folder."""


@contextlib.contextmanager
def run_lock(output_dir: str) -> Iterator[None]:
    path = os.path.join(output_dir, ".run.lock")
    handle = open(path, "a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise RunLockedError(
                f"another run (pid {holder}) is using {output_dir}; wait for it to finish "
                "or pass a different --output-dir"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        handle.close()
