"""Read what the nginx capture sidecar logs, as the same PredictionLogs the client writes.

For callers that do not use `serving.client`, `serving/nginx/` puts Debian's
nginx in front of TF Serving's REST port: it proxies every request unchanged
and writes one JSON line per predict call with the request body and (through
the njs module's body filter) the response body, to `requests.proxy.jsonl`
in the capture folder. This module reads each answered predict call back as
(examples, probabilities, model, version), which `serving.capture` turns
into a `PredictionLog` like the client's, so `monitoring.check` reads both
sources alike (capture imports this module, not the other way round). A
half-written last line, other endpoints and failed calls are skipped; nginx
cannot know which version answered unless the URL names it (`/versions/<v>`),
so the version is left unknown otherwise.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path

from serving import INPUT_KEY, OUTPUT_KEY

# requests.proxy.jsonl, and rotated copies such as requests.proxy.jsonl-20261207
PROXY_LOG_SUFFIX = ".proxy.jsonl"
PROXY_LOG_NAME = "requests" + PROXY_LOG_SUFFIX
def is_proxy_log(name: str) -> bool:
    """requests.proxy.jsonl, or a copy rotated as requests.proxy.jsonl-<suffix>."""
    return PROXY_LOG_SUFFIX in name


_PREDICT = re.compile(r"^/v1/models/([^/:]+)(?:/versions/(\d+))?:predict$")


def _bytes(value: object) -> bytes:
    if isinstance(value, dict) and list(value) == ["b64"]:
        return base64.b64decode(value["b64"])
    if isinstance(value, str):
        return value.encode("utf-8")
    raise ValueError("not a serialized tf.Example")


def request_examples(body: dict) -> list[bytes]:
    """The serialized tf.Examples of a REST predict body, row or columnar format."""
    if "instances" in body:
        rows = body["instances"]
        return [_bytes(r[INPUT_KEY] if isinstance(r, dict) and INPUT_KEY in r else r)
                for r in rows]
    columns = body.get("inputs")
    if isinstance(columns, dict):
        columns = columns.get(INPUT_KEY)
    if not isinstance(columns, list):
        raise ValueError("no instances or inputs")
    return [_bytes(v) for v in columns]


def response_probabilities(body: dict, count: int) -> list[float]:
    """One float per example from {"predictions": ...} or {"outputs": ...}."""
    values = body.get("predictions", body.get("outputs"))
    if isinstance(values, dict):
        values = values.get(OUTPUT_KEY)
    result = []
    for value in values or []:
        if isinstance(value, dict):
            value = value.get(OUTPUT_KEY)
        while isinstance(value, list) and len(value) == 1:
            value = value[0]
        result.append(float(value))
    if len(result) != count:
        raise ValueError(f"{len(result)} predictions for {count} examples")
    return result


def parse_line(line: str) -> tuple[list[bytes], list[float], str, int | None] | None:
    """(examples, probabilities, model, version) of one logged predict call; None for
    anything else."""
    try:
        entry = json.loads(line)
        match = _PREDICT.match(entry.get("uri", "").split("?")[0])
        if not match or str(entry.get("status")) != "200" or entry.get("method", "POST") != "POST":
            return None
        examples = request_examples(json.loads(entry["request"]))
        probabilities = response_probabilities(json.loads(entry["response"]), len(examples))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    version = int(match.group(2)) if match.group(2) else None
    return examples, probabilities, match.group(1), version


def read_proxy_log(path: str | Path) -> Iterator[tuple[list[bytes], list[float], str, int | None]]:
    """(examples, probabilities, model, version) of every answered predict call in one
    nginx capture log."""
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            call = parse_line(line)
            if call is not None:
                yield call
