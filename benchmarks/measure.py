"""Run one command as a subprocess and measure what a user would wait for and pay.

Wall time covers the whole process, interpreter start and imports included.
Memory is measured two ways because neither alone is honest for Beam's
multi-processing runner: the sampled sum of RSS over the process tree (an upper
bound: shared library pages are counted once per process, and short spikes
between samples are missed) and the kernel's exact `ru_maxrss` from `wait4`
(a lower bound: the largest single process only).
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil


@dataclass
class ProcessMeasurement:
    """What one subprocess run cost."""

    returncode: int
    wall_seconds: float
    cpu_seconds: float  # user + system of the process and every descendant it waited for
    peak_tree_rss_bytes: int  # sampled sum over the live process tree (>= the largest process)
    max_process_rss_bytes: int  # kernel-exact peak of the largest single process
    peak_processes: int
    samples: int
    timed_out: bool = False


class TreeSampler(threading.Thread):
    """Samples the summed RSS of a process and all its descendants until stopped."""

    def __init__(self, pid: int, interval: float) -> None:
        super().__init__(daemon=True)
        self._root = psutil.Process(pid)
        self._interval = interval
        self._stop_event = threading.Event()
        self.peak_rss = 0
        self.peak_processes = 0
        self.samples = 0

    def sample(self) -> None:
        try:
            processes = [self._root, *self._root.children(recursive=True)]
        except psutil.Error:  # the root is gone or a zombie: nothing left to measure
            return
        total = 0
        for process in processes:
            try:
                total += process.memory_info().rss
            except psutil.Error:  # exited between listing and reading
                continue
        self.peak_rss = max(self.peak_rss, total)
        self.peak_processes = max(self.peak_processes, len(processes))
        self.samples += 1

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.sample()
            self._stop_event.wait(self._interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def _kill_group(pid: int) -> None:
    """Kill the process group this module started for `pid` (its own session)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run_measured(
    command: Sequence[str],
    *,
    cwd: Path,
    env: dict[str, str],
    log_path: Path,
    timeout: float,
    interval: float = 0.2,
) -> ProcessMeasurement:
    """Run `command` to completion (or `timeout`) with stdout and stderr in `log_path`.

    The child gets a session of its own so that a timeout or Ctrl-C kills exactly
    the processes this run started (Beam's worker subprocesses included), and
    nothing else on a shared machine.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        started = time.perf_counter()
        process = subprocess.Popen(
            list(command), cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        sampler = TreeSampler(process.pid, interval)
        sampler.start()
        timed_out = threading.Event()

        def on_timeout() -> None:
            timed_out.set()
            _kill_group(process.pid)

        timer = threading.Timer(timeout, on_timeout)
        timer.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        except BaseException:
            _kill_group(process.pid)
            process.wait()
            raise
        finally:
            timer.cancel()
        wall = time.perf_counter() - started
        sampler.stop()
        # os.wait4 reaped the child; tell Popen so it does not try again.
        process.returncode = os.waitstatus_to_exitcode(status)
    max_process = usage.ru_maxrss * 1024  # Linux reports KiB
    return ProcessMeasurement(
        returncode=process.returncode,
        wall_seconds=wall,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        # The tree can never have used less than its largest process; sampling
        # every `interval` seconds can miss that peak when one process dominates.
        peak_tree_rss_bytes=max(sampler.peak_rss, max_process),
        max_process_rss_bytes=max_process,
        peak_processes=sampler.peak_processes,
        samples=sampler.samples,
        timed_out=timed_out.is_set(),
    )
