"""The nginx capture sidecar, for real, in front of the serving test harness's REST port.

Debian's nginx with its njs module runs serving/nginx/nginx.conf.template (filled
as the sidecar's Dockerfile fills it) between `serving.client` and the
`TFServingTestHarness` of tests/test_serving_e2e.py, which answers with the
pushed model. What nginx logs must read back (serving/proxy_log.py) as the same
rows and probabilities the client itself captured (`--capture`), and
monitoring.check must check it.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from serving import capture
from tests.extras import _free_port, _tool, unavailable
from tests.test_capture import nginx_config
from tests.test_serving_e2e import ROOT, ROWS, harness, rows_csv  # noqa: F401 - fixtures

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def nginx(harness, tmp_path_factory):  # noqa: F811 - the fixture imported above
    binary = _tool("nginx")
    if binary is None:
        unavailable("nginx is not installed (apt-get install nginx libnginx-mod-http-js)")
    folder = tmp_path_factory.mktemp("nginx")
    state, requests = folder / "state", folder / "requests"
    state.mkdir()
    requests.mkdir()
    port = _free_port()
    config = state / "nginx.conf"
    config.write_text(nginx_config(
        LISTEN_PORT=f"127.0.0.1:{port}", UPSTREAM=harness.rest_url.removeprefix("http://"),
        CAPTURE_DIR=str(requests), STATE_DIR=str(state)))
    process = subprocess.Popen([binary, "-c", str(config), "-p", str(state)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if process.poll() is not None or time.time() > deadline:
                process.kill()
                output = process.stdout.read().decode()
                raise RuntimeError(f"nginx did not start: {output}") from None
            time.sleep(0.2)
    yield f"http://127.0.0.1:{port}", requests
    process.terminate()
    process.wait(timeout=30)


def run_client(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "serving.client", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def parsed(rows: list[bytes]) -> list:
    from tensorflow.core.example import example_pb2

    return [example_pb2.Example.FromString(r) for r in rows]


def test_nginx_logs_what_the_client_captures_itself(nginx, harness, rows_csv, tmp_path):  # noqa: F811
    url, proxy_requests = nginx
    own = tmp_path / "client"
    result = run_client(str(rows_csv), "--rest", url, "--capture", str(own))
    assert result.returncode == 0, result.stderr
    printed = [float(line) for line in result.stdout.splitlines()]
    assert len(printed) == ROWS
    through_proxy = capture.read_captured(proxy_requests)
    by_client = capture.read_captured(own)
    assert len(through_proxy.examples) == ROWS == len(by_client.examples)
    assert parsed(through_proxy.examples) == parsed(by_client.examples)
    np.testing.assert_allclose(through_proxy.probabilities, by_client.probabilities, rtol=1e-6)
    np.testing.assert_allclose(printed, by_client.probabilities, rtol=2e-5, atol=1e-7)
    # The client asks REST which version answers; nginx cannot know it.
    assert set(by_client.versions) == {harness.version}
    assert set(through_proxy.versions) == {None}


def test_grpc_capture_records_the_answering_version_and_ids(harness, rows_csv, tmp_path):  # noqa: F811
    with_ids = tmp_path / "rows.csv"
    lines = rows_csv.read_text().splitlines()
    with_ids.write_text("\n".join([lines[0] + ",trip_id"]
                                  + [f"{line},trip-{i}" for i, line in enumerate(lines[1:])]))
    result = run_client(str(with_ids), "--grpc", harness.grpc_target, "--capture",
                        str(tmp_path / "log"), "--capture-id-column", "trip_id")
    assert result.returncode == 0, result.stderr
    assert "trip_id" not in result.stderr  # read and logged, not "not sent"
    read = capture.read_captured(tmp_path / "log")
    assert read.ids == [f"trip-{i}" for i in range(ROWS)]
    assert set(read.versions) == {harness.version}


def test_monitoring_check_reads_the_proxy_log(nginx, pipeline_run, tmp_path):
    _, proxy_requests = nginx
    shutil.copy(pipeline_run.metadata_path, tmp_path / "metadata.sqlite")
    result = subprocess.run(
        [sys.executable, "-m", "monitoring.check", "--requests", str(proxy_requests),
         "--output-dir", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode in (0, 1), result.stderr[-3000:]
    output = result.stdout + result.stderr
    assert f"{ROWS:,} requests answered by version" in output
    assert "the log does not say which version answered" in output
    assert Path(output.strip().splitlines()[-1].removeprefix("Report: ")).is_file()
