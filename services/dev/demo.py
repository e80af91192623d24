"""`slawatch demo`: a minute of customer service, from several channels and tiers.

Against a running `slawatch dev` (found through .devstack/dev.json) or, when none runs,
starting one itself. It posts a scripted scenario through the ingest API, prints every SLA
event as the monitor publishes it (warnings, a breach, escalations, met targets), while the
notifier delivers them to its console receiver and the local webhook sink, and ends with
the compliance report. Its tickets carry the tag `slawatch-demo`, which the example
policies give targets of seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from aiokafka import AIOKafkaConsumer

from slawatch.services.dev.stack import STATE_FILE
from slawatch.shared.auth import DEV_TOKEN


@dataclass
class Step:
    at: float  # seconds after the start
    ticket: str
    type: str
    data: dict
    channel: str
    says: str


def scenario() -> list[Step]:
    tag = {"tags": ["slawatch-demo"]}
    return [
        Step(0, "VIP-1", "ticket.created", {"priority": "urgent", "customer_tier": "gold", "group": "billing",
             "subject": "Payment failed at checkout", **tag}, "chat", "gold customer, chat, urgent - nobody answers"),
        Step(0, "STD-1", "ticket.created", {"priority": "normal", "customer_tier": "standard", "group": "support",
             "subject": "How do I export invoices?", **tag}, "email", "standard customer, e-mail"),
        Step(0, "VIP-2", "ticket.created", {"priority": "high", "customer_tier": "diamond", "group": "billing",
             "subject": "Refund not received", **tag}, "phone", "diamond customer, phone - answered late"),
        Step(0, "SOC-1", "ticket.created", {"priority": "normal", "customer_tier": "silver", "group": "social",
             "subject": "Complaint on Weibo", **tag}, "social", "silver customer, social media"),
        Step(10, "SOC-1", "message.created", {"author_role": "agent"}, "social", "agent answers SOC-1 (in time)"),
        Step(20, "STD-1", "message.created", {"author_role": "agent"}, "email", "agent answers STD-1 (in time)"),
        Step(36, "VIP-2", "message.created", {"author_role": "agent"}, "phone", "agent finally answers VIP-2 (late)"),
        Step(40, "SOC-1", "ticket.status_changed", {"status": "solved"}, "social", "SOC-1 solved at first contact"),
        Step(45, "SOC-1", "survey.responded", {"csat": 5, "nps": 10}, "social", "SOC-1 customer: CSAT 5, NPS 10"),
    ]


def _say(start: float, message: str) -> None:
    print(f"[demo +{time.monotonic() - start:4.0f}s] {message}", flush=True)


def _running_dev() -> dict | None:
    if not STATE_FILE.exists():
        return None
    try:
        state = json.loads(STATE_FILE.read_text())
        if httpx.get(state["urls"]["ingest"] + "/healthz", timeout=1).status_code == 200:
            return state
    except (ValueError, KeyError, httpx.HTTPError):
        return None
    return None


async def _watch(state: dict, run: str, start: float, seen: list[dict], stop: asyncio.Event) -> None:
    consumer = AIOKafkaConsumer(state["topic_sla"], bootstrap_servers=state["kafka_bootstrap"],
                                auto_offset_reset="latest", enable_auto_commit=False)
    await consumer.start()
    try:
        while not stop.is_set():
            for records in (await consumer.getmany(timeout_ms=300)).values():
                for record in records:
                    sla = json.loads(record.value)
                    if not sla["ticket_id"].startswith(run):
                        continue
                    seen.append(sla)
                    what = {"sla.warning": f"warning at {round((sla.get('fraction') or 0) * 100)}%",
                            "sla.breached": "BREACHED", "sla.escalated": f"escalated to level {sla.get('level')}",
                            "sla.met": "met" + (" (late)" if sla.get("breached") else " in time"),
                            "sla.retracted": "breach retracted"}[sla["kind"]]
                    late = " (detected late)" if sla.get("detected_late") else ""
                    _say(start, f"SLA  {sla['ticket_id'].removeprefix(run + '-'):<6} {sla['target']:<15} "
                                f"{what}{late}  [policy {sla['policy']}, tier {sla.get('customer_tier')}]")
    finally:
        await consumer.stop()


async def _post(client: httpx.AsyncClient, run: str, step: Step, n: int) -> None:
    event = {"event_id": f"{run}-{n}", "type": step.type, "ticket_id": f"{run}-{step.ticket}",
             "occurred_at": datetime.now(UTC).isoformat(), "channel": step.channel, "data": step.data}
    response = await client.post("/v1/events", json=event)
    response.raise_for_status()


def _report_table(rows: list[dict]) -> str:
    columns = ["customer_tier", "tickets", "targets_met", "targets_breached", "sla_met_pct", "first_response_p50_s",
               "fcr_pct", "csat_avg", "nps"]
    lines = ["  ".join(f"{c:>14}" for c in columns)]
    for row in rows:
        cells = []
        for c in columns:
            value = row.get(c)
            cells.append(f"{value:>14.1f}" if isinstance(value, float) else f"{'-' if value is None else value!s:>14}")
        lines.append("  ".join(cells))
    return "\n".join(lines)


async def run_demo(state: dict, duration: float) -> int:
    run = "D" + uuid.uuid4().hex[:5]
    start = time.monotonic()
    began = datetime.now(UTC) - timedelta(seconds=1)
    seen: list[dict] = []
    stop = asyncio.Event()
    watcher = asyncio.create_task(_watch(state, run, start, seen, stop))
    await asyncio.sleep(1.5)  # the watcher is subscribed before the first event is posted
    _say(start, f"scenario {run}: 4 tickets from chat, e-mail, phone and social; targets of seconds")
    headers = {"Authorization": f"Bearer {DEV_TOKEN}"}
    async with httpx.AsyncClient(base_url=state["urls"]["ingest"], headers=headers, timeout=10) as ingest:
        t0 = time.monotonic()
        for n, step in enumerate(scenario()):
            await asyncio.sleep(max(0.0, t0 + step.at - time.monotonic()))
            await _post(ingest, run, step, n)
            _say(start, f"post {step.ticket:<6} {step.type:<22} {step.says}")
        await asyncio.sleep(max(0.0, t0 + duration - time.monotonic()))
    stop.set()
    await watcher
    kinds = {s["kind"] for s in seen}
    _say(start, f"{len(seen)} SLA events: " + ", ".join(sorted(kinds)))
    monitor = state["urls"].get("monitor")
    if monitor:
        async with httpx.AsyncClient(base_url=monitor, timeout=10) as client:
            report = (await client.get("/v1/reports/compliance",
                                       params={"from": began.isoformat(), "group_by": "customer_tier"})).json()
        print("\ncompliance report (tickets created during the demo, by customer tier):")
        print(_report_table(report["groups"]))
    wanted = {"sla.warning", "sla.breached", "sla.escalated", "sla.met"}
    if not wanted <= kinds:
        print(f"\nslawatch demo: expected {sorted(wanted)}, saw {sorted(kinds)}", file=sys.stderr)
        return 1
    return 0


def demo_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="slawatch demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=55.0, help="seconds to run the scenario (default 55)")
    args = parser.parse_args(argv)
    if args.duration < 50:
        print("slawatch demo: --duration must be at least 50 s (the scenario's last escalation)", file=sys.stderr)
        return 2
    state = _running_dev()
    dev = None
    if state is None:
        print("[demo] no `slawatch dev` running here: starting one (its output follows)", flush=True)
        env = {**os.environ, "SLAWATCH_ENV": "dev"}
        dev = subprocess.Popen([sys.executable, "-m", "slawatch.services.cli", "dev"], env=env)
        deadline = time.monotonic() + 180
        while (state := _running_dev()) is None:
            if dev.poll() is not None or time.monotonic() > deadline:
                print("slawatch demo: `slawatch dev` did not come up", file=sys.stderr)
                return 1
            time.sleep(0.5)
    else:
        print("[demo] using the running `slawatch dev`; its terminal shows the console receiver "
              "and the webhook sink", flush=True)
    try:
        return asyncio.run(run_demo(state, args.duration))
    finally:
        if dev is not None:
            dev.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                dev.wait(60)
            if dev.poll() is None:
                dev.kill()


