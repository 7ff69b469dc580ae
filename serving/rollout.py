"""Pin, roll back, canary and promote pushed versions with TF Serving's version labels.

    python -m serving.rollout status              # labels, loaded versions, history
    python -m serving.rollout pin 1733551234      # serve V as stable (drops a canary)
    python -m serving.rollout rollback            # stable -> the newest version older than it
    python -m serving.rollout canary 1733559999   # also load V, labelled canary
    python -m serving.rollout promote             # the canary becomes stable

Each verb rewrites the live config (`serving/rollout_config.py`: where it is
and why the order of steps matters) in the steps TF Serving accepts: the new
version is loaded first, and only once it is available do the labels move.
With `--server URL` the command asks the server (REST `GET
/v1/models/<name>/versions/<v>`) until the version is AVAILABLE; without it,
it waits `--settle-seconds`, long enough for the server to re-read the config
and load a version of this size.

Every change is recorded in ML Metadata (verb, labels before and after, time,
the PushedModel artifacts involved); `status` prints that history. The
pipeline's Evaluator compares each candidate with the version labelled
`stable`, so a rollback also rolls back what the next candidate must beat.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

from metadata import serving_records
from metadata import store as metadata_store
from options import declared as options_declared
from serving import MODEL_NAME, SAVED_MODEL_FILE
from serving import rollout_config as rc
from serving.rollout_config import CANARY, STABLE, RolloutError, ServingState
from serving.server_api import available_versions

# Two config polls, and the few seconds TF Serving takes to load and warm up
# a version of this model.
DEFAULT_SETTLE_SECONDS = 2 * rc.CONFIG_POLL_SECONDS + 10
AVAILABLE_TIMEOUT_SECONDS = 300


def pushed_versions(serving_root: Path) -> list[int]:
    """Complete version folders under the model's base path, ascending."""
    base = Path(serving_root) / MODEL_NAME
    if not base.is_dir():
        return []
    return sorted(int(p.name) for p in base.iterdir()
                  if p.name.isdigit() and (p / SAVED_MODEL_FILE).exists())


def labelled(serving_root: Path, label: str) -> int | None:
    """The version `label` names in the live config (None: no such label)."""
    return rc.read(serving_root).labels.get(label)


def stable_or_newest(state: ServingState, versions: list[int]) -> int | None:
    """What serves unlabelled traffic today: the stable version, else the newest."""
    stable = state.labels.get(STABLE)
    return stable if stable in versions else (versions[-1] if versions else None)


# --------------------------------------------------------------------------- verbs


def target_labels(verb: str, state: ServingState, versions: list[int],
                  version: int | None) -> dict[str, int]:
    """The labels after `verb`; RolloutError when the verb makes no sense now."""
    if version is not None and version not in versions:
        raise RolloutError(f"version {version} is not pushed (pushed: "
                           f"{', '.join(map(str, versions)) or 'none'})")
    stable = stable_or_newest(state, versions)
    labels = {k: v for k, v in state.labels.items() if v in versions}
    if verb == "pin":
        return {STABLE: version}
    if verb == "rollback":
        older = [v for v in versions if stable is not None and v < stable]
        if not older:
            raise RolloutError(f"no version older than the stable one ({stable}) to roll back to")
        return {STABLE: older[-1]}
    if verb == "canary":
        if version == stable:
            raise RolloutError(f"version {version} is already the stable version")
        return {STABLE: stable, CANARY: version}
    if verb == "promote":
        if CANARY not in labels:
            raise RolloutError("there is no canary to promote")
        return {STABLE: labels[CANARY]}
    raise RolloutError(f"unknown verb {verb}")


def rest_available(server: str) -> Callable[[int], bool]:
    """Whether the server at `server` reports version v AVAILABLE."""
    def available(version: int) -> bool:
        return version in available_versions(server, MODEL_NAME, version, timeout=5)
    return available


def wait_for(versions: list[int], available: Callable[[int], bool] | None,
             settle_seconds: float, timeout: float = AVAILABLE_TIMEOUT_SECONDS) -> None:
    """Until the server has loaded `versions` (or `settle_seconds`, with no server to ask)."""
    if available is None:
        time.sleep(settle_seconds)
        return
    deadline = time.monotonic() + timeout
    while not all(available(v) for v in versions):
        if time.monotonic() > deadline:
            raise RolloutError(f"the server did not load version(s) {versions} within "
                               f"{timeout:.0f} s; the config still names the old labels")
        time.sleep(0.5)


def apply(serving_root: Path, labels: dict[str, int], settle_seconds: float = 0,
          available: Callable[[int], bool] | None = None) -> list[ServingState]:
    """Write the configs that take the live state to `labels`, in TF Serving's order."""
    current = rc.read(serving_root)
    steps = rc.plan(current, labels)
    before = current
    for index, step in enumerate(steps):
        problem = rc.transition_problem(before, step)
        if problem:  # plan() never does this; a guard against a future edit
            raise RolloutError(f"refusing to write a config TF Serving rejects: {problem}")
        rc.write(serving_root, step)
        new = sorted(set(step.versions) - set(before.versions))
        if index + 1 < len(steps) and rc.moves_label_to(before, steps[index + 1], new):
            wait_for(new, available, settle_seconds)
        before = step
    return steps


