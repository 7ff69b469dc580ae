"""Results of a benchmark invocation: per-run lines, aggregation, markdown.

Kept free of process handling so the arithmetic and the table can be unit
tested without running a pipeline.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from benchmarks import tables
from benchmarks.measure import ProcessMeasurement
from benchmarks.mlmd import RecordedRun

OURS = "ours"
THEIRS = "theirs"
COLD = "cold"
LABELS = {OURS: "Ours", THEIRS: "TFX example"}
GIB = 1024**3


@dataclass
class RunResult:
    """One measured pipeline run."""

    pipeline: str  # OURS or THEIRS
    kind: str  # COLD (fresh output dir) or rerun_kind(i) (same dir again, nothing changed)
    round: int
    measurement: ProcessMeasurement
    recorded: RecordedRun | None = None  # this run's entry in its ML Metadata
    sdist_builds: int = 0
    load_before: float = 0.0
    load_after: float = 0.0
    log_path: str = ""
    source: str = ""  # fingerprint of our pipeline's code when the run started

    @property
    def ok(self) -> bool:
        return self.measurement.returncode == 0 and not self.measurement.timed_out

    @property
    def outside_components(self) -> float | None:
        """Wall time not inside any component: interpreter start, imports, compile,
        orchestration. LocalDagRunner runs components one after another, so the
        difference is meaningful."""
        if self.recorded is None or not self.recorded.components:
            return None
        return self.measurement.wall_seconds - self.recorded.component_seconds


@dataclass
class SdistTiming:
    """Seconds of each `build_ephemeral_package()` call, and the sdist's size."""

    seconds: list[float] = field(default_factory=list)
    sdist_bytes: int = 0
    error: str | None = None


@dataclass
class BenchmarkReport:
    """Everything one invocation measured, with the context needed to read it."""

    started: str  # ISO date and time, UTC
    command: str
    dataset: str
    dataset_sha256: str
    tfx_mode: str
    rounds: int
    machine: dict
    versions: dict[str, str]
    revision: str
    source: str = ""  # machine.source_fingerprint at the start
    results: list[RunResult] = field(default_factory=list)
    sdist: SdistTiming | None = None
    import_seconds: dict[str, float] = field(default_factory=dict)
    note: str = ""


def rerun_kind(i: int) -> str:
    """The i-th re-run with nothing changed. In TFX's example the first is not all
    cached: its model resolver now finds the model blessed by the cold run, so
    Evaluator (and Pusher) get a new input and run again. Ours reads the served
    model inside the Evaluator, so every re-run is fully cached."""
    return f"re-run {i}"


def kinds(results: Sequence[RunResult]) -> list[str]:
    """Kinds of run present, cold first, re-runs in order."""
    found = {r.kind for r in results}
    ordered = [COLD] + [rerun_kind(i) for i in range(1, len(found) + 1)]
    return [k for k in ordered if k in found]


def median(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def ratio(ours: float | None, theirs: float | None) -> float | None:
    if ours is None or theirs is None or theirs == 0:
        return None
    return ours / theirs


def select(results: Sequence[RunResult], pipeline: str, kind: str) -> list[RunResult]:
    """Successful runs of one pipeline and kind; failed runs never enter a median."""
    return [r for r in results if r.pipeline == pipeline and r.kind == kind and r.ok]


def component_medians(
    runs: Sequence[RunResult], skip_states: tuple[str, ...] = ()
) -> dict[str, float]:
    """Median seconds per component over `runs`, in the order components ran."""
    by_name: dict[str, list[float]] = {}
    for run in runs:
        for component in run.recorded.components if run.recorded else []:
            if component.state in skip_states:
                continue
            by_name.setdefault(component.component, []).append(component.seconds)
    return {name: statistics.median(values) for name, values in by_name.items()}


def fmt_seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def fmt_gib(value: float | None) -> str:
    return "–" if value is None else f"{value / GIB:.2f}"


def fmt_ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}x"


