"""slawatch services as real processes on 127.0.0.1 for the end-to-end tests: started the way
`slawatch <service>` starts them, waited for with a timeout and a clear message, and stopped
with SIGTERM, which every service must answer by stopping gracefully with exit status 0."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from slawatch.services.dev.provision import free_port
from tests.helpers import wait_ready_sync

# The port variable of each service (the monitor's package is sla_monitor, its name monitor).
PORT_VARIABLES = {
    "ingest": "SLAWATCH_INGEST_PORT",
    "monitor": "SLAWATCH_MONITOR_PORT",
    "notifier": "SLAWATCH_NOTIFIER_PORT",
    "console": "SLAWATCH_CONSOLE_PORT",
}


@dataclass
class ServiceProcess:
    name: str  # ingest, monitor, notifier, console
    env: dict[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServiceProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLAWATCH_")}
        env.update(self.env)
        env[PORT_VARIABLES[self.name]] = str(self.port)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "slawatch.services.cli", self.name],
            env=env,
            stdout=open(self.log_path, "ab"),  # noqa: SIM115 - the child owns it
            stderr=subprocess.STDOUT,
        )
        return self

    def wait_ready(self, probe: str = "/readyz", timeout: float = 90) -> None:
        wait_ready_sync(
            self.url + probe,
            f"{self.name} ({probe})",
            timeout=timeout,
            process=self.process,
            log_path=self.log_path,
        )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> int | None:
        """SIGTERM, then the exit status (SIGKILL after 20 s: then it is -9)."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.process.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:] if self.log_path.exists() else ""


def stop_all(services: list[ServiceProcess]) -> None:
    """Stop in reverse start order; fail unless each stopped gracefully (exit 0)."""
    statuses = {service.name: service.stop() for service in reversed(services)}
    failed = {name: status for name, status in statuses.items() if status not in (0, None)}
    assert not failed, f"services did not stop gracefully on SIGTERM: {failed}"
