"""Ingest throughput and latency beside a raw aiokafka producer, same broker, same run.

The ingest service runs as its own `slawatch ingest` process (as in production). The
baseline is a raw aiokafka producer built by the same `make_producer` ingest publishes
with (acks=all, linger 5 ms), awaiting every ack, with as many concurrent senders as the
HTTP scenario has clients; so a ratio is the price of HTTP + auth + validation +
stamping (+ signature check and mapping for the helpdesk endpoints) at equal concurrency.

Client and server share this machine's cores, so the HTTP client must cost little: it is
a minimal HTTP/1.1 keep-alive client on asyncio streams (below), one connection per
concurrent client, requests pre-encoded (webhook signatures computed per request, as a
helpdesk does). httpx costs ~3 ms of CPU per request here, which starved the server and
measured the client (and, paced, queued requests in the client's own event loop). The
bench reports both processes' CPU per request. Each scenario runs `--repeat` rounds
(raw and ingest alternating within a round, so other load on the machine hits both); the
figures are the medians over rounds, ratios the median of each round's ratio.

    python bench/ingest.py [--repeat 3] [--clients 4] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from slawatch.services.dev.provision import Broker, free_port  # noqa: E402
from slawatch.services.ingest.sources import ADAPTERS  # noqa: E402
from slawatch.shared.kafka import ensure_topics, make_producer  # noqa: E402
from slawatch.shared.settings import CommonSettings  # noqa: E402
from tests.sources import payloads  # noqa: E402
from tests.sources.rsa import TestKey, jwks_server  # noqa: E402

TOKEN = "bench-token"
SINGLE_CLIENTS_FACTOR = 4  # single-event scenarios: clients x 4 concurrent requests


def make_events(n: int, run: str) -> list[dict]:
    events = []
    for i in range(n):
        ticket = f"B-{run}-{i // 10}"
        if i % 10 == 0:
            events.append(
                {
                    "event_id": f"{run}-{i}",
                    "type": "ticket.created",
                    "ticket_id": ticket,
                    "occurred_at": "2026-11-23T09:00:00+08:00",
                    "channel": "email",
                    "data": {
                        "priority": "high",
                        "customer_tier": "gold",
                        "group": "billing",
                        "tags": ["invoice"],
                        "subject": "Charged twice",
                        "url": f"https://hd.example/{ticket}",
                    },
                }
            )
        else:
            events.append(
                {
                    "event_id": f"{run}-{i}",
                    "type": "message.created",
                    "ticket_id": ticket,
                    "occurred_at": "2026-11-23T09:05:00+08:00",
                    "channel": "email",
                    "data": {"author_role": "customer" if i % 2 else "agent", "public": True},
                }
            )
    return events


class Http1Client:
    """HTTP/1.1 over keep-alive connections to one host: write the request, read the status
    line, headers and a Content-Length body (what uvicorn answers). A request takes an idle
    connection or opens one, so an open-loop sender is never held back by the pool.
    Connections idle longer than uvicorn keeps them (5 s) are not reused; one the server
    closed idle before reading a request is replaced once, as any keep-alive client does."""

    MAX_IDLE_S = 3.0

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
        self._all: list[asyncio.StreamWriter] = []

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bool]:
        while self._idle:
            reader, writer, since = self._idle.pop()
            if time.monotonic() - since < self.MAX_IDLE_S:
                return reader, writer, True
            writer.close()
        reader, writer = await asyncio.open_connection(self.host, self.port)
        self._all.append(writer)
        return reader, writer, False

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        head = f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Length: {len(body)}\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        request = head.encode() + b"\r\n" + body
        while True:
            reader, writer, reused = await self._connection()
            writer.write(request)
            try:
                raw = await reader.readuntil(b"\r\n\r\n")
                break
            except (asyncio.IncompleteReadError, ConnectionError) as exc:
                writer.close()
                if not reused or (isinstance(exc, asyncio.IncompleteReadError) and exc.partial):
                    raise
        lines = raw.split(b"\r\n")
        status, length = int(lines[0].split(b" ", 2)[1]), 0
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        answer = await reader.readexactly(length)
        self._idle.append((reader, writer, time.monotonic()))
        return status, answer

    async def close(self) -> None:
        for writer in self._all:
            writer.close()
        self._all, self._idle = [], []


@dataclass
class Cpu:
    """CPU seconds of this process (the client and the raw producer) and of the ingest
    process, so a figure can say what each side spent per request."""

    server_pid: int
    _client: float = 0.0
    _server: float = 0.0

    def _server_now(self) -> float:
        fields = Path(f"/proc/{self.server_pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def start(self) -> None:
        self._client, self._server = time.process_time(), self._server_now()

    def per_request_us(self, requests: int) -> tuple[float, float]:
        client = time.process_time() - self._client
        server = self._server_now() - self._server
        return client / requests * 1e6, server / requests * 1e6


def _p(latencies: list[float], q: float) -> float:
    ordered = sorted(latencies)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000


async def raw_producer(
    settings: CommonSettings,
    topic: str,
    events: list[dict],
    batch: int,
    clients: int,
    **producer_options: object,
) -> float:
    """Events/s for a raw producer awaiting every ack of each batch, `clients` at once."""
    records = [(e["ticket_id"].encode(), json.dumps(e).encode()) for e in events]
    chunks = [records[i : i + batch] for i in range(0, len(records), batch)]
    producer = make_producer(settings, **producer_options)
    await producer.start()
    try:
        queue: asyncio.Queue = asyncio.Queue()
        for chunk in chunks:
            queue.put_nowait(chunk)

        async def worker() -> None:
            while not queue.empty():
                chunk = queue.get_nowait()
                futures = [await producer.send(topic, value, key=key) for key, value in chunk]
                await asyncio.gather(*futures)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        return len(records) / (time.perf_counter() - started)
    finally:
        await producer.stop()


async def closed_loop(
    url: str,
    path: str,
    bodies: list[bytes],
    clients: int,
    headers_for: Callable[[bytes], dict[str, str]],
    expect: int = 202,
) -> tuple[float, list[float]]:
    """Requests/s and latencies: `clients` connections, each sending its next request as
    soon as the previous one was answered (`expect`ed: every request must be accepted)."""
    client = Http1Client(url)
    pending = iter(bodies)
    latencies: list[float] = []

    async def worker() -> None:
        for body in pending:
            headers = headers_for(body)
            sent = time.perf_counter()
            status, answer = await client.post(path, body, headers)
            latencies.append(time.perf_counter() - sent)
            if status != expect:
                raise RuntimeError(f"{path} answered {status}: {answer[:200]!r}")

    try:
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        elapsed = time.perf_counter() - started
    finally:
        await client.close()
    return len(bodies) / elapsed, latencies


def _events_headers(_body: bytes) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


def event_bodies(events: list[dict], batch: int) -> list[bytes]:
    if batch == 1:
        return [json.dumps(e).encode() for e in events]
    return [
        json.dumps({"events": events[i : i + batch]}).encode() for i in range(0, len(events), batch)
    ]


_NATIVE_ID = {  # where each system's creation webhook carries the ticket's id
    "zendesk": lambda d, v: d["ticket"].update(id=v),
    "freshdesk": lambda d, v: d["freshdesk_webhook"].update(ticket_id=v),
    "jira": lambda d, v: d["issue"].update(id=v),
    "zammad": lambda d, v: d["ticket"].update(id=v),
    "chatwoot": lambda d, v: d.update(id=v),
    "zoho-desk": lambda d, v: d[0]["payload"].update(id=v),
}


def source_bodies(system: str, n: int, first: int) -> list[bytes]:
    """n creation webhooks of `system`, one ticket each (the native shapes of tests/sources)."""
    template = payloads.LIVES[system][0](datetime.now(UTC))[0].raw()
    out = []
    for i in range(n):
        document = json.loads(template)
        _NATIVE_ID[system](document, first + i)
        out.append(json.dumps(document, separators=(",", ":")).encode())
    return out


def source_headers(system: str, key: TestKey) -> Callable[[bytes], dict[str, str]]:
    """Each request signed when sent, as the helpdesk does. Zoho's token does not cover the
    body: one token per round (signing RSA per request would measure the client, not
    ingest); ingest still verifies it on every request."""
    if system == "zoho-desk":
        token = {**payloads.zoho_sign(key, datetime.now(UTC)), "Content-Type": "application/json"}
        return lambda _body: dict(token)
    sign = payloads.LIVES[system][1]
    assert sign is not None  # every system but Zoho Desk signs the body

    def headers(body: bytes) -> dict[str, str]:
        out = sign(body, payloads.SECRET, datetime.now(UTC))
        out["Content-Type"] = "application/json"
        return out

    return headers


async def paced(url: str, events: list[dict], rate: float) -> dict[str, float]:
    """Single-event POST /v1/events at a fixed rate (open loop): latency percentiles, the
    rate reached, and how late the client itself sent (its own scheduling lag)."""
    client = Http1Client(url)
    bodies = [json.dumps(e).encode() for e in events]
    headers = _events_headers(b"")
    latencies: list[float] = []
    lags: list[float] = []

    async def one(body: bytes, due: float) -> None:
        sent = time.perf_counter()
        lags.append(sent - due)
        status, _ = await client.post("/v1/events", body, headers)
        latencies.append(time.perf_counter() - sent)
        if status != 202:
            raise RuntimeError(f"ingest answered {status}")

    tasks = []
    start = time.perf_counter()
    try:
        for i, body in enumerate(bodies):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(body, due)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    finally:
        await client.close()
    return {
        "rate": len(bodies) / elapsed,
        "p50_ms": _p(latencies, 0.50),
        "p99_ms": _p(latencies, 0.99),
        "max_ms": max(latencies) * 1000,
        "client_lag_p99_ms": _p(lags, 0.99),
    }


@contextlib.contextmanager
def ingest_process(bootstrap: str, topic: str, jwks_url: str = "http://127.0.0.1:9/"):
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SLAWATCH_")},
        "SLAWATCH_KAFKA_BOOTSTRAP": bootstrap,
        "SLAWATCH_TOPIC_EVENTS": topic,
        "SLAWATCH_INGEST_PORT": str(port),
        "SLAWATCH_INGEST_API_KEYS": "bench:" + hashlib.sha256(TOKEN.encode()).hexdigest(),
        "SLAWATCH_LOG_LEVEL": "WARNING",
        **{
            f"SLAWATCH_SOURCE_{n}_SECRET": payloads.SECRET
            for n in ("ZENDESK", "FRESHDESK", "JIRA", "ZAMMAD", "CHATWOOT")
        },
        "SLAWATCH_SOURCE_ZOHO_DESK_ORG_ID": payloads.ZOHO_ORG,
        "SLAWATCH_SOURCE_ZOHO_DESK_JWKS_URL": jwks_url,
    }
    process = subprocess.Popen([sys.executable, "-m", "slawatch.services.cli", "ingest"], env=env)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        else:
            raise RuntimeError("ingest did not become ready")
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(10)


@dataclass
class Rounds:
    """Every round's figures by name; the report takes the median of each."""

    values: dict[str, list[float]] = field(default_factory=dict)

    def add(self, name: str, value: float) -> None:
        self.values.setdefault(name, []).append(value)

    def median(self, name: str) -> float:
        return statistics.median(self.values[name])

    def spread(self, name: str) -> str:
        got = self.values[name]
        return f"{min(got):,.2f}-{max(got):,.2f}"