def fmt_memory(measurement: ProcessMeasurement | None) -> str:
    """Tree-sum peak, then the largest single process in parentheses."""
    if measurement is None:
        return "–"
    return (
        f"{fmt_gib(measurement.peak_tree_rss_bytes)} "
        f"({fmt_gib(measurement.max_process_rss_bytes)})"
    )


def run_title(result: RunResult) -> str:
    return f"[round {result.round}] {LABELS[result.pipeline]}, {result.kind}"


def describe_run(result: RunResult) -> str:
    """The line printed as soon as a run ends."""
    m = result.measurement
    status = "ok" if result.ok else ("TIMED OUT" if m.timed_out else f"FAILED rc={m.returncode}")
    line = (
        f"{run_title(result)}: {status}, wall {m.wall_seconds:.1f} s, CPU {m.cpu_seconds:.1f} s, "
        f"peak RSS tree {fmt_gib(m.peak_tree_rss_bytes)} GiB (largest process "
        f"{fmt_gib(m.max_process_rss_bytes)} GiB, up to {m.peak_processes} processes), "
        f"sdist builds {result.sdist_builds}, load {result.load_before:.1f} -> "
        f"{result.load_after:.1f}"
    )
    return line if result.ok else f"{line}\n    log: {result.log_path}"


def describe_components(result: RunResult) -> str:
    """A run's component times and eval metrics, once its ML Metadata has been read."""
    recorded = result.recorded
    if recorded is None:
        return f"{run_title(result)}: nothing recorded in ML Metadata"
    lines = [f"{run_title(result)}, from ML Metadata ({recorded.run_id}):"]
    for c in recorded.components:
        lines.append(f"    {c.component:<32} {c.state:<7} {c.seconds:7.1f} s")
    outside = result.outside_components
    if outside is not None:
        lines.append(f"    {'(outside components)':<32} {'':<7} {outside:7.1f} s")
    shown = {k: v for k, v in recorded.metrics.items()
             if k in ("auc", "binary_accuracy", "example_count")}
    if shown or recorded.blessed is not None:
        # A model that is not blessed is not pushed: that run skipped Pusher's work.
        blessed = {None: "not evaluated", True: "blessed", False: "NOT blessed"}[recorded.blessed]
        lines.append("    eval split (own): " + ", ".join(
            [f"{k} {v:.4f}" if k != "example_count" else f"{k} {int(v)}"
             for k, v in shown.items()] + [blessed]))
    if recorded.error:
        lines.append(f"    metrics not read: {recorded.error}")
    return "\n".join(lines)


def _round_rows(results: Sequence[RunResult], kind: str, rounds: int) -> list[list[str]]:
    rows = []
    for n in range(1, rounds + 1):
        pair = {
            p: next((r for r in results if r.pipeline == p and r.kind == kind and r.round == n),
                    None)
            for p in (OURS, THEIRS)
        }
        if not any(pair.values()):
            continue
        rows.append(_table_row(f"{kind}, round {n}", pair[OURS], pair[THEIRS]))
    return rows


def _cell(result: RunResult | None, value: float | None) -> str:
    if result is None:
        return "–"
    if not result.ok:
        return "failed" if not result.measurement.timed_out else "timed out"
    return fmt_seconds(value)


def _table_row(label: str, ours: RunResult | None, theirs: RunResult | None) -> list[str]:
    def wall(r: RunResult | None) -> float | None:
        return r.measurement.wall_seconds if r and r.ok else None

    def cpu(r: RunResult | None) -> float | None:
        return r.measurement.cpu_seconds if r and r.ok else None

    def rss(r: RunResult | None) -> float | None:
        return r.measurement.peak_tree_rss_bytes if r and r.ok else None

    return [
        label, _cell(ours, wall(ours)), _cell(theirs, wall(theirs)),
        fmt_ratio(ratio(wall(ours), wall(theirs))),
        _cell(ours, cpu(ours)), _cell(theirs, cpu(theirs)),
        fmt_memory(ours.measurement) if ours and ours.ok else "–",
        fmt_memory(theirs.measurement) if theirs and theirs.ok else "–",
        fmt_ratio(ratio(rss(ours), rss(theirs))),
    ]