def after_push(serving_root: Path, version: int, as_label: str = STABLE,
               settle_seconds: float = DEFAULT_SETTLE_SECONDS) -> list[ServingState]:
    """The Pusher's step: the new version becomes `stable` (default) or `canary`."""
    state = rc.read(serving_root)
    versions = pushed_versions(serving_root)
    previous = stable_or_newest(state, [v for v in versions if v != version])
    labels = {k: v for k, v in state.labels.items() if v in versions}
    if as_label == CANARY and previous is not None:
        labels.update({STABLE: previous, CANARY: version})
    else:
        labels[STABLE] = version
        if labels.get(CANARY) == version:
            del labels[CANARY]
    return apply(serving_root, labels, settle_seconds)


def label_after_push(base_directory: str, version: int, push_as: str,
                     settle_seconds: float) -> bool:
    """The Pusher's call: label a just-pushed version in the live config beside its
    base path; False (nothing done) for an object store, whose server config the
    cluster manages where it is mounted."""
    if "://" in base_directory:
        return False
    serving_root = Path(base_directory).resolve().parent
    after_push(serving_root, version, push_as, settle_seconds)
    return True


# --------------------------------------------------------------------------- CLI


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m serving.rollout",
        description="Show and change which pushed version TF Serving serves as stable / canary.")
    parser.add_argument("verb", choices=("status", "pin", "rollback", "canary", "promote"))
    parser.add_argument("version", nargs="?", type=int, default=None,
                        help="the version, for pin and canary")
    parser.add_argument("--output-dir", default="outputs",
                        help="the pipeline's --output-dir (default: %(default)s)")
    parser.add_argument("--server", default=None, metavar="URL",
                        help="TF Serving REST address to ask whether a version is loaded "
                             "before labels move (e.g. http://localhost:8501)")
    parser.add_argument("--settle-seconds", type=float, default=DEFAULT_SETTLE_SECONDS,
                        help="without --server: seconds to let the server load a new version "
                             "before labels move (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="status as JSON")
    options_declared.add_metadata_option(parser)
    args = parser.parse_args(argv)
    if (args.verb in ("pin", "canary")) != (args.version is not None):
        parser.error(f"{args.verb} {'needs' if args.version is None else 'takes no'} a version")
    return args


def status(serving_root: Path, where, as_json: bool) -> str:
    state = rc.read(serving_root)
    store = metadata_store.open_store(where) if _exists(where) else None  # read-only
    history = serving_records.executions_of(store, serving_records.ROLLOUT_CHANGE) if store else []
    facts = {"config": str(rc.live_config_path(serving_root)), "labels": state.labels,
             "loaded": list(state.versions), "pushed": pushed_versions(serving_root),
             "history": history}
    if as_json:
        return json.dumps(facts, indent=1, default=str)
    lines = [f"Config: {facts['config']}"
             + ("" if rc.live_config_path(serving_root).exists() else " (not written yet)")]
    for label in (STABLE, CANARY):
        lines.append(f"  {label:<7} {state.labels.get(label, '-')}")
    lines.append(f"  loaded  {', '.join(map(str, state.versions)) or 'newest (no pin)'}")
    lines.append(f"  pushed  {', '.join(map(str, facts['pushed'])) or 'none'}")
    lines.append(f"History ({len(history)} change(s)):")
    for change in history:
        at = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(change.get("at", 0))))
        lines.append(f"  {at}  {change.get('verb', '?'):<8} "
                     f"{change.get('labels_before')} -> {change.get('labels_after')}")
    return "\n".join(lines)


def _exists(where) -> bool:
    return not isinstance(where, str) or Path(where).exists()


def run(args: argparse.Namespace) -> int:
    serving_root = Path(args.output_dir) / "serving_model"
    where = options_declared.metadata_location(args)
    if args.verb == "status":
        print(status(serving_root, where, args.json))
        return 0
    state = rc.read(serving_root)
    labels = target_labels(args.verb, state, pushed_versions(serving_root), args.version)
    available = rest_available(args.server) if args.server else None
    steps = apply(serving_root, labels, args.settle_seconds, available)
    if _exists(where):
        serving_records.record_rollout(where, MODEL_NAME, args.verb, state.labels, labels,
                                       sorted(set(labels.values())))
    changed = "unchanged" if not steps else f"{len(steps)} config step(s)"
    print(f"{args.verb}: {json.dumps(labels)} ({changed}; {rc.live_config_path(serving_root)})")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return run(args)
    except (RolloutError, FileNotFoundError, ValueError,
            metadata_store.MetadataConnectionError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
