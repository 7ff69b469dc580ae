"""Optional parts of the test set-up: a private MariaDB server and the Airflow venv.

On a developer machine without them, the tests that need them skip with the
reason. CI (`.ci/run`) installs both and sets TAXI_REQUIRE_EXTRAS=1, which
turns a would-be skip into a failure: there, these tests must really run.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
AIRFLOW_VENV = ROOT / ".venv-airflow"
AZUREML_VENV = ROOT / ".venv-azureml"
REQUIRE_ENV = "TAXI_REQUIRE_EXTRAS"


def unavailable(reason: str) -> None:
    """Skip the test, printing why; fail instead where CI requires the extras."""
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason} ({REQUIRE_ENV}=1: this test must run here)")
    pytest.skip(reason)


def airflow_python() -> Path:
    """The Python of the Airflow venv built by `make airflow`."""
    python = AIRFLOW_VENV / "bin" / "python"
    if not python.exists():
        unavailable(f"the Airflow extra is not installed ({python} missing): run `make airflow`")
    return python


def azureml_python() -> Path:
    """The Python of the Azure ML extra's venv built by `make azureml`."""
    python = AZUREML_VENV / "bin" / "python"
    if not python.exists():
        unavailable(f"the Azure ML extra is not installed ({python} missing): run `make azureml`")
    return python


@dataclass(frozen=True)
class MariaDB:
    """A running private server and an account on it with a password."""

    host: str
    port: int
    user: str
    password: str
    socket: Path
    admin: tuple[str, ...]  # the `mariadb` client as root over the private socket
    ca_file: Path  # the self-signed CA of the server's TLS certificate
    tls_user: str = "mlmd_tls"  # may only log in over TLS (REQUIRE SSL)

    def sql(self, statement: str) -> str:
        return subprocess.run(
            [*self.admin, "-N", "-e", statement], check=True, capture_output=True, text=True
        ).stdout

    def create_database(self, name: str) -> str:
        """A fresh database for one test; `HOST:PORT/NAME` for --metadata-mysql."""
        self.sql(f"DROP DATABASE IF EXISTS {name}; CREATE DATABASE {name}")
        return f"{self.host}:{self.port}/{name}"

    @property
    def env(self) -> dict[str, str]:
        return {"MLMD_MYSQL_USER": self.user, "MLMD_MYSQL_PASSWORD": self.password}

    @property
    def tls_env(self) -> dict[str, str]:
        """The TLS-only account over TLS with the server's CA (as on Azure).

        Without verifying the server's certificate: ML Metadata 1.16's client
        refuses this valid one when asked to (metadata/store.py, SSL_VERIFY_ENV).
        """
        return {"MLMD_MYSQL_USER": self.tls_user, "MLMD_MYSQL_PASSWORD": self.password,
                "MLMD_MYSQL_SSL_CA": str(self.ca_file), "MLMD_MYSQL_SSL_VERIFY": "0"}


def make_tls_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A throw-away CA and a server certificate for 127.0.0.1 signed by it (openssl)."""
    ca_key, ca, key, csr, cert = (folder / n for n in
                                  ("ca.key", "ca.pem", "server.key", "server.csr", "server.pem"))
    ext = folder / "san.ext"
    # Both forms: MariaDB Connector/C inside ML Metadata checks the name with X509_check_host.
    ext.write_text("subjectAltName=DNS:127.0.0.1,IP:127.0.0.1\n")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key),
            "-out", str(ca), "-days", "2", "-subj", "/CN=taxi-test-ca")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
            "-subj", "/CN=127.0.0.1")
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
            "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(ext))
    return ca, cert, key


def _tool(*names: str) -> str | None:
    for name in names:
        found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin")
        if found:
            return found
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_up(process: subprocess.Popen, sock: Path, log: Path, timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"mariadbd exited with {process.returncode}:\n{log.read_text()}")
        if sock.exists():
            return
        time.sleep(0.2)
    raise RuntimeError(f"mariadbd did not start within {timeout:.0f} s:\n{log.read_text()}")


@pytest.fixture(scope="session")
def mariadb(tmp_path_factory) -> Iterator[MariaDB]:
    """A MariaDB server of its own, in a temporary folder, on a loopback port; stopped after.

    It speaks TLS with a certificate from a CA made for it; one of its two
    accounts may only log in over TLS.
    """
    server = _tool("mariadbd", "mysqld")
    install_db = _tool("mariadb-install-db", "mysql_install_db")
    client = _tool("mariadb", "mysql")
    if not (server and install_db and client):
        unavailable("MariaDB is not installed (apt-get install mariadb-server)")
    home = tmp_path_factory.mktemp("mariadb")
    data, sock, log = home / "data", home / "mysqld.sock", home / "mysqld.log"
    user = getpass.getuser()
    subprocess.run(
        [install_db, "--no-defaults", f"--datadir={data}", f"--user={user}",
         "--auth-root-authentication-method=socket", "--skip-test-db"],
        check=True, capture_output=True, text=True,
    )
    ca, cert, key = make_tls_certificates(home)
    port = _free_port()
    with open(log, "w") as log_file:
        process = subprocess.Popen(
            [server, "--no-defaults", f"--datadir={data}", f"--socket={sock}",
             f"--port={port}", "--bind-address=127.0.0.1", f"--user={user}",
             f"--pid-file={home / 'mysqld.pid'}", "--skip-log-bin",
             "--innodb-buffer-pool-size=64M",
             f"--ssl-ca={ca}", f"--ssl-cert={cert}", f"--ssl-key={key}"],
            stdout=log_file, stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_up(process, sock, log, timeout=60)
        db = MariaDB("127.0.0.1", port, "mlmd", "mlmd-test-Pw", sock,
                     (client, "--no-defaults", f"--socket={sock}", "-u", "root"), ca)
        for user, tls in ((db.user, ""), (db.tls_user, " REQUIRE SSL")):
            db.sql(f"CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY '{db.password}'{tls};"
                   f"GRANT ALL ON *.* TO '{user}'@'127.0.0.1'")
        yield db
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
