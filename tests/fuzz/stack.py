"""The three services as real processes on 127.0.0.1, against the real broker and database,
started the way `slawatch <service>` starts them, with API keys (SLAWATCH_ENV=prod)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from shared.devstack import free_port

TOKEN = "fuzz-token-not-a-secret"
KEYS = "fuzz:" + hashlib.sha256(TOKEN.encode()).hexdigest()
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SOURCE_SECRET = "fuzz-source-secret-not-a-secret"
SIGNED_SOURCES = ("ZENDESK", "FRESHDESK", "JIRA", "ZAMMAD", "CHATWOOT")
FAST_POLICIES = Path(__file__).parents[1] / "monitor" / "fast-policies.yaml"
ROUTES = """\
version: 1
defaults: {group_wait: 0s, group_interval: 1s, repeat_interval: never}
receivers:
  - name: console
    integrations: [{type: console}]
routes:
  - receiver: console
"""


@dataclass
class Service:
    name: str  # ingest, monitor, notifier
    env: dict[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Service:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLAWATCH_")}
        env.update(self.env)
        env[f"SLAWATCH_{self.name.upper()}_PORT"] = str(self.port)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "services.cli", self.name],
            env=env,
            stdout=open(self.log_path, "ab"),  # noqa: SIM115 - the child owns it
            stderr=subprocess.STDOUT,
        )
        return self

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while True:
            assert self.process and self.process.poll() is None, (
                f"{self.name} exited:\n{self.log()}"
            )
            try:
                response = httpx.get(self.url + "/readyz", timeout=2)
                if response.status_code == 200:
                    return
                last = f"{response.status_code} {response.text}"
            except httpx.HTTPError as exc:
                last = repr(exc)
            assert time.monotonic() < deadline, f"{self.name} not ready ({last}):\n{self.log()}"
            time.sleep(0.1)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:] if self.log_path.exists() else ""


def stack_env(
    settings, database_url: str, routes: Path, jwks_url: str = "http://127.0.0.1:9/jwks.json"
) -> dict[str, str]:
    return {
        "SLAWATCH_ENV": "prod",
        "SLAWATCH_LOG_LEVEL": "WARNING",
        "SLAWATCH_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "SLAWATCH_DATABASE_URL": database_url,
        "SLAWATCH_TOPIC_EVENTS": settings.topic_events,
        "SLAWATCH_TOPIC_EVENTS_DLQ": settings.topic_events_dlq,
        "SLAWATCH_TOPIC_SLA": settings.topic_sla,
        "SLAWATCH_TOPIC_NOTIFICATIONS_DLQ": settings.topic_notifications_dlq,
        "SLAWATCH_POLICY_FILE": str(FAST_POLICIES),
        "SLAWATCH_ROUTES_FILE": str(routes),
        "SLAWATCH_MONITOR_GROUP_ID": settings.topic_events + ".monitor",
        "SLAWATCH_NOTIFIER_GROUP_ID": settings.topic_sla + ".notifier",
        "SLAWATCH_INGEST_API_KEYS": KEYS,
        "SLAWATCH_NOTIFIER_API_KEYS": KEYS,
        # The read APIs (monitor, notifier) need a role: the fuzzer may do everything.
        "SLAWATCH_API_KEYS": "fuzz:admin:" + KEYS.split(":", 1)[1],
        # The helpdesk sources, so that fuzzed bodies also reach parsing and mapping.
        **{f"SLAWATCH_SOURCE_{name}_SECRET": SOURCE_SECRET for name in SIGNED_SOURCES},
        "SLAWATCH_SOURCE_ZOHO_DESK_ORG_ID": "60001234",
        "SLAWATCH_SOURCE_ZOHO_DESK_JWKS_URL": jwks_url,
    }
