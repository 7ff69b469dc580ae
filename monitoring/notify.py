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
