"""Quiet progress for local runs: one line per component, the noise in a log file.

A TFX run prints thousands of lines of TensorFlow, absl and Beam output, much
of it from C++ straight to file descriptors 1 and 2. Two pieces keep the
terminal readable:

* `quiet_output` points fds 1 and 2 at a log file for the duration of the run
  (so C++ logging, Python warnings and Beam worker subprocesses all land
  there) and hands back a stream on the real terminal for progress lines.
* `track_components` prints a line as each component starts and finishes,
  with its wall-clock time and its outcome as ML Metadata recorded it
  (ran, cached, FAILED, skipped).

Why hook TFX's `Launcher` rather than watch ML Metadata
--------------------------------------------------------
`LocalDagRunner.run_with_ir` walks the nodes in topological order and, for
each, builds a `tfx.orchestration.portable.launcher.Launcher(pipeline_node=...)`
and calls `launch()`, in this process, one node at a time. Replacing that
class for the length of the run with a subclass that announces `launch()`
gives exact start and end moments, the node id from the constructor's public
`pipeline_node` argument, and the exception of a failing component, with no
thread and no copy of the runner's loop. Watching ML Metadata instead would
need a polling thread reading the SQLite store while TFX writes to it: MLMD's
SQLite connection does not wait on locks, so a concurrent reader can make
TFX's own writes fail, and a poller only sees a node once its execution is
registered (after input resolution), so start times would be late.

The hook only decides *when* to print; *what* happened (cached or ran) is
read back from ML Metadata by execution id, the same record `summary.py` and
the report use (through `metadata/`), so the progress line cannot disagree with them.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import sys
import time
import traceback
from collections.abc import Iterator, Sequence
from typing import TextIO

from metadata import names
from metadata.errors import first_line
from metadata.store import Location, open_store

LOG_DIR = "logs"
_NAME_WIDTH = 30


def new_log_path(output_dir: str, now: datetime.datetime | None = None) -> str:
    """`<output_dir>/logs/run-YYYYmmdd-HHMMSS.log`: one file per run, never overwritten."""
    stamp = (now or datetime.datetime.now()).strftime("%Y%m%d-%H%M%S")
    return os.path.join(output_dir, LOG_DIR, f"run-{stamp}.log")


@contextlib.contextmanager
def quiet_output(log_path: str | None) -> Iterator[TextIO]:
    """Send everything written to fds 1 and 2 to `log_path`; yield the real stdout.

    Redirecting the file descriptors (not just `sys.stdout`) is what catches
    TensorFlow's C++ logging and Beam's subprocesses. With `log_path=None`
    (`--verbose`) nothing is redirected and the console is `sys.stdout`.
    Everything is restored on exit, also when the run raises, so the caller
    can print the error on the real stderr.
    """
    if log_path is None:
        yield sys.stdout
        return
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    console = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8", errors="replace")
    with open(log_path, "ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
    try:
        yield console
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)
        console.close()


class ProgressPrinter:
    """Writes the progress lines; knows nothing about TFX (easy to test).

    On a terminal the "running" line is rewritten in place when the component
    finishes, so the list stays one line per component; anywhere else (a CI
    log, a pipe, `--verbose` where other output interleaves) the start and
    the end are two lines.
    """

    def __init__(
        self, console: TextIO, total: int, rewrite: bool | None = None, width: int = _NAME_WIDTH
    ) -> None:
        self.console = console
        self.total = total
        self.width = width
        self.rewrite = console.isatty() if rewrite is None else rewrite
        self.index = 0

    def _prefix(self, node_id: str) -> str:
        width = len(str(self.total))
        return f"[{self.index:>{width}}/{self.total}] {node_id:<{self.width}}"

    def started(self, node_id: str) -> None:
        self.index += 1
        line = f"{self._prefix(node_id)} running..."
        self.console.write(line if self.rewrite else line + "\n")
        self.console.flush()

    def finished(self, node_id: str, outcome: str, seconds: float, reason: str = "") -> None:
        line = f"{self._prefix(node_id)} {outcome:<8} {seconds:6.1f} s"
        if reason:
            line += f"  {reason}"
        self.console.write(("\r\x1b[K" if self.rewrite else "") + line + "\n")
        self.console.flush()


def execution_outcome(where: Location, execution_id: int | None) -> str:
    """How ML Metadata recorded execution `execution_id`: ran, cached, FAILED, ...

    `None` means the launcher registered no execution: TFX skipped the node
    because an upstream output it needs was not produced.
    """
    if execution_id is None:
        return "skipped"
    executions = open_store(where).get_executions_by_id([execution_id])
    if not executions or executions[0].last_known_state not in names.FINAL_STATES:
        return "ran"
    return names.state_name(executions[0].last_known_state)


def _reporting_launcher(base: type, printer: ProgressPrinter, where: Location) -> type:
    """A subclass of TFX's `Launcher` that tells `printer` about each `launch()`."""

    class ReportingLauncher(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args, pipeline_node, **kwargs) -> None:
            super().__init__(*args, pipeline_node=pipeline_node, **kwargs)
            self._progress_node_id = pipeline_node.node_info.id

        def launch(self):
            node_id = self._progress_node_id
            printer.started(node_id)
            started = time.monotonic()
            try:
                info = super().launch()
            except KeyboardInterrupt:
                printer.finished(node_id, "stopped", time.monotonic() - started, "interrupted")
                raise
            except SystemExit as error:  # e.g. Beam's argparse rejecting a --beam-arg
                reason = f"exited with status {error.code}; the reason is at the end of the log"
                printer.finished(node_id, "FAILED", time.monotonic() - started, reason)
                raise
            except Exception as error:
                # The traceback goes to stderr: the log file unless --verbose.
                traceback.print_exc()
                printer.finished(node_id, "FAILED", time.monotonic() - started,
                                 first_line(error, with_type=True))
                raise
            execution_id = getattr(info, "execution_id", None) if info is not None else None
            outcome = execution_outcome(where, execution_id)
            printer.finished(node_id, outcome, time.monotonic() - started)
            return info

    return ReportingLauncher


@contextlib.contextmanager
def track_components(
    console: TextIO, where: Location, nodes: int | Sequence[str]
) -> Iterator[ProgressPrinter]:
    """Print a line per component of the LocalDagRunner run inside this block.

    `nodes` are the pipeline's node ids (or just their number), for the
    `[i/total]` counter and to align the columns.
    """
    from pipeline.components import tfx_internals

    if isinstance(nodes, int):
        printer = ProgressPrinter(console, nodes)
    else:
        width = max([_NAME_WIDTH, *(len(n) + 1 for n in nodes)])
        printer = ProgressPrinter(console, len(nodes), width=width)
    with tfx_internals.local_launcher(lambda base: _reporting_launcher(base, printer, where)):
        yield printer
