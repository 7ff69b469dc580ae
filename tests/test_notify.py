"""monitoring.notify against a real HTTP server on 127.0.0.1: what arrives, what is printed."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from monitoring import notify
from pipeline.components.gate import failure_message
from tests.conftest import ROOT

SECRET = "T000/B000/s3cr3t-token"


class Webhook:
    """A local webhook receiver: records each POST, answers with `status`."""

    def __init__(self, status: int = 200):
        self.received: list[tuple[str, dict]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server method name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.received.append((self.path, json.loads(body)))
                self.send_response(status)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook():
    hook = Webhook()
    yield hook
    hook.close()


def fields(message: dict) -> dict[str, str]:
    return {f["title"]: f["value"] for f in message["attachments"][0]["fields"]}


def test_a_message_arrives_with_the_secret_from_the_environment_and_never_printed(
        webhook, monkeypatch, capsys):
    monkeypatch.setenv("TEST_WEBHOOK_SECRET", SECRET)
    message = notify.payload("Pipeline run r1", "refused", refused=["fare"],
                             missed=["auc 0.90 < 0.945"], version="17", report="/r/index.html")
    assert notify.send(webhook.base + "/services/${TEST_WEBHOOK_SECRET}", message)
    path, received = webhook.received[0]
    assert path == "/services/" + SECRET
    assert received["text"] == "Pipeline run r1: refused"
    assert fields(received) == {"Outcome": "refused", "Pushed version": "17",
                                "Refused features": "fare", "Missed thresholds": "auc 0.90 < 0.945",
                                "Report": "/r/index.html"}
    out = capsys.readouterr()
    assert SECRET not in out.out + out.err


@pytest.mark.parametrize("problem", ["http-500", "no-server", "unset-variable"])
def test_a_failing_webhook_is_one_warning_line(problem, monkeypatch, capsys):
    monkeypatch.setenv("TEST_WEBHOOK_SECRET", SECRET)
    hook = Webhook(status=500)
    url = hook.base + "/services/${TEST_WEBHOOK_SECRET}"
    if problem == "no-server":
        hook.close()
    if problem == "unset-variable":
        url = hook.base + "/services/${TEST_WEBHOOK_UNSET}"
    try:
        assert notify.send(url, notify.payload("t", "passed"), timeout=5) is False
    finally:
        if problem != "no-server":
            hook.close()
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("warning: notification not sent to http")
    assert SECRET not in err and "/services" not in err


def test_a_gate_refusal_names_its_features_and_a_missing_store_still_notifies(tmp_path):
    findings = [{"feature": "fare", "split": "train", "type": "COMPARATOR_DISTRIBUTION_DRIFT",
                 "description": "moved"},
                {"feature": "company", "split": "eval", "type": "LOW_PRESENCE",
                 "description": "empty"}]
    failure = failure_message(findings)
    assert notify.refused_features(failure) == ["company", "fare"]
    message = notify.run_payload(str(tmp_path), str(tmp_path / "metadata.sqlite"), 1, failure)
    assert message["text"].endswith(": refused")
    assert fields(message)["Refused features"] == "company, fare"
    failed = notify.run_payload(str(tmp_path), str(tmp_path / "nothing.sqlite"), 2,
                                "error: input not found")
    assert fields(failed) == {"Outcome": "failed", "Error": "error: input not found"}


def test_the_airflow_callback_posts_the_failed_tasks_error(webhook, tmp_path):
    error = RuntimeError(failure_message([{"feature": "fare", "split": "train",
                                            "type": "X", "description": "moved"}]))
    sent = notify.airflow_result({"exception": error}, webhook.base + "/hook", str(tmp_path),
                                 str(tmp_path / "metadata.sqlite"))
    assert sent and fields(webhook.received[0][1])["Refused features"] == "fare"


def test_local_runner_notifies_a_run_that_could_not_start(webhook, tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_WEBHOOK_SECRET", SECRET)
    result = subprocess.run(
        [sys.executable, str(ROOT / "local_runner.py"), "--data-root", str(tmp_path / "missing"),
         "--output-dir", str(tmp_path / "out"),
         "--notify-webhook", webhook.base + "/services/${TEST_WEBHOOK_SECRET}"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 2
    path, message = webhook.received[0]
    assert path == "/services/" + SECRET and fields(message)["Outcome"] == "failed"
    assert SECRET not in result.stdout + result.stderr


def test_a_check_that_cannot_run_notifies_and_exits_2(webhook, tmp_path):
    (tmp_path / "requests").mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "monitoring.check", "--requests", str(tmp_path / "requests"),
         "--output-dir", str(tmp_path), "--notify-webhook", webhook.base + "/hook"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: no finished capture files in {tmp_path / 'requests'}"
    told = fields(webhook.received[0][1])
    assert told["Outcome"] == "failed" and told["Error"].startswith("no finished capture files")


@pytest.mark.e2e
def test_a_run_the_gate_refuses_notifies_its_features(webhook, tmp_path):
    """A real run stopped by the gate (trip_seconds emptied): the message names the feature."""
    import csv

    rows = list(csv.reader(open(ROOT / "data" / "data.csv", newline="")))
    header, body = rows[0], rows[1:3001]
    column = header.index("trip_seconds")
    data = tmp_path / "data" / "data.csv"
    data.parent.mkdir()
    with open(data, "w", newline="") as f:
        csv.writer(f).writerows([header, *[r[:column] + [""] + r[column + 1:] for r in body]])
    result = subprocess.run(
        [sys.executable, str(ROOT / "local_runner.py"), "--data-root", str(data.parent),
         "--output-dir", str(tmp_path / "out"), "--notify-webhook", webhook.base + "/hook"],
        cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 1, result.stderr[-3000:]
    told = fields(webhook.received[0][1])
    assert told["Outcome"] == "refused" and "trip_seconds" in told["Refused features"]
    assert "Pushed version" not in told