def _median_row(results: Sequence[RunResult], kind: str) -> list[str] | None:
    ours, theirs = select(results, OURS, kind), select(results, THEIRS, kind)
    if not ours and not theirs:
        return None

    def med(runs: list[RunResult], attr: str) -> float | None:
        return median(getattr(r.measurement, attr) for r in runs)

    ow, tw = med(ours, "wall_seconds"), med(theirs, "wall_seconds")
    orss, trss = med(ours, "peak_tree_rss_bytes"), med(theirs, "peak_tree_rss_bytes")
    omax, tmax = med(ours, "max_process_rss_bytes"), med(theirs, "max_process_rss_bytes")

    def memory(tree: float | None, single: float | None) -> str:
        return "–" if tree is None else f"{fmt_gib(tree)} ({fmt_gib(single)})"

    return [
        f"**{kind}, median** (n={len(ours)}/{len(theirs)})", f"**{fmt_seconds(ow)}**",
        f"**{fmt_seconds(tw)}**", f"**{fmt_ratio(ratio(ow, tw))}**",
        fmt_seconds(med(ours, "cpu_seconds")), fmt_seconds(med(theirs, "cpu_seconds")),
        memory(orss, omax), memory(trss, tmax), fmt_ratio(ratio(orss, trss)),
    ]


WALL_HEADERS = (
    "Run", "Ours wall (s)", "TFX example wall (s)", "Ours/TFX wall", "Ours CPU (s)",
    "TFX example CPU (s)", "Ours peak RSS, GiB: tree (largest process)",
    "TFX example peak RSS, GiB", "Ours/TFX peak RSS (tree)",
)


def wall_table(report: BenchmarkReport) -> list[str]:
    rows = []
    for kind in kinds(report.results):
        rows += _round_rows(report.results, kind, report.rounds)
        row = _median_row(report.results, kind)
        if row:
            rows.append(row)
    numbers = range(1, len(WALL_HEADERS))
    return tables.markdown_table(WALL_HEADERS, rows, right=numbers).splitlines()


def component_table(results: Sequence[RunResult], kind: str = COLD) -> list[str]:
    ours_runs, theirs_runs = select(results, OURS, kind), select(results, THEIRS, kind)
    ours, theirs = component_medians(ours_runs), component_medians(theirs_runs)
    if not ours and not theirs:
        return []
    names = list(ours) + [n for n in theirs if n not in ours]
    rows = [[n, fmt_seconds(ours.get(n)), fmt_seconds(theirs.get(n))] for n in names]
    rows.append([
        "(outside components: interpreter start, imports, compile, orchestration)",
        fmt_seconds(median(r.outside_components for r in ours_runs)),
        fmt_seconds(median(r.outside_components for r in theirs_runs)),
    ])
    rows.append([
        "total wall", fmt_seconds(median(r.measurement.wall_seconds for r in ours_runs)),
        fmt_seconds(median(r.measurement.wall_seconds for r in theirs_runs)),
    ])
    headers = (f"Component ({kind} runs, median s, from ML Metadata)", "Ours", "TFX example")
    return tables.markdown_table(headers, rows, right=(1, 2)).splitlines()


def rerun_lines(results: Sequence[RunResult]) -> list[str]:
    """What each re-run with nothing changed still spent time on: every component
    not taken from the cache, and the time outside components."""
    lines = []
    for kind in kinds(results)[1:]:
        parts = []
        for pipeline in (OURS, THEIRS):
            runs = select(results, pipeline, kind)
            if not runs:
                continue
            worked = {n: s for n, s in component_medians(runs, ("cached",)).items() if s >= 0.05}
            spent = ", ".join(f"{n} {s:.1f} s" for n, s in worked.items()) or "nothing"
            outside = fmt_seconds(median(r.outside_components for r in runs))
            parts.append(f"{LABELS[pipeline]}: {spent}; outside components {outside} s")
        if parts:
            lines.append(f"- {kind.capitalize()}, components not cached (median): "
                         + ". ".join(parts) + ".")
    return lines


