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


@dataclass(frozen=True)
class MariaDB:
    """A running private server and an account on it with a password."""

    host: str
    port: int
    user: str
    password: str
    socket: Path
    admin: tuple[str, ...]  # the `mariadb` client as root over the private socket

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
    """A MariaDB server of its own, in a temporary folder, on a loopback port; stopped after."""
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
    port = _free_port()
    with open(log, "w") as log_file:
        process = subprocess.Popen(
            [server, "--no-defaults", f"--datadir={data}", f"--socket={sock}",
             f"--port={port}", "--bind-address=127.0.0.1", f"--user={user}",
             f"--pid-file={home / 'mysqld.pid'}", "--skip-log-bin",
             "--innodb-buffer-pool-size=64M"],
            stdout=log_file, stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_up(process, sock, log, timeout=60)
        db = MariaDB("127.0.0.1", port, "mlmd", "mlmd-test-Pw", sock,
                     (client, "--no-defaults", f"--socket={sock}", "-u", "root"))
        db.sql(f"CREATE USER '{db.user}'@'127.0.0.1' IDENTIFIED BY '{db.password}';"
               f"GRANT ALL ON *.* TO '{db.user}'@'127.0.0.1'")
        yield db
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
