"""Notifier benchmarks, one run, one broker, a real `slawatch notifier` process.

(a) throughput: notifications/s delivered end to end, one per message (consumed, written
    to the delivery log, POSTed to a local webhook sink, recorded as sent), beside a raw
    httpx loop POSTing the very same payloads to the same sink; the same with grouping
    (up to 100 per message) beside a raw aiokafka consumer reading the topic;
(b) latency: one breach at a time, from the produce call to its arrival at the sink,
    p50/p99, beside the same path without the notifier (produce -> raw consumer).

    python bench/notifier.py [--events 10000] [--samples 200] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import uvicorn
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from slawatch.services.database import migrate  # noqa: E402
from slawatch.services.dev.provision import Broker, Postgres, free_port  # noqa: E402
from slawatch.services.notifier.app import FETCH_MAX_WAIT_MS  # noqa: E402
from slawatch.shared.kafka import ensure_topics  # noqa: E402
from slawatch.shared.settings import CommonSettings  # noqa: E402
from slawatch.shared.sla_events import SlaEvent, dump_sla_event, sla_event_id  # noqa: E402

ROUTES = """\
version: 1
defaults: {{group_wait: {wait}, group_interval: {interval}, repeat_interval: never}}
receivers:
  - name: bench
    integrations:
      - type: webhook
        url: {url}
        secret: bench-secret
        rate_limit: none
        max_events_per_message: {per_message}
routes:
  - receiver: bench
"""


def breach(ticket: str) -> SlaEvent:
    now = datetime.now(UTC)
    return SlaEvent(
        id=sla_event_id(ticket, "first_response", 0, "sla.breached"), kind="sla.breached",
        ticket_id=ticket, target="first_response", policy="bench", cycle=0, deadline=now,
        occurred_at=now, elapsed_seconds=900.0, target_seconds=900.0, priority="urgent",
        customer_tier="gold", channel="email", group="billing", assignee="li.na",
        url=f"https://helpdesk.example.com/tickets/{ticket}", subject="Charged twice",
    )


class Sink:
    """Counts delivered events; remembers when each ticket arrived."""

    def __init__(self) -> None:
        self.events = 0
        self.arrived: dict[str, float] = {}
        self.requests: list[tuple[bytes, dict[str, str]]] = []
        self.app = Starlette(routes=[Route("/hook", self.hook, methods=["POST"])])

    async def hook(self, request: Request) -> Response:
        raw = await request.body()
        self.requests.append((raw, {k: v for k, v in request.headers.items() if k.startswith("x-slawatch")}))
        body = json.loads(raw)
        now = time.perf_counter()
        for event in body["events"]:
            self.events += 1
            self.arrived[event["ticket_id"]] = now
        return Response(status_code=204)


async def produce(bootstrap: str, topic: str, events: list[SlaEvent]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = [await producer.send(topic, dump_sla_event(e), key=e.ticket_id.encode()) for e in events]
        for future in futures:
            await future
    finally:
        await producer.stop()


async def raw_consume(bootstrap: str, topic: str, expected: int) -> float:
    """Events/s of a plain consumer that decodes each record (a baseline that does work)."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=f"raw-{uuid.uuid4().hex[:6]}",
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    try:
        seen, started = 0, None
        while seen < expected:
            for records in (await consumer.getmany(timeout_ms=500, max_records=5000)).values():
                started = started or time.perf_counter()
                for record in records:
                    SlaEvent.model_validate_json(record.value)
                    seen += 1
            await consumer.commit()
        assert started is not None  # expected > 0 records were read
        return expected / (time.perf_counter() - started)
    finally:
        await consumer.stop()


def start_notifier(bootstrap: str, db: str, topic_prefix: str, routes: Path, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLAWATCH_")}
    env.update({
        "SLAWATCH_KAFKA_BOOTSTRAP": bootstrap, "SLAWATCH_DATABASE_URL": db,
        "SLAWATCH_TOPIC_SLA": f"{topic_prefix}.sla", "SLAWATCH_TOPIC_NOTIFICATIONS_DLQ": f"{topic_prefix}.dlq",
        "SLAWATCH_NOTIFIER_GROUP_ID": f"{topic_prefix}-notifier", "SLAWATCH_NOTIFIER_PORT": str(port),
        "SLAWATCH_ROUTES_FILE": str(routes), "SLAWATCH_LOG_LEVEL": "WARNING",
    })
    process = subprocess.Popen([sys.executable, "-m", "slawatch.services.cli", "notifier"], env=env,
                               stdout=open(log, "ab"), stderr=subprocess.STDOUT)  # noqa: SIM115
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        assert process.poll() is None, log.read_text()
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "notifier not ready:\n" + log.read_text()
        time.sleep(0.1)


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()


async def with_sink(coro_factory):
    sink = Sink()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(sink.app, host="127.0.0.1", port=port, log_config=None, access_log=False))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        return await coro_factory(sink, f"http://127.0.0.1:{port}/hook")
    finally:
        server.should_exit = True
        await task


