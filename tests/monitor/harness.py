"""Run real `slawatch monitor` processes and feed them through the real broker."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiokafka import AIOKafkaProducer

from slawatch.services.dev.provision import free_port
from tests.helpers import wait_ready, wait_ready_sync

FAST_POLICIES = Path(__file__).with_name("fast-policies.yaml")
# The read API needs a key (shared/auth.py); monitors started here accept this viewer key.
READ_TOKEN = "monitor-reader-token"
READ_AUTH = {"Authorization": f"Bearer {READ_TOKEN}"}
READ_KEYS = "reader:viewer:" + hashlib.sha256(READ_TOKEN.encode()).hexdigest()


@dataclass
class MonitorProcess:
    env: dict[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MonitorProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLAWATCH_")}
        env.update(self.env)
        env["SLAWATCH_MONITOR_PORT"] = str(self.port)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "slawatch.services.cli", "monitor"],
            env=env,
            stdout=open(self.log_path, "ab"),  # noqa: SIM115 - the child owns it
            stderr=subprocess.STDOUT,
        )
        wait_ready_sync(
            self.url + "/healthz",
            "monitor (/healthz)",
            process=self.process,
            log_path=self.log_path,
        )
        return self

    async def wait_ready(self, timeout: float = 60) -> None:
        await wait_ready(
            self.url + "/readyz",
            "monitor (/readyz)",
            timeout=timeout,
            process=self.process,
            log_path=self.log_path,
        )

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM, and the exit status once it stopped (0 for a graceful stop)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill(self) -> None:
        """kill -9: no shutdown code runs."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:] if self.log_path.exists() else ""


def monitor_env(
    settings, database_url: str, policy_file: Path = FAST_POLICIES, **extra: str
) -> dict[str, str]:
    return {
        "SLAWATCH_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "SLAWATCH_DATABASE_URL": database_url,
        "SLAWATCH_TOPIC_EVENTS": settings.topic_events,
        "SLAWATCH_TOPIC_EVENTS_DLQ": settings.topic_events_dlq,
        "SLAWATCH_TOPIC_SLA": settings.topic_sla,
        "SLAWATCH_TOPIC_NOTIFICATIONS_DLQ": settings.topic_notifications_dlq,
        "SLAWATCH_POLICY_FILE": str(policy_file),
        "SLAWATCH_MONITOR_GROUP_ID": settings.topic_events + ".monitor",
        "SLAWATCH_LOG_LEVEL": "INFO",
        # Tansu holds a group's first join for half the session timeout: 3 s, not 5 s.
        "SLAWATCH_KAFKA_SESSION_TIMEOUT_S": "6",
        "SLAWATCH_API_KEYS": READ_KEYS,
        **extra,
    }


def created(ticket: str, at: datetime, **data) -> dict:
    return {
        "event_id": f"{ticket}-created",
        "type": "ticket.created",
        "ticket_id": ticket,
        "occurred_at": at.isoformat(),
        "channel": "chat",
        "data": {"priority": "high", **data},
    }


def agent_reply(ticket: str, at: datetime, n: int = 1) -> dict:
    return {
        "event_id": f"{ticket}-reply-{n}",
        "type": "message.created",
        "ticket_id": ticket,
        "occurred_at": at.isoformat(),
        "channel": "chat",
        "data": {"author_role": "agent", "public": True},
    }


def solved(ticket: str, at: datetime) -> dict:
    return {
        "event_id": f"{ticket}-solved",
        "type": "ticket.status_changed",
        "ticket_id": ticket,
        "occurred_at": at.isoformat(),
        "channel": "chat",
        "data": {"status": "solved"},
    }


async def produce(
    bootstrap: str | None, topic: str, events: Sequence[dict | bytes], key: bytes | None = None
) -> None:
    """`events` to `topic` (dicts keyed by ticket, raw bytes by `key`); `bootstrap` as for
    tests.helpers.read_topic."""
    assert bootstrap, "no broker: the test stack sets kafka_bootstrap"
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        futures = []
        for event in events:
            if isinstance(event, bytes):
                futures.append(await producer.send(topic, event, key=key or b"poison"))
            else:
                futures.append(
                    await producer.send(
                        topic, json.dumps(event).encode(), key=event["ticket_id"].encode()
                    )
                )
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def now() -> datetime:
    return datetime.now(UTC)


def ago(seconds: float) -> datetime:
    return now() - timedelta(seconds=seconds)
