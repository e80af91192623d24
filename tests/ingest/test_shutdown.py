"""SIGINT and SIGTERM stop a real `slawatch ingest` while clients are posting: requests in
hand are answered, every event answered 202 is on the topic, and the process exits 0
(it used to die by the signal: uvicorn raised it again after its clean shutdown).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from slawatch.services.dev.provision import free_port
from slawatch.services.ingest.settings import IngestSettings
from slawatch.shared.kafka import ensure_topics
from tests.helpers import read_topic, topic_settings, wait_ready

pytestmark = pytest.mark.integration

TOKEN = "shutdown-test-token"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
async def test_signal_while_posting_exits_0_and_every_accepted_event_is_on_the_topic(
    signum: int, kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    settings = topic_settings(IngestSettings, topic_prefix, kafka_bootstrap)
    await ensure_topics(settings)
    port, log = free_port(), tmp_path / "ingest.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLAWATCH_")}
    env.update(
        SLAWATCH_KAFKA_BOOTSTRAP=kafka_bootstrap,
        SLAWATCH_TOPIC_EVENTS=settings.topic_events,
        SLAWATCH_INGEST_PORT=str(port),
        SLAWATCH_INGEST_API_KEYS="crm:" + hashlib.sha256(TOKEN.encode()).hexdigest(),
        SLAWATCH_SHUTDOWN_TIMEOUT_S="8",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "slawatch.services.cli", "ingest"],
        env=env,
        stdout=open(log, "ab"),  # noqa: SIM115 - the child owns it
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        await wait_ready(url + "/readyz", "ingest (/readyz)", process=process, log_path=log)
        accepted: list[str] = []
        headers = {"Authorization": f"Bearer {TOKEN}"}

        async def client(n: int) -> None:
            async with httpx.AsyncClient(base_url=url, headers=headers, timeout=10) as http:
                for i in range(1000):
                    event_id = f"c{n}-{i}"
                    body = {
                        "event_id": event_id,
                        "type": "ticket.created",
                        "ticket_id": f"T-{n}-{i}",
                        "occurred_at": "2026-11-23T09:00:00Z",
                    }
                    try:
                        response = await http.post("/v1/events", json=body)
                    except httpx.HTTPError:
                        return  # the server is gone: stop posting
                    if response.status_code == 202:
                        accepted.append(event_id)
                    elif response.status_code == 503:
                        return  # stopping
                    else:
                        raise AssertionError(response.text)

        clients = [asyncio.create_task(client(n)) for n in range(4)]
        while len(accepted) < 40:
            assert not all(c.done() for c in clients), log.read_text()
            await asyncio.sleep(0.02)
        process.send_signal(signum)
        status = await asyncio.to_thread(process.wait, 30)
        await asyncio.gather(*clients)
        assert status == 0, log.read_text()
        records = await read_topic(kafka_bootstrap, settings.topic_events, len(accepted))
        on_topic = {json.loads(r.value)["event_id"] for r in records}
        assert set(accepted) <= on_topic, sorted(set(accepted) - on_topic)[:5]
    finally:
        if process.poll() is None:
            process.kill()
