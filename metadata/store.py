"""Where the pipeline's ML Metadata lives, and the one way every tool opens it.

By default ML Metadata is a SQLite file under the output folder: simple, and
enough while one machine runs the pipeline. A team whose runs execute on
several machines (Airflow workers) needs a store they all reach; TFX supports
MySQL for that (MariaDB works too). `--metadata-mysql HOST:PORT/DB` selects it;
the user and password come from the environment (`MLMD_MYSQL_USER`,
`MLMD_MYSQL_PASSWORD`) so they never appear on a command line, in output or in
a compiled pipeline; `MLMD_MYSQL_SSL_CA` names a CA file for TLS connections.

A "location" is what callers pass around: a SQLite path (str) or a MySQL
`ConnectionConfig`. The runner, `review.lineage`, `review.report`,
`review.schema_draft` and the summary all open it through `open_store`.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass

from ml_metadata import errors as mlmd_errors
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

SQLITE_FILENAME = "metadata.sqlite"
USER_ENV = "MLMD_MYSQL_USER"
PASSWORD_ENV = "MLMD_MYSQL_PASSWORD"
# A CA certificate file: connect over TLS and verify the server against it
# (Azure Database for MySQL refuses connections without TLS).
SSL_CA_ENV = "MLMD_MYSQL_SSL_CA"
# "0": encrypt without verifying the server's certificate. ML Metadata 1.16's bundled MariaDB
# Connector/C refused a valid certificate (one openssl and the mariadb client accept) with
# verification on, and with it off accepts any CA: docs/orchestrators.md.
SSL_VERIFY_ENV = "MLMD_MYSQL_SSL_VERIFY"
DEFAULT_USER = "root"
_MYSQL_SPEC = re.compile(r"^(?P<host>[^:/\s]+):(?P<port>\d{1,5})/(?P<database>[A-Za-z0-9_$]+)$")

Location = str | metadata_store_pb2.ConnectionConfig


class MetadataConnectionError(Exception):
    """The metadata store cannot be reached or opened; the message is one line."""


@dataclass(frozen=True)
class MySQLTarget:
    """A MySQL/MariaDB database, as written on the command line: HOST:PORT/DB."""

    host: str
    port: int
    database: str

    def __str__(self) -> str:
        return f"mysql://{self.host}:{self.port}/{self.database}"


def parse_mysql(spec: str) -> MySQLTarget:
    """`HOST:PORT/DB` as a `MySQLTarget`; ValueError with the expected form otherwise."""
    match = _MYSQL_SPEC.match(spec.strip())
    if not match or not 0 < int(match["port"]) < 65536:
        raise ValueError(f"--metadata-mysql wants HOST:PORT/DATABASE, got {spec!r}")
    return MySQLTarget(match["host"], int(match["port"]), match["database"])


def mysql_connection_config(
    target: MySQLTarget, env: dict[str, str] | None = None
) -> metadata_store_pb2.ConnectionConfig:
    """The connection to `target`, with the credentials read from the environment."""
    env = os.environ if env is None else env
    config = metadata_store_pb2.ConnectionConfig()
    config.mysql.host = target.host
    config.mysql.port = target.port
    config.mysql.database = target.database
    config.mysql.user = env.get(USER_ENV) or DEFAULT_USER
    password = env.get(PASSWORD_ENV)
    if password:
        config.mysql.password = password
    ca_file = env.get(SSL_CA_ENV)
    if ca_file:
        config.mysql.ssl_options.ca = ca_file
        config.mysql.ssl_options.verify_server_cert = env.get(SSL_VERIFY_ENV, "1") != "0"
    return config


def location(output_dir: str, mysql: str | None = None) -> Location:
    """Where a run writing to `output_dir` keeps ML Metadata (`mysql`: HOST:PORT/DB or None)."""
    if mysql:
        return mysql_connection_config(parse_mysql(mysql))
    return os.path.join(output_dir, SQLITE_FILENAME)


def describe(where: Location) -> str:
    """A printable name for the store: its path, or mysql://host:port/db (no credentials)."""
    if isinstance(where, str):
        return where
    mysql = where.mysql
    return str(MySQLTarget(mysql.host, mysql.port, mysql.database))


def _tcp_problem(host: str, port: int, timeout: float = 5.0) -> str | None:
    """Why nothing answers on host:port, or None when something does.

    MLMD reports every MySQL failure as the same `mysql_real_connect failed`
    with an empty reason; probing the port first tells "no server there"
    apart from "the server refused the login".
    """
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as error:
        return f"cannot connect to {host}:{port} ({error.strerror or error})"


@contextlib.contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """Hide MLMD's C++ log lines (written straight to fd 2) while a connection is tried."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def open_store(where: Location, writable: bool = False) -> metadata_store.MetadataStore:
    """Open the store at `where`: read-only for SQLite (unless `writable`: monitoring.check
    records its checks), which must already exist.

    FileNotFoundError when the SQLite file is missing (nothing has run there);
    MetadataConnectionError, with one readable line and no credentials, when a
    MySQL server cannot be reached or refuses the login.
    """
    if isinstance(where, str):
        if not os.path.exists(where):
            raise FileNotFoundError(f"no ML Metadata store at {where}")
        config = metadata_store_pb2.ConnectionConfig()
        config.sqlite.filename_uri = where
        config.sqlite.connection_mode = (
            metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE if writable
            else metadata_store_pb2.SqliteMetadataSourceConfig.READONLY)
        return metadata_store.MetadataStore(config)
    prefix = f"cannot open ML Metadata at {describe(where)}"
    unreachable = _tcp_problem(where.mysql.host, where.mysql.port)
    if unreachable:
        raise MetadataConnectionError(f"{prefix}: {unreachable}")
    try:
        with _quiet_native_stderr():
            return metadata_store.MetadataStore(where)
    except (RuntimeError, mlmd_errors.StatusError):
        raise MetadataConnectionError(
            f"{prefix}: the server refused the connection (check {USER_ENV}, "
            f"{PASSWORD_ENV} and that the user may use database {where.mysql.database})"
        ) from None


def check_reachable(where: Location) -> None:
    """Fail early, before a run writes anything, when a MySQL store cannot be opened."""
    if not isinstance(where, str):
        open_store(where)
