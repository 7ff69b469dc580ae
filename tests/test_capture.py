"""serving.capture and serving.proxy_log: what is logged is read back row for row."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from serving import capture, proxy_log
from serving.examples import load_columns, to_example

NGINX_DIR = Path(proxy_log.__file__).resolve().parent / "nginx"
# The placeholders serving/nginx/Dockerfile fills with envsubst (nginx's own $variables stay).
PLACEHOLDERS = ("LISTEN_PORT", "UPSTREAM", "CAPTURE_DIR", "STATE_DIR", "CONF_DIR")


def nginx_config(**values: str) -> str:
    """serving/nginx/nginx.conf.template with its placeholders filled, as envsubst does."""
    text = (NGINX_DIR / "nginx.conf.template").read_text()
    values.setdefault("CONF_DIR", str(NGINX_DIR))
    for name in PLACEHOLDERS:
        text = text.replace("${" + name + "}", values[name])
    return text

COLUMNS = load_columns()


def example(fare: float, payment: str = "Cash") -> bytes:
    return to_example({"fare": fare, "payment_type": payment.encode()}, COLUMNS)


def parsed(rows: list[bytes]) -> list:
    """tf.Examples compared as protos: a map's serialized order may differ between calls."""
    from tensorflow.core.example import example_pb2

    return [example_pb2.Example.FromString(r) for r in rows]


def test_rows_probabilities_ids_and_version_are_read_back_across_rotated_files(tmp_path):
    rows = [example(float(i)) for i in range(300)]
    with capture.CaptureWriter(tmp_path, max_bytes=4000) as writer:
        for start in range(0, 300, 50):
            writer.log(rows[start:start + 50], [i / 300 for i in range(start, start + 50)],
                       version=7, ids=[f"t{i}" for i in range(start, start + 50)])
    files = capture.capture_files(tmp_path)
    assert len(files) > 1 and not list(tmp_path.glob("*.partial"))
    read = capture.read_captured(tmp_path)
    assert parsed(read.examples) == parsed(rows)
    assert read.ids == [f"t{i}" for i in range(300)]
    assert read.versions == [7] * 300
    assert read.probabilities == pytest.approx([i / 300 for i in range(300)], abs=1e-6)


def test_a_file_is_rotated_by_age_and_unfinished_files_are_not_read(tmp_path):
    now = [1000.0]
    writer = capture.CaptureWriter(tmp_path, max_seconds=60, clock=lambda: now[0])
    writer.log([example(1.0)], [0.5])
    assert capture.read_captured(tmp_path).examples == []  # still *.partial
    now[0] += 61
    writer.log([example(2.0)], [0.25])
    assert parsed(capture.read_captured(tmp_path).examples) == parsed([example(1.0)])
    writer.close()
    assert len(capture.capture_files(tmp_path)) == 2
    assert parsed(capture.read_captured(tmp_path).examples) == parsed(
        [example(1.0), example(2.0)])


def test_dicts_and_protos_are_logged_as_the_client_would_send_them(tmp_path):
    from tensorflow.core.example import example_pb2

    proto = example_pb2.Example.FromString(example(3.5))
    with capture.CaptureWriter(tmp_path) as writer:
        writer.log([{"fare": "12.5", "payment_type": "Cash", "tips": "1.0"}, proto], [0.1, 0.2])
        with pytest.raises(ValueError, match="unknown column 'nope'"):
            writer.log([{"nope": 1}], [0.3])
        with pytest.raises(ValueError, match="1 rows but 2 probabilities"):
            writer.log([proto], [0.1, 0.2])
    read = capture.read_captured(tmp_path)
    # tips is not a serving input
    assert parsed(read.examples) == parsed([example(12.5), example(3.5)])


def test_a_sample_rate_keeps_about_that_share_of_rows(tmp_path):
    with capture.CaptureWriter(tmp_path, sample_rate=0.25, seed=1) as writer:
        logged = sum(writer.log([example(1.0)] * 100, [0.5] * 100) for _ in range(20))
    assert 400 < logged < 600
    assert len(capture.read_captured(tmp_path).examples) == logged


def nginx_line(uri: str, rows: list[bytes], predictions: list, status: str = "200") -> str:
    body = {"signature_name": "serving_default",
            "instances": [{"b64": base64.b64encode(r).decode()} for r in rows]}
    return json.dumps({"time": "2026-12-07T06:00:00+00:00", "method": "POST", "uri": uri,
                       "status": status, "request": json.dumps(body),
                       "response": json.dumps({"predictions": predictions})}) + "\n"


def test_the_proxy_log_is_read_as_prediction_logs(tmp_path):
    rows = [example(1.0), example(2.0, "Credit Card")]
    (tmp_path / proxy_log.PROXY_LOG_NAME).write_text(
        nginx_line("/v1/models/chicago_taxi:predict", rows, [[0.25], [0.75]])
        + nginx_line("/v1/models/chicago_taxi/versions/3:predict", rows[:1], [0.5])
        + nginx_line("/v1/models/chicago_taxi:predict", rows, [], status="400")
        + nginx_line("/v1/models/chicago_taxi/metadata", rows, [])
        + '{"time": "2026-12-07T06:00:01+00:00", "method": "PO')  # half-written last line
    read = capture.read_captured(tmp_path)
    assert parsed(read.examples) == parsed(rows + rows[:1])
    assert read.probabilities == [0.25, 0.75, 0.5]
    assert read.versions == [None, None, 3]
    # A log rotated by renaming (logrotate, then `nginx -s reopen`) is still read.
    (tmp_path / proxy_log.PROXY_LOG_NAME).rename(tmp_path / "requests.proxy.jsonl-20261207")
    assert len(capture.read_captured(tmp_path).examples) == 3


def test_the_sidecars_dockerfile_fills_exactly_the_templates_placeholders():
    import re

    dockerfile = (NGINX_DIR / "Dockerfile").read_text()
    listed = re.search(r"envsubst '([^']+)'", dockerfile).group(1).split()
    template = (NGINX_DIR / "nginx.conf.template").read_text()
    assert sorted(listed) == sorted("${" + p + "}" for p in PLACEHOLDERS)
    assert set(re.findall(r"\$\{(\w+)\}", template)) == set(PLACEHOLDERS)
    assert f"{proxy_log.PROXY_LOG_NAME} predict;" in template


def test_the_kustomize_component_adds_the_sidecar(tmp_path):
    import shutil
    import subprocess

    import yaml

    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: the capture component is not rendered")
    serving = NGINX_DIR.parent
    copy = tmp_path / "serving"
    shutil.copytree(serving, copy, ignore=shutil.ignore_patterns("__pycache__"))
    kustomization = copy / "kustomization.yaml"
    text = kustomization.read_text()
    commented = "# components:\n#   - nginx\n"
    assert commented in text
    kustomization.write_text(text.replace(commented, "components:\n  - nginx\n"))
    rendered = subprocess.run([kubectl, "kustomize", str(copy)], capture_output=True, text=True,
                              timeout=120)
    assert rendered.returncode == 0, rendered.stderr
    objects = list(yaml.safe_load_all(rendered.stdout))
    [deployment] = [o for o in objects if o["kind"] == "Deployment"]
    containers = {c["name"]: c for c in deployment["spec"]["template"]["spec"]["containers"]}
    assert set(containers) == {"tf-serving", "capture-proxy"}
    env = {e["name"]: e.get("value") for e in containers["capture-proxy"]["env"]}
    assert env["UPSTREAM"] == "127.0.0.1:8501"
    [service] = [o for o in objects if o["kind"] == "Service"]
    assert "capture" in {p["name"] for p in service["spec"]["ports"]}
