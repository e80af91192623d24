"""Run real `slawatch monitor` processes and feed them through the real broker."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from aiokafka import AIOKafkaProducer

from shared.devstack import free_port

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
            [sys.executable, "-m", "services.cli", "monitor"],
            env=env,
            stdout=open(self.log_path, "ab"),  # noqa: SIM115 - the child owns it
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while True:
            assert self.process.poll() is None, self.log()
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "monitor did not start:\n" + self.log()
            time.sleep(0.1)

    async def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(base_url=self.url, timeout=5) as client:
            while (await client.get("/readyz")).status_code != 200:
                assert self.process and self.process.poll() is None, self.log()
                assert time.monotonic() < deadline, "monitor not ready:\n" + self.log()
                await asyncio.sleep(0.1)

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
    bootstrap: str, topic: str, events: list[dict | bytes], key: bytes | None = None
) -> None:
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
