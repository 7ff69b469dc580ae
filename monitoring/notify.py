"""Tell someone how a pipeline run or a check of served requests ended.

`--notify-webhook URL` (local_runner.py, monitoring.check) and
`airflow_runner.notify_on_result` post Slack-compatible JSON (Slack's
incoming webhooks, and Mattermost, Rocket.Chat and Teams connectors that
accept the same `text` + `attachments`): the outcome, the refused features,
the missed thresholds, the pushed version and the report's path.

The secret part of a webhook URL is written as `${ENV_VAR}` and read from the
environment when posting, e.g. `https://hooks.slack.com/services/${SLACK_WEBHOOK}`;
messages show the URL's host only. A notification that cannot be sent is one
warning line: it never changes the outcome of what it reports.
"""

from __future__ import annotations

import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request

_VARIABLE = re.compile(r"\$\{(\w+)\}")
TIMEOUT_SECONDS = 10.0
_COLORS = {"passed": "good", "pushed": "good", "completed": "good", "refused": "danger",
           "failed": "danger", "not blessed": "warning"}


class NotifyError(Exception):
    """The webhook cannot be posted to; the message holds no secret."""


def resolve(url: str) -> str:
    """The URL with each ${VAR} replaced from the environment."""
    def value(match: re.Match) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise NotifyError(f"environment variable {name} is not set")
        return os.environ[name]

    return _VARIABLE.sub(value, url)


def shown(url: str) -> str:
    """What may be printed of a webhook URL: its scheme and host."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}" + (f":{parts.port}" if parts.port else "")


def payload(title: str, outcome: str, refused: list[str] | None = None,
            missed: list[str] | None = None, version: str | None = None,
            report: str | None = None) -> dict:
    """Slack-compatible message: a one-line `text`, the details as attachment fields."""
    fields = [{"title": "Outcome", "value": outcome, "short": True}]
    if version:
        fields.append({"title": "Pushed version", "value": str(version), "short": True})
    if refused:
        fields.append({"title": "Refused features", "value": ", ".join(refused), "short": False})
    if missed:
        fields.append({"title": "Missed thresholds", "value": "\n".join(missed), "short": False})
    if report:
        fields.append({"title": "Report", "value": report, "short": False})
    return {"text": f"{title}: {outcome}",
            "attachments": [{"color": _COLORS.get(outcome, "warning"), "fields": fields}]}


def check_payload(result: dict) -> dict:
    """The message for a monitoring.check result (result.json)."""
    return payload(
        f"Served requests check ({result['requests']:,} requests, version {result['version']})",
        result["outcome"], refused=sorted({f["feature"] for f in result["findings"]}),
        report=result["report"])


def send(url: str, message: dict, timeout: float = TIMEOUT_SECONDS) -> bool:
    """Post `message`; False, with one warning line on stderr, when that fails."""
    target = url
    try:
        target = resolve(url)
        request = urllib.request.Request(
            target, data=json.dumps(message).encode("utf-8"),
            headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            answer.read()
        return True
    except NotifyError as error:
        reason = str(error)
    except urllib.error.HTTPError as error:
        reason = f"HTTP {error.code}"
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = str(getattr(error, "reason", error)) or type(error).__name__
    reason = reason.replace(target, shown(target)) if target else reason
    print(f"warning: notification not sent to {shown(target)}: {reason}", file=sys.stderr)
    return False


_FINDING = re.compile(r"^\s+- (\S+) \(")


def refused_features(failure: str) -> list[str]:
    """The features a gate refusal names, one per `  - feature (split split): ...` line."""
    return sorted({m.group(1) for line in failure.splitlines() if (m := _FINDING.match(line))})


def run_payload(output_dir: str, where, exit_code: int, failure: str = "") -> dict:
    """The message for a pipeline run: read back from ML Metadata, plus how it ended.

    `failure` is the run's error text (for a refused run, the gate's message).
    """
    from local.summary import not_blessed_reasons
    from metadata.outcome import read_outcome

    summary = None
    try:
        summary = read_outcome(where)
    except Exception:  # noqa: BLE001 - nothing recorded: the message still goes out
        pass
    refused = refused_features(failure)
    pushed = summary.pushed_path if summary and exit_code == 0 else None
    if refused:
        outcome = "refused"
    elif exit_code != 0:
        outcome = "failed"
    elif pushed:
        outcome = "pushed"
    elif summary and summary.blessed is False:
        outcome = "not blessed"
    else:
        outcome = "completed"
    report = os.path.join(os.path.abspath(output_dir), "report", "index.html")
    last_line = failure.strip().splitlines()[-1] if failure.strip() else ""
    message = payload(
        f"Pipeline run {summary.run_id if summary else ''}".strip(), outcome, refused=refused,
        missed=not_blessed_reasons(summary) if summary and exit_code == 0 else [],
        version=os.path.basename(pushed.rstrip("/")) if pushed else None,
        report=report if os.path.exists(report) else None)
    if last_line and not refused:
        message["attachments"][0]["fields"].append(
            {"title": "Error", "value": last_line, "short": False})
    return message


def airflow_result(context: dict, url: str, output_dir: str, where) -> bool:
    """The Airflow callbacks' work (airflow_runner.notify_on_result): post how the run ended.

    A task's on_failure_callback gets the task's exception (for the gate, its
    refusal naming the features); the DAG's on_success_callback gets none.
    """
    error = context.get("exception")
    failed = error is not None or str(getattr(context.get("dag_run"), "state", "")) == "failed"
    failure = str(error) if error is not None else ("the DAG run failed" if failed else "")
    return send(url, run_payload(output_dir, where, 1 if failed else 0, failure))
