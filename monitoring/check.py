"""Check logged requests against the model version that answered them.

    python -m monitoring.check --requests DIR [--output-dir outputs] [--version V]
        [--notify-webhook URL] [--as-span DATA_ROOT --labels CSV --id-column NAME]

Reads every finished capture file in DIR (serving/capture.py; the nginx
sidecar's log, serving/proxy_log.py), finds the version that answered and its
training statistics and eval split through ML Metadata's lineage, and checks
the window (monitoring/checks.py): schema anomalies in the SERVING
environment, training-serving skew, drift against the previous window that
passed, drift of the served probabilities against the eval split's. Writes
`<output-dir>/monitoring/checks/<id>/` (index.html, result.json, the window's
statistics) in one rename, records the check in ML Metadata, and exits 0 when
nothing is refused, 1 with the gate's one line per finding otherwise, 2 on bad
input. A window that passed becomes the baseline of the next drift check.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from metadata import store as pipeline_store
from metadata.errors import first_line
from metadata.store import MetadataConnectionError
from options import declared as options_declared
from serving.examples import DEFAULT_SCHEMA

MONITORING_DIR = "monitoring"
CHECKS_DIR = "checks"
WINDOW_FILE = "accepted_window.json"  # the previous window that passed
STATS_FILE = "request_statistics.pb"
RESULT_FILE = "result.json"
FIRST_LINE = "Served requests check failed"


class CheckInputError(Exception):
    """The requests, the labels or ML Metadata cannot be used; one line, exit 2."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m monitoring.check",
        description="Check logged requests for skew and drift against the served model's "
        "training data.")
    parser.add_argument("--requests", required=True, metavar="DIR",
                        help="folder of capture files (serving.client --capture, the nginx log)")
    parser.add_argument("--output-dir", default="outputs",
                        help="the pipeline's --output-dir (default: %(default)s)")
    parser.add_argument("--schema", default=str(DEFAULT_SCHEMA),
                        help="curated schema (default: schema/schema.pbtxt)")
    parser.add_argument("--version", default=None,
                        help="the version that answered (default: the one the log names)")
    parser.add_argument("--notify-webhook", metavar="URL", default=None,
                        help="post the outcome as Slack-compatible JSON; write a secret part as "
                             "${ENV_VAR} (read from the environment, never printed)")
    parser.add_argument("--as-span", metavar="DATA_ROOT", default=None,
                        help="write requests whose labels arrived as the next span-N/ folder")
    parser.add_argument("--labels", metavar="CSV", default=None,
                        help="with --as-span: CSV of the id column and tips")
    parser.add_argument("--id-column", default="trip_id",
                        help="with --as-span: the id logged with each request and the labels' "
                             "id column (default: %(default)s)")
    options_declared.add_metadata_option(parser)
    args = parser.parse_args(argv)
    if args.as_span and not args.labels:
        parser.error("--as-span needs --labels CSV")
    return args


def _previous_window(folder: str):
    path = os.path.join(folder, WINDOW_FILE)
    if not os.path.exists(path):
        return None, None
    with open(path) as f:
        record = json.load(f)
    from tensorflow_metadata.proto.v0 import statistics_pb2

    stats = statistics_pb2.DatasetFeatureStatisticsList()
    with open(record["statistics"], "rb") as f:
        stats.ParseFromString(f.read())
    return stats, record["check"]


def _check_id(checks_dir: str) -> str:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    candidate, n = stamp, 1
    while os.path.exists(os.path.join(checks_dir, candidate)):
        n += 1
        candidate = f"{stamp}-{n}"
    return candidate


