"""`python -m benchmarks`: run both pipelines side by side and print the results.

Each round runs, in alternating order (ours first in odd rounds, the TFX
example first in even ones, so drift on a shared machine does not always
favour one side): both pipelines cold into fresh output folders, then both
again on the same folders with nothing changed (all cached).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

from benchmarks import data, machine, mlmd, report, sdist, tfx_taxi
from benchmarks.measure import run_measured
from benchmarks.report import COLD, OURS, THEIRS, BenchmarkReport, RunResult, rerun_kind

PROJECT_ROOT = data.PROJECT_ROOT
PYTHON = sys.executable
DEFAULT_WORK_DIR = "/tmp/taxi-tfx-bench"
IMPORT_PROBES = {"python -c pass": "pass", "python -c 'from tfx import v1'": "from tfx import v1"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmark this project's pipeline against TFX's own Chicago Taxi "
                    "native-Keras example on the same data (not a test: it takes minutes).",
    )
    parser.add_argument("--rows", type=int, default=15002,
                        help="input rows; 15002 is data/data.csv as shipped, any other count "
                             "resamples it with replacement (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (default: %(default)s)")
    parser.add_argument("--work-dir", default=DEFAULT_WORK_DIR,
                        help="data, outputs, logs and results; must be outside the repo "
                             "(default: %(default)s)")
    parser.add_argument("--tfx-mode", choices=tfx_taxi.MODES, default=tfx_taxi.SHIPPED_MODE,
                        help="Beam direct running mode for the TFX example "
                             "(default: its shipped %(default)s)")
    parser.add_argument("--seed", type=int, default=data.DEFAULT_SEED,
                        help="resampling seed (default: %(default)s)")
    parser.add_argument("--which", choices=("both", OURS, THEIRS), default="both",
                        help="pipelines to run (default: %(default)s)")
    parser.add_argument("--reruns", type=int, default=2,
                        help="re-runs with nothing changed after each cold run; the first "
                             "re-evaluates against the model the cold run blessed, the second "
                             "is all cached (default: %(default)s)")
    parser.add_argument("--ours-arg", action="append", default=[], metavar="ARG",
                        help="extra argument for local_runner.py, repeatable, e.g. "
                             "--ours-arg=--beam-arg=--direct_num_workers=2")
    parser.add_argument("--sdist-repeats", type=int, default=3,
                        help="times to build TFX's ephemeral sdist on its own; 0 skips "
                             "(default: %(default)s)")
    parser.add_argument("--no-warmup", action="store_true",
                        help="skip the untimed import warm-up and the import timings")
    parser.add_argument("--timeout", type=float, default=7200,
                        help="seconds before a run is killed (default: %(default)s)")
    parser.add_argument("--sample-interval", type=float, default=0.2,
                        help="seconds between memory samples (default: %(default)s)")
    parser.add_argument("--keep-outputs", action="store_true",
                        help="keep pipeline outputs (default: removed after each round "
                             "unless a run failed; the runs' console logs are always kept)")
    parser.add_argument("--note", default="", help="context for the table, e.g. 'shared machine'")
    args = parser.parse_args(argv)
    if args.rows < 1 or args.rounds < 1 or args.reruns < 0:
        parser.error("--rows and --rounds must be positive, --reruns not negative")
    return args


def check_work_dir(path: str) -> Path:
    """The resolved work dir; inside the repo it would be scanned by tests and git."""
    work = Path(path).resolve()
    if work == PROJECT_ROOT or PROJECT_ROOT in work.parents:
        raise SystemExit(f"error: --work-dir must be outside the repo ({PROJECT_ROOT})")
    work.mkdir(parents=True, exist_ok=True)
    return work


def run_env(tmp_dir: Path) -> dict[str, str]:
    """The environment of a measured run.

    TMPDIR points at a per-run folder because TFX leaves its sdist copies and
    user-module wheels in temp dirs; pip's self version check is off so no run
    waits on the network.
    """
    tmp_dir.mkdir(parents=True, exist_ok=True)
    return {**os.environ, "TMPDIR": str(tmp_dir), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


def ours_command(data_root: str, output_dir: Path, extra: list[str]) -> list[str]:
    return [PYTHON, str(PROJECT_ROOT / "local_runner.py"), "--data-root", data_root,
            "--output-dir", str(output_dir), *extra]


def theirs_command(data_root: str, output_dir: Path, module_file: Path, mode: str) -> list[str]:
    return [PYTHON, "-m", "benchmarks.tfx_taxi", "--data-root", data_root,
            "--output-dir", str(output_dir), "--module-file", str(module_file), "--mode", mode]


def metadata_path(pipeline: str, output_dir: Path) -> str:
    if pipeline == OURS:
        from pipeline.configs import PipelineConfig  # stdlib-only module: no TFX import

        return PipelineConfig(output_dir=str(output_dir)).metadata_path
    return tfx_taxi.metadata_path(str(output_dir))


def copy_example_module(work: Path) -> Path:
    """The example's module file alone in a folder, as its docs set it up (~/taxi/).

    TFX packages every .py next to the module file into a wheel; pointing at the
    installed copy would also package the example's tests and pipelines.
    """
    target = work / "tfx_example_module" / tfx_taxi.MODULE_FILE_NAME
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(tfx_taxi.shipped_module_file(), target)
    return target


def measure_run(
    args: argparse.Namespace, command: list[str], run_dir: Path, pipeline: str, kind: str, n: int
) -> RunResult:
    """One measured run, with its own TMPDIR so its sdist builds can be counted."""
    slug = kind.replace(" ", "-")
    tmp_dir = run_dir / f"tmp-{slug}"
    log = run_dir / f"{slug}.log"
    source = machine.source_fingerprint(PROJECT_ROOT)
    load_before = machine.load_average()
    measurement = run_measured(
        command, cwd=PROJECT_ROOT, env=run_env(tmp_dir), log_path=log,
        timeout=args.timeout, interval=args.sample_interval,
    )
    return RunResult(
        pipeline, kind, n, measurement, sdist_builds=sdist.count_builds(tmp_dir),
        load_before=load_before, load_after=machine.load_average(), log_path=str(log),
        source=source,
    )


def read_recorded(stores: dict[str, str]) -> dict[str, list[mlmd.RecordedRun]]:
    """Runs recorded in each store, read in one subprocess for all of them."""
    existing = {p: s for p, s in stores.items() if os.path.exists(s)}
    if not existing:
        return {}
    done = subprocess.run(
        [PYTHON, "-m", "benchmarks.mlmd", *existing.values()],
        cwd=PROJECT_ROOT, capture_output=True, text=True,
    )
    if done.returncode != 0:
        print(f"warning: reading ML Metadata failed:\n{done.stderr[-2000:]}", file=sys.stderr)
        return {}
    by_store = mlmd.parse_output(done.stdout)
    return {p: by_store.get(s, []) for p, s in existing.items()}


def run_round(
    args: argparse.Namespace, n: int, dataset: data.Dataset, module_file: Path, root: Path,
    into: list[RunResult],
) -> None:
    """Round `n`; results are appended to `into` as they come, so an interrupted
    benchmark still reports the runs that finished."""
    order = [OURS, THEIRS] if n % 2 else [THEIRS, OURS]
    order = [p for p in order if args.which in ("both", p)]
    kinds = [COLD] + [rerun_kind(i) for i in range(1, args.reruns + 1)]
    round_dir = root / f"round-{n}"
    results: list[RunResult] = []
    for kind in kinds:
        for pipeline in order:
            if kind != COLD and not any(
                r.ok for r in results if r.pipeline == pipeline and r.kind == COLD
            ):
                continue  # nothing to re-run on
            run_dir = round_dir / pipeline
            output = run_dir / "output"
            command = (
                ours_command(dataset.data_root, output, args.ours_arg) if pipeline == OURS
                else theirs_command(dataset.data_root, output, module_file, args.tfx_mode)
            )
            results.append(measure_run(args, command, run_dir, pipeline, kind, n))
            into.append(results[-1])
            print(report.describe_run(results[-1]), flush=True)
            if pipeline == OURS and results[-1].source != args.source:
                print(f"warning: the pipeline's code changed since the benchmark started "
                      f"({args.source} -> {results[-1].source})", file=sys.stderr, flush=True)
    attach_recorded(results, round_dir)
    for result in results:
        print(report.describe_components(result), flush=True)
    for pipeline in order:
        # A failed run's output holds its logs and partial artifacts: keep it to debug.
        if not args.keep_outputs and all(r.ok for r in results if r.pipeline == pipeline):
            shutil.rmtree(round_dir / pipeline / "output", ignore_errors=True)
        for tmp_dir in (round_dir / pipeline).glob("tmp-*"):
            shutil.rmtree(tmp_dir, ignore_errors=True)


def attach_recorded(results: list[RunResult], round_dir: Path) -> None:
    """Give each run its own entry of its store: runs are recorded oldest first."""
    pipelines = sorted({r.pipeline for r in results})
    stores = {p: metadata_path(p, round_dir / p / "output") for p in pipelines}
    recorded = read_recorded(stores)
    for pipeline in pipelines:
        runs = [r for r in results if r.pipeline == pipeline]  # cold, then re-runs
        for result, entry in zip(runs, recorded.get(pipeline, []), strict=False):
            result.recorded = entry


def time_imports(work: Path) -> dict[str, float]:
    """Untimed warm-up (so the first measured run does not pay for a cold disk
    cache), then the floor every run pays before doing any work."""
    scratch = work / "tmp-imports"
    env = run_env(scratch)
    probe = IMPORT_PROBES["python -c 'from tfx import v1'"]
    subprocess.run([PYTHON, "-c", probe], cwd=PROJECT_ROOT, env=env, capture_output=True)
    seconds = {}
    for label, code in IMPORT_PROBES.items():
        m = run_measured([PYTHON, "-c", code], cwd=PROJECT_ROOT, env=env,
                         log_path=work / "logs" / "imports.log", timeout=600)
        seconds[label] = m.wall_seconds
    shutil.rmtree(scratch, ignore_errors=True)
    return seconds


def time_sdist(work: Path, repeats: int) -> report.SdistTiming:
    scratch = work / "tmp-sdist"
    try:
        done = subprocess.run(
            [PYTHON, "-m", "benchmarks.sdist", str(repeats)], cwd=PROJECT_ROOT,
            env=run_env(scratch), capture_output=True, text=True,
        )
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            return report.SdistTiming(error=f"exit code {done.returncode}: {last}")
        builds = json.loads(done.stdout.strip().splitlines()[-1])
        return report.SdistTiming(
            seconds=[b["seconds"] for b in builds], sdist_bytes=builds[-1]["sdist_bytes"]
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def save(bench: BenchmarkReport, markdown: str, work: Path, stamp: str) -> Path:
    results = work / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / f"{stamp}.md").write_text(markdown)
    (results / f"{stamp}.json").write_text(json.dumps(asdict(bench), indent=2, default=str))
    return results / f"{stamp}.md"


def interrupt_on_signals() -> None:
    """Treat SIGTERM (and SIGINT, even where a shell started us ignoring it) like
    Ctrl-C: the run in progress is killed with its whole process group, and the
    results so far are printed, instead of leaving Beam workers running."""
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, interrupt)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["quality"]:  # the cross-validated quality measurement
        from benchmarks import quality

        return quality.main(argv[1:])
    if argv[:1] == ["batch"]:  # batch predictions against TFX's BulkInferrer
        from benchmarks import batch

        return batch.main(argv[1:])
    interrupt_on_signals()
    args = parse_args(argv)
    args.source = machine.source_fingerprint(PROJECT_ROOT)
    work = check_work_dir(args.work_dir)
    started = datetime.now(timezone.utc)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    dataset = data.prepare_dataset(work, args.rows, args.seed)
    print(f"input: {dataset.description} in {dataset.data_root}", flush=True)
    module_file = copy_example_module(work)
    bench = BenchmarkReport(
        started=started.strftime("%Y-%m-%d %H:%M"),
        command=" ".join(["python -m benchmarks", *map(shlex.quote, argv)]),
        dataset=dataset.description, dataset_sha256=dataset.sha256, tfx_mode=args.tfx_mode,
        rounds=args.rounds, machine=machine.machine_info(), versions=machine.versions(),
        revision=machine.git_revision(PROJECT_ROOT), source=args.source, note=args.note,
    )
    try:
        if not args.no_warmup:
            bench.import_seconds = time_imports(work)
            print(f"imports: {bench.import_seconds}", flush=True)
        if args.sdist_repeats > 0:
            bench.sdist = time_sdist(work, args.sdist_repeats)
            print(f"sdist builds: {bench.sdist}", flush=True)
        root = work / "runs" / stamp
        for n in range(1, args.rounds + 1):
            run_round(args, n, dataset, module_file, root, bench.results)
    except KeyboardInterrupt:
        print("interrupted; results so far follow", file=sys.stderr)
    markdown = report.render_markdown(bench)
    path = save(bench, markdown, work, stamp)
    print("\n" + markdown)
    print(f"(saved to {path} and {path.with_suffix('.json')})", flush=True)
    return 0 if bench.results and all(r.ok for r in bench.results) else 1