def settings_for(bootstrap: str, prefix: str) -> CommonSettings:
    return CommonSettings(kafka_bootstrap=bootstrap, topic_events=f"{prefix}.events", topic_events_dlq=f"{prefix}.edlq",
                          topic_sla=f"{prefix}.sla", topic_notifications_dlq=f"{prefix}.dlq", events_partitions=6)


async def notifier_run(bootstrap: str, db: str, n: int, per_message: int, tmp: Path) -> tuple[float, float, Sink]:
    """Deliver n breaches from a fresh topic; (notifier events/s, raw consumer events/s, sink)."""
    prefix = "nt" + uuid.uuid4().hex[:6]
    settings = settings_for(bootstrap, prefix)
    await ensure_topics(settings)
    await produce(bootstrap, settings.topic_sla, [breach(f"{prefix}-{i}") for i in range(n)])
    raw_consumer_eps = await raw_consume(bootstrap, settings.topic_sla, n)

    async def run(sink: Sink, url: str) -> tuple[float, Sink]:
        routes = tmp / f"{prefix}.yaml"
        routes.write_text(ROUTES.format(wait="0s", interval="1ms", url=url, per_message=per_message))
        process, _ = await asyncio.to_thread(start_notifier, bootstrap, db, prefix, routes, tmp / "notifier.log")
        try:
            started = time.perf_counter()  # ready = partitions assigned; the backlog is waiting
            while sink.events < n:
                await asyncio.sleep(0.02)
                assert time.perf_counter() - started < 900, f"{sink.events} of {n} delivered"
            return n / (time.perf_counter() - started), sink
        finally:
            await asyncio.to_thread(stop, process)

    eps, sink = await with_sink(run)
    return eps, raw_consumer_eps, sink


async def raw_httpx(requests: list[tuple[bytes, dict[str, str]]], events: int) -> float:
    """Events/s of one httpx client POSTing the notifier's own payloads to a fresh sink."""

    async def run(sink: Sink, url: str) -> float:
        async with httpx.AsyncClient() as client:
            started = time.perf_counter()
            for body, headers in requests:
                response = await client.post(url, content=body, headers={**headers, "content-type": "application/json"})
                response.raise_for_status()
            return events / (time.perf_counter() - started)

    return await with_sink(run)


async def bench_throughput(bootstrap: str, db: str, n: int, tmp: Path) -> dict:
    single_eps, _, sink = await notifier_run(bootstrap, db, n, 1, tmp)
    raw_eps = await raw_httpx(sink.requests, n)
    grouped_eps, consumer_eps, grouped_sink = await notifier_run(bootstrap, db, n, 100, tmp)
    return {"events": n, "notifier_eps": single_eps, "raw_httpx_eps": raw_eps, "ratio": single_eps / raw_eps,
            "messages": len(sink.requests), "grouped_eps": grouped_eps, "grouped_messages": len(grouped_sink.requests),
            "raw_consumer_eps": consumer_eps, "grouped_ratio": grouped_eps / consumer_eps}