def _publish(checks_dir: str, check_id: str, files: dict[str, bytes]) -> str:
    """Write the check's folder through a temporary one renamed into place; its path."""
    os.makedirs(checks_dir, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{check_id}-", dir=checks_dir)
    try:
        for name, content in files.items():
            Path(staging, name).write_bytes(content)
        final = os.path.join(checks_dir, check_id)
        os.rename(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final


def _inputs(args: argparse.Namespace):
    """(captured rows, schema, store location, graph, served model); CheckInputError if unusable."""
    from serving.capture import capture_files, read_captured

    # Bad input is told before TensorFlow loads (and talks).
    if not os.path.isdir(args.requests):
        raise CheckInputError(f"requests folder not found: {args.requests}")
    if not capture_files(args.requests):
        raise CheckInputError(f"no finished capture files in {args.requests}")
    import tensorflow_data_validation as tfdv

    from metadata.graph import MetadataGraph
    from monitoring import served
    from review.lineage import LineageError

    captured = read_captured(args.requests)
    if not captured.examples:
        raise CheckInputError(f"no logged requests in {args.requests}")
    if not os.path.isfile(args.schema):
        raise CheckInputError(f"schema not found: {args.schema}")
    schema = tfdv.load_schema_text(args.schema)
    where = options_declared.metadata_location(args)
    try:
        graph = MetadataGraph(where)
    except FileNotFoundError as error:
        raise CheckInputError(f"{error}: run the pipeline first (or pass --output-dir)") \
            from None
    version, how = served.answering_version(captured.versions, args.version)
    try:
        model = served.served_model(graph, version, how)
    except LineageError as error:
        raise CheckInputError(f"cannot find what the served model was trained on: {error}") \
            from None
    return captured, schema, where, graph, model


def _verdict(found: list[dict], count: int, how: str) -> str:
    if not found:
        return (f"Served requests check passed: {count:,} requests answered by {how}; "
                "no anomaly, skew or drift.")
    refused = {f["feature"] for f in found}
    return (f"{FIRST_LINE}: {len(refused)} feature(s) have anomalies, skew or drift in "
            f"{count:,} requests answered by {how}:")


def _record(where, result: dict, final: str, pushed_id: int) -> None:
    """Record the published check; remove it when ML Metadata cannot take it."""
    from monitoring import record

    try:
        record.record_check(pipeline_store.open_store(where, writable=True), result,
                            os.path.join(final, STATS_FILE), pushed_id)
    except BaseException as error:
        shutil.rmtree(final, ignore_errors=True)  # an unrecorded check did not happen
        if isinstance(error, Exception):  # e.g. the store is locked by a running pipeline
            raise CheckInputError(f"cannot record the check in ML Metadata: "
                                  f"{first_line(error, with_type=True)}") from None
        raise


def run_check(args: argparse.Namespace) -> tuple[dict, list[str]]:
    """Check the window; (result, lines to print)."""
    captured, schema, where, graph, model = _inputs(args)
    from monitoring import checks, page, served
    from pipeline.components.gate import finding_line

    folder = os.path.join(args.output_dir, MONITORING_DIR)
    requests = checks.request_statistics(captured.examples)
    previous, previous_id = _previous_window(folder)
    answered = np.array([p for p, v in zip(captured.probabilities, captured.versions, strict=True)
                         if p is not None and (v is None or str(v) == model.version)])
    reference = served.eval_probabilities(model, folder)
    found = checks.all_findings(requests, model.training, previous, schema, answered, reference)
    checks_dir = os.path.join(folder, CHECKS_DIR)
    check_id = _check_id(checks_dir)
    report = os.path.abspath(os.path.join(checks_dir, check_id, "index.html"))
    count = len(captured.examples)
    result = {
        "check": check_id, "outcome": "refused" if found else "passed", "requests": count,
        "version": model.version, "answered_by": model.how, "requests_dir": args.requests,
        "previous_window": previous_id, "report": report, "findings": found,
    }
    verdict = _verdict(found, count, model.how)
    overview = [["requests checked", f"{count:,} (from {args.requests})"],
                ["answered by", model.how],
                ["drift compared with", f"window {previous_id}" if previous_id
                 else "nothing: no window passed before"],
                ["ML Metadata", graph.path]]
    html = page.render(check_id, verdict, overview, found, requests, model.training,
                       answered, reference)
    final = _publish(checks_dir, check_id, {
        STATS_FILE: requests.SerializeToString(), "index.html": html.encode("utf-8"),
        RESULT_FILE: json.dumps(result, indent=2).encode("utf-8")})
    _record(where, result, final, model.pushed_id)
    if not found:
        _point_window(folder, os.path.join(final, STATS_FILE), check_id)
    return result, [verdict, *(finding_line(f) for f in found), f"Report: {report}"]


def _point_window(folder: str, statistics: str, check_id: str) -> None:
    path = os.path.join(folder, WINDOW_FILE)
    with open(path + ".tmp", "w") as f:
        json.dump({"statistics": statistics, "check": check_id}, f)
    os.replace(path + ".tmp", path)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's C++ chatter (CUDA...)
    # Libraries' notices about Python versions and deprecations are not the check's output.
    warnings.simplefilter("ignore", FutureWarning)
    warnings.simplefilter("ignore", DeprecationWarning)
    from monitoring import notify

    try:
        result, lines = run_check(args)
    except (CheckInputError, MetadataConnectionError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        if args.notify_webhook:
            message = notify.payload("Served requests check", "failed")
            message["attachments"][0]["fields"].append(
                {"title": "Error", "value": str(error), "short": False})
            notify.send(args.notify_webhook, message)
        return 2
    stream = sys.stdout if result["outcome"] == "passed" else sys.stderr
    print("\n".join(lines), file=stream)
    if args.as_span:
        from monitoring import span

        try:
            print(span.write_next_span(args, result))
        except (ValueError, OSError) as error:
            print(f"error: --as-span: {error}", file=sys.stderr)
            return 2
    if args.notify_webhook:
        notify.send(args.notify_webhook, notify.check_payload(result))
    return 0 if result["outcome"] == "passed" else 1


if __name__ == "__main__":
    sys.exit(main())
