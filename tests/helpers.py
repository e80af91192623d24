"""Test helpers that talk to real servers: run an ASGI app on a real port, read a topic,
and wait for a server to be ready.

Every test that starts a server waits for it with :func:`wait_ready` (or its synchronous
twin :func:`wait_ready_sync`): poll an HTTP endpoint until it answers as expected, within a
timeout, and fail with a message naming the server, the last answer and the tail of its
log - never parse the answer of a server that is still starting (a loaded machine's
Prometheus answered 503 "Service Unavailable" to a query, and the test parsed it as JSON).
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from slawatch.services.dev.provision import free_port
from slawatch.shared.settings import CommonSettings


def topic_settings(cls: type[CommonSettings], prefix: str, bootstrap: str, **overrides: Any) -> Any:
    """Settings whose topics are unique to one test."""
    return cls(
        kafka_bootstrap=bootstrap,
        topic_events=f"{prefix}.ticket-events",
        topic_events_dlq=f"{prefix}.ticket-events-dlq",
        topic_sla=f"{prefix}.sla-events",
        topic_notifications_dlq=f"{prefix}.notifications-dlq",
        **overrides,
    )


def _not_ready(
    what: str,
    url: str,
    timeout: float,
    last: str,
    process: subprocess.Popen | None,
    log_path: Path | None,
) -> str:
    lines = [f"{what} not ready at {url} within {timeout:.0f}s; last answer: {last}"]
    if process is not None and process.poll() is not None:
        lines.append(f"(its process exited with status {process.returncode})")
    if log_path is not None and Path(log_path).exists():
        lines.append("--- log tail ---\n" + Path(log_path).read_text(errors="replace")[-4000:])
    return "\n".join(lines)


def _expected(response: httpx.Response, expect: Callable[[httpx.Response], bool] | None) -> bool:
    return expect(response) if expect is not None else response.status_code == 200


async def wait_ready(
    url: str,
    what: str,
    *,
    timeout: float = 60.0,
    expect: Callable[[httpx.Response], bool] | None = None,
    process: subprocess.Popen | None = None,
    log_path: Path | None = None,
    interval: float = 0.1,
) -> httpx.Response:
    """Poll ``url`` until it answers 200 (or ``expect``); returns that answer.

    Fails (AssertionError) with a clear message when the timeout passes or ``process``
    exits first: which server, the last status or connection error, and its log's tail.
    """
    deadline = time.monotonic() + timeout
    last = "nothing yet"
    async with httpx.AsyncClient(timeout=min(5.0, timeout)) as client:
        while True:
            try:
                response = await client.get(url)
                if _expected(response, expect):
                    return response
                last = f"HTTP {response.status_code} {response.text[:200]!r}"
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}"
            if process is not None and process.poll() is not None:
                raise AssertionError(_not_ready(what, url, timeout, last, process, log_path))
            if time.monotonic() > deadline:
                raise AssertionError(_not_ready(what, url, timeout, last, process, log_path))
            await asyncio.sleep(interval)


def wait_ready_sync(
    url: str,
    what: str,
    *,
    timeout: float = 60.0,
    expect: Callable[[httpx.Response], bool] | None = None,
    process: subprocess.Popen | None = None,
    log_path: Path | None = None,
    interval: float = 0.1,
) -> httpx.Response:
    """:func:`wait_ready` for code outside an event loop (process start-up)."""
    deadline = time.monotonic() + timeout
    last = "nothing yet"
    with httpx.Client(timeout=min(5.0, timeout)) as client:
        while True:
            try:
                response = client.get(url)
                if _expected(response, expect):
                    return response
                last = f"HTTP {response.status_code} {response.text[:200]!r}"
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}"
            if process is not None and process.poll() is not None:
                raise AssertionError(_not_ready(what, url, timeout, last, process, log_path))
            if time.monotonic() > deadline:
                raise AssertionError(_not_ready(what, url, timeout, last, process, log_path))
            time.sleep(interval)


@contextlib.asynccontextmanager
async def serve(app: Any, port: int | None = None, timeout: float = 60.0) -> AsyncIterator[str]:
    """Serve an ASGI app with uvicorn on 127.0.0.1 in this event loop; yields its base URL
    once uvicorn finished the app's startup and listens (within ``timeout``)."""
    port = port or free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + timeout
    while not server.started:
        if task.done():
            task.result()
            raise AssertionError(f"uvicorn on port {port} stopped during its startup")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise AssertionError(f"uvicorn on port {port} did not start within {timeout:.0f}s")
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def read_topic(
    bootstrap: str | None, topic: str, expected: int, timeout: float = 20.0
) -> list[ConsumerRecord]:
    """Every record of a topic from the beginning, waiting until at least `expected` arrived.

    `bootstrap` is typically a settings object's kafka_bootstrap: optional in the settings
    model, always set by the test stack (refused here rather than defaulting to localhost)."""
    assert bootstrap, "no broker: the test stack sets kafka_bootstrap"
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic)
        deadline = asyncio.get_running_loop().time() + timeout
        while not partitions:
            await consumer._client.force_metadata_update()  # noqa: SLF001 - no public refresh
            partitions = consumer.partitions_for_topic(topic)
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"topic {topic} does not exist")
            await asyncio.sleep(0.1)
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        records: list[ConsumerRecord] = []
        while len(records) < expected and asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for msgs in batch.values():
                records.extend(msgs)
        # One more short poll: more than expected is a failure the caller should see.
        for msgs in (await consumer.getmany(timeout_ms=300)).values():
            records.extend(msgs)
        return records
    finally:
        await consumer.stop()


async def topic_size(bootstrap: str | None, topic: str) -> int:
    """Records in a topic; `bootstrap` as for read_topic."""
    assert bootstrap, "no broker: the test stack sets kafka_bootstrap"
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        if not partitions:
            return 0
        tps = [TopicPartition(topic, p) for p in partitions]
        ends = await consumer.end_offsets(tps)
        starts = await consumer.beginning_offsets(tps)
        return sum(ends[tp] - starts[tp] for tp in tps)
    finally:
        await consumer.stop()