def sdist_lines(report: BenchmarkReport) -> list[str]:
    builds = {
        p: median(r.sdist_builds for r in select(report.results, p, COLD)) for p in (OURS, THEIRS)
    }
    lines = []
    seen = ", ".join(f"{LABELS[p]} {fmt_count(n)}" for p, n in builds.items() if n is not None)
    if seen:
        lines.append("- TFX ephemeral sdists built per cold run (\"Creating temporary sdist "
                     f"package\", counted from what the builds leave in the run's TMPDIR): {seen}.")
    sdist = report.sdist
    if sdist and sdist.error:
        lines.append(f"- Timing `build_ephemeral_package()` failed: {sdist.error}")
    elif sdist and sdist.seconds:
        one = statistics.median(sdist.seconds)
        text = (
            f"- One `tfx.utils.dependency_utils.build_ephemeral_package()` call: median "
            f"{one:.1f} s (n={len(sdist.seconds)}, {min(sdist.seconds):.1f}–"
            f"{max(sdist.seconds):.1f} s), sdist {sdist.sdist_bytes / 1024**2:.1f} MiB"
        )
        if builds.get(THEIRS):
            text += (f"; so about {one * builds[THEIRS]:.0f} s of each cold TFX example run "
                     "goes to sdists that Beam's direct runner never uses")
        lines.append(text + ".")
    return lines


def fmt_count(value: float | None) -> str:
    return "–" if value is None else f"{value:g}"


def source_warning(results: Sequence[RunResult]) -> str | None:
    """A warning when our pipeline's code changed between runs of one benchmark."""
    versions: dict[str, list[str]] = {}
    for r in results:
        if r.pipeline == OURS and r.source:
            versions.setdefault(r.source, []).append(f"round {r.round} {r.kind}")
    if len(versions) < 2:
        return None
    detail = "; ".join(f"`{v}`: {', '.join(runs)}" for v, runs in versions.items())
    return (f"WARNING: the pipeline's code changed during this benchmark, so its runs "
            f"measure different versions ({detail}). A re-run after a change is not "
            "\"nothing changed\".")


def render_markdown(report: BenchmarkReport) -> str:
    """The section to paste into docs/benchmarks.md."""
    m, v = report.machine, report.versions
    cores = f"{m['logical_cores']} logical cores"
    if m.get("usable_cores") and m["usable_cores"] != m["logical_cores"]:
        cores += f" ({m['usable_cores']} usable)"
    stack = ", ".join(f"{k} {val}" for k, val in v.items() if k != "python")
    loads = [r.load_before for r in report.results] + [r.load_after for r in report.results]
    lines = [
        f"### {report.started[:10]}: {report.dataset}, {report.rounds} round(s), "
        f"TFX example in `{report.tfx_mode}` mode",
        "",
        f"- Date: {report.started} UTC; command: `{report.command}`",
        f"- Machine: {m['cpu']}, {cores}, {m['ram_bytes'] / GIB:.1f} GiB RAM; {m['os']}",
    ]
    if loads:
        lines.append(f"- 1-minute load average around the runs: {min(loads):.1f} to "
                     f"{max(loads):.1f}")
    if report.note:
        lines.append(f"- Note: {report.note}")
    warning = source_warning(report.results)
    if warning:
        lines.append(f"- **{warning}**")
    lines += [
        f"- Versions: Python {v.get('python')}; {stack}",
        f"- Repo: {report.revision} (pipeline code fingerprint {report.source})",
        f"- Input: {report.dataset}, sha256 `{report.dataset_sha256[:16]}…`",
    ]
    if report.import_seconds:
        lines.append("- Interpreter start + imports alone: " + "; ".join(
            f"`{k}` {s:.2f} s" for k, s in report.import_seconds.items()))
    lines += ["", *wall_table(report), ""]
    components = component_table(report.results)
    if components:
        lines += [*components, ""]
    reruns = rerun_lines(report.results)
    if reruns:
        lines += [*reruns, ""]
    sdist = sdist_lines(report)
    if sdist:
        lines += [*sdist, ""]
    return "\n".join(lines)