async def one_round(
    r: Rounds, args: argparse.Namespace, settings: CommonSettings, url: str, cpu: Cpu, n: int
) -> None:
    topic, run = settings.topic_events, f"{uuid.uuid4().hex[:6]}"
    for batch, count in ((500, args.events), (100, args.events)):
        events = make_events(count, f"{run}-{batch}")
        raw = await raw_producer(settings, topic, events, batch, args.clients)
        eps, _ = await closed_loop(
            url, "/v1/events", event_bodies(events, batch), args.clients, _events_headers
        )
        eps *= batch
        r.add(f"raw{batch}", raw)
        r.add(f"ingest{batch}", eps)
        r.add(f"ratio{batch}", eps / raw)

    clients = args.clients * SINGLE_CLIENTS_FACTOR
    events = make_events(args.single_events, f"{run}-1")
    raw = await raw_producer(settings, topic, events, 1, clients)
    raw_unlingered = await raw_producer(settings, topic, events, 1, clients, linger_ms=0)
    cpu.start()
    eps, latencies = await closed_loop(
        url, "/v1/events", event_bodies(events, 1), clients, _events_headers
    )
    client_us, server_us = cpu.per_request_us(len(events))
    r.add("raw1", raw)
    r.add("raw1_linger0", raw_unlingered)
    r.add("ingest1", eps)
    r.add("ratio1", eps / raw)
    r.add("ratio1_linger0", eps / raw_unlingered)
    r.add("p99_1", _p(latencies, 0.99))
    r.add("client_us", client_us)
    r.add("server_us", server_us)

    key = args.key
    for i, system in enumerate(payloads.LIVES):
        bodies = source_bodies(system, args.source_requests, 10_000_000 * (n + 1) + i * 100_000)
        rps, latencies = await closed_loop(
            url,
            f"/v1/sources/{system}",
            bodies,
            clients,
            source_headers(system, key),
            ADAPTERS[system].accepted_status,
        )
        r.add(f"{system}_rps", rps)
        r.add(f"{system}_ratio", rps / raw)
        r.add(f"{system}_p99", _p(latencies, 0.99))

    result = await paced(
        url, make_events(int(args.rate * args.paced_seconds), f"{run}-paced"), args.rate
    )
    for name, value in result.items():
        r.add(f"paced_{name}", value)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=40_000, help="events per batched scenario")
    parser.add_argument(
        "--single-events", type=int, default=4_000, help="events for the single-event scenario"
    )
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--source-requests", type=int, default=1_500, help="webhooks per source")
    parser.add_argument("--rate", type=float, default=200, help="requests/s of the paced run")
    parser.add_argument("--paced-seconds", type=float, default=10)
    parser.add_argument("--repeat", type=int, default=3, help="rounds; figures are medians")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    args.key = TestKey.make()

    broker = None
    bootstrap = os.environ.get("SLAWATCH_KAFKA_BOOTSTRAP")
    if not bootstrap:
        broker = Broker().start()
        bootstrap = broker.bootstrap
    r = Rounds()
    try:
        run = uuid.uuid4().hex[:6]
        settings = CommonSettings(
            kafka_bootstrap=bootstrap,
            topic_events=f"bench-{run}.events",
            topic_events_dlq=f"bench-{run}.dlq",
            topic_sla=f"bench-{run}.sla",
            topic_notifications_dlq=f"bench-{run}.ndlq",
        )
        await ensure_topics(settings)
        topic = settings.topic_events
        with (
            jwks_server(args.key) as (jwks_url, _),
            ingest_process(bootstrap, topic, jwks_url) as (url, pid),
        ):
            # Warm both paths (connections, metadata, caches) before timing.
            warm = make_events(2_000, run + "w")
            await raw_producer(settings, topic, warm, 500, args.clients)
            await closed_loop(url, "/v1/events", event_bodies(warm, 1), 16, _events_headers)
            cpu = Cpu(pid)
            for n in range(args.repeat):
                await one_round(r, args, settings, url, cpu, n)
    finally:
        if broker:
            broker.stop()

    clients = args.clients * SINGLE_CLIENTS_FACTOR
    m = r.median
    rows: list[dict] = [
        {
            "scenario": f"POST /v1/events, batches of {b} ({args.clients} clients)",
            "raw_eps": m(f"raw{b}"),
            "ingest_eps": m(f"ingest{b}"),
            "ratio": m(f"ratio{b}"),
            "p99_ms": None,
        }
        for b in (500, 100)
    ]
    rows.append(
        {
            "scenario": f"POST /v1/events, single events ({clients} clients)",
            "raw_eps": m("raw1"),
            "ingest_eps": m("ingest1"),
            "ratio": m("ratio1"),
            "p99_ms": m("p99_1"),
        }
    )
    for system in payloads.LIVES:
        rows.append(
            {
                "scenario": f"POST /v1/sources/{system}, signed, one event each ({clients} clients)",
                "raw_eps": m("raw1"),
                "ingest_eps": m(f"{system}_rps"),
                "ratio": m(f"{system}_ratio"),
                "p99_ms": m(f"{system}_p99"),
            }
        )
    rows.append(
        {
            "scenario": f"POST /v1/events, single events paced at {args.rate:.0f} req/s, open loop",
            "raw_eps": None,
            "ingest_eps": m("paced_rate"),
            "ratio": None,
            "p99_ms": m("paced_p99_ms"),
        }
    )
    rows.append(
        {
            "scenario": "context: single events vs a raw producer with linger_ms=0",
            "raw_eps": m("raw1_linger0"),
            "ingest_eps": m("ingest1"),
            "ratio": m("ratio1_linger0"),
            "p99_ms": None,
        }
    )
    single_ratios = [m("ratio1")] + [m(f"{s}_ratio") for s in payloads.LIVES]
    met = m("ratio500") >= 0.5 and min(single_ratios) >= 0.5 and m("paced_p99_ms") <= 50
    notes = [
        f"medians of {args.repeat} rounds in one run; raw producer and ingest alternate "
        "within a round. Client: a minimal HTTP/1.1 keep-alive client on asyncio in the "
        "bench process, one connection per concurrent client, requests pre-encoded and "
        "webhooks signed per request; ingest is its own `slawatch ingest` process "
        "(uvicorn, httptools, uvloop, one worker); broker: Tansu on the same host.",
        f"single events: client {m('client_us'):,.0f} us CPU/request, ingest "
        f"{m('server_us'):,.0f} us CPU/request (median). The raw baseline awaits each send "
        f"with {clients} senders and make_producer's linger_ms=5, the settings ingest "
        "publishes with; the last row shows the same ingest figure against an unlingered "
        "raw producer, for context.",
        f"paced: p50 {m('paced_p50_ms'):.1f} ms, p99 {m('paced_p99_ms'):.1f} ms, max "
        f"{m('paced_max_ms'):.1f} ms; client's own send lag p99 "
        f"{m('paced_client_lag_p99_ms'):.1f} ms. Ratio spread over rounds, single events: "
        f"{r.spread('ratio1')}.",
    ]

    print(
        f"\ningest benchmark - {datetime.now(UTC):%Y-%m-%d %H:%M} UTC - {platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"{'scenario':<78} {'raw ev/s':>9} {'ingest':>9} {'ratio':>6} {'p99 ms':>7}")
    for row in rows:

        def cell(v: float | None, fmt: str) -> str:
            return "-" if v is None else format(v, fmt)

        print(
            f"{row['scenario']:<78} {cell(row['raw_eps'], ',.0f'):>9} "
            f"{cell(row['ingest_eps'], ',.0f'):>9} {cell(row['ratio'], '.2f'):>6} "
            f"{cell(row['p99_ms'], '.1f'):>7}"
        )
    for note in notes:
        print("- " + note)
    print(
        "goals: batches of 500 >= 0.5x, every single-event row >= 0.5x, paced p99 <= 50 ms -> "
        + ("MET" if met else "NOT MET")
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "benchmark": "ingest",
                    "rows": rows,
                    "notes": notes,
                    "rounds": r.values,
                    "goal": {
                        "ratio_batch_500": 0.5,
                        "ratio_single_event": 0.5,
                        "paced_p99_ms": 50,
                        "paced_rate": args.rate,
                    },
                    "met": met,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    asyncio.run(main())