async def bench_latency(bootstrap: str, db: str, samples: int, tmp: Path) -> dict:
    prefix = "nl" + uuid.uuid4().hex[:6]
    settings = settings_for(bootstrap, prefix)
    await ensure_topics(settings)

    # Baseline: the same produce -> consume hop, without the notifier.
    consumer = AIOKafkaConsumer(settings.topic_sla, bootstrap_servers=bootstrap, group_id=f"{prefix}-raw",
                                auto_offset_reset="latest", enable_auto_commit=False,
                                fetch_max_wait_ms=FETCH_MAX_WAIT_MS)  # as the notifier's consumer
    await consumer.start()
    while not consumer.assignment():
        await consumer.getmany(timeout_ms=200)
    for tp in consumer.assignment():  # resolve "latest" now, before the first sample is sent
        await consumer.position(tp)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    raw: list[float] = []
    try:
        for i in range(samples):
            event = breach(f"R-{i}")
            sent = time.perf_counter()
            await producer.send_and_wait(settings.topic_sla, dump_sla_event(event), key=event.ticket_id.encode())
            got = False
            while not got:
                for records in (await consumer.getmany(timeout_ms=10)).values():
                    got = got or any(r.key == event.ticket_id.encode() for r in records)
                assert time.perf_counter() - sent < 30, "the raw consumer missed a record"
            raw.append(time.perf_counter() - sent)
    finally:
        await consumer.stop()

    async def run(sink: Sink, url: str) -> list[float]:
        routes = tmp / f"{prefix}.yaml"
        routes.write_text(ROUTES.format(wait="0s", interval="1ms", url=url, per_message=1))
        process, _ = await asyncio.to_thread(start_notifier, bootstrap, db, prefix, routes, tmp / "notifier.log")
        out = []
        try:
            for i in range(samples):
                event = breach(f"L-{i}")
                sent = time.perf_counter()
                await producer.send_and_wait(settings.topic_sla, dump_sla_event(event), key=event.ticket_id.encode())
                while event.ticket_id not in sink.arrived:
                    await asyncio.sleep(0.001)
                    assert time.perf_counter() - sent < 30, "a breach was not delivered"
                out.append(sink.arrived[event.ticket_id] - sent)
            return out
        finally:
            await asyncio.to_thread(stop, process)

    try:
        notified = await with_sink(run)
    finally:
        await producer.stop()

    def pct(values: list[float], q: int) -> float:
        return statistics.quantiles(values, n=100)[q - 1] * 1000 if len(values) >= 2 else values[0] * 1000

    return {"samples": samples, "raw_p50_ms": pct(raw, 50), "raw_p99_ms": pct(raw, 99),
            "p50_ms": pct(notified, 50), "p99_ms": pct(notified, 99)}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="slawatch-bench-"))
    with Broker() as broker, Postgres() as pg:
        await asyncio.to_thread(migrate.upgrade, pg.url)
        throughput = await bench_throughput(broker.bootstrap, pg.url, args.events, tmp)
        print(f"(a) {throughput}", flush=True)
        latency = await bench_latency(broker.bootstrap, pg.url, args.samples, tmp)
        print(f"(b) {latency}", flush=True)

    goals = {"ratio": 0.5, "latency_p99_ms": 500}
    met = {"ratio": throughput["ratio"] >= goals["ratio"], "latency_p99_ms": latency["p99_ms"] <= goals["latency_p99_ms"]}
    rows = [
        {"measure": "(a) notifications/s, one per message", "value": throughput["notifier_eps"],
         "baseline": throughput["raw_httpx_eps"], "ratio": throughput["ratio"], "goal": ">= 0.5 ratio (raw httpx)"},
        {"measure": "(a) notifications/s, grouped <= 100", "value": throughput["grouped_eps"],
         "baseline": throughput["raw_consumer_eps"], "ratio": throughput["grouped_ratio"], "goal": "- (raw consumer)"},
        {"measure": "(b) SLA event to webhook p50, ms", "value": latency["p50_ms"], "baseline": latency["raw_p50_ms"],
         "ratio": latency["p50_ms"] / latency["raw_p50_ms"], "goal": "- (raw produce-consume)"},
        {"measure": "(b) SLA event to webhook p99, ms", "value": latency["p99_ms"], "baseline": latency["raw_p99_ms"],
         "ratio": latency["p99_ms"] / latency["raw_p99_ms"], "goal": "<= 500 ms"},
    ]
    print(f"\nnotifier benchmark - {datetime.now(UTC):%Y-%m-%d %H:%M} UTC - {platform.machine()}, {os.cpu_count()} cores")
    for row in rows:
        print(f"{row['measure']:<40} {row['value']:>10,.1f}  baseline {row['baseline']:>10,.1f}  "
              f"ratio {row['ratio']:>6.2f}  goal {row['goal']}")
    print("goals met:", met)
    if args.json:
        args.json.write_text(json.dumps({"benchmark": "notifier", "rows": rows, "details": {
            "throughput": throughput, "latency": latency}, "goal": goals, "met": all(met.values())}, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
