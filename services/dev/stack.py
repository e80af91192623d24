"""`slawatch dev`: the whole product on one machine, started by one command.

Starts (only where not configured) a Tansu broker and an embedded PostgreSQL, creates the
topics, migrates the database when the monitor is installed, then runs every service as
its own `slawatch <service>` process, exactly as in production. Ctrl-C (or SIGTERM)
stops the services, then the broker and database; children also carry PDEATHSIG, so a
`kill -9` of this process leaves nothing behind.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from slawatch.services.cli import SERVICES, available
from slawatch.services.dev.provision import _die_with_parent, provision
from slawatch.shared.auth import DEV_TOKEN
from slawatch.shared.kafka import ensure_topics
from slawatch.shared.settings import CommonSettings, SettingsError, load_settings

PORT_VARS = {
    "ingest": "SLAWATCH_INGEST_PORT",
    "monitor": "SLAWATCH_MONITOR_PORT",
    "notifier": "SLAWATCH_NOTIFIER_PORT",
    "console": "SLAWATCH_CONSOLE_PORT",
}
DEFAULT_PORTS = {"ingest": 8080, "monitor": 8081, "notifier": 8082, "console": 8083}
# Where a running `slawatch dev` says how to reach it (read by `slawatch demo`).
STATE_FILE = Path(".devstack/dev.json")
EXAMPLE_FILES = {
    "SLAWATCH_POLICY_FILE": Path("examples/policies.yaml"),
    "SLAWATCH_ROUTES_FILE": Path("examples/routes.yaml"),
}
HOST_VARS = {
    "ingest": "SLAWATCH_INGEST_HOST",
    "monitor": "SLAWATCH_MONITOR_HOST",
    "notifier": "SLAWATCH_NOTIFIER_HOST",
    "console": "SLAWATCH_CONSOLE_HOST",
}


def _say(message: str) -> None:
    print(f"[slawatch dev] {message}", flush=True)


def _spawn(name: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "slawatch.services.cli", name],
        env=env,
        stdin=subprocess.DEVNULL,
        preexec_fn=_die_with_parent,
    )


def _wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return False


def _stop(processes: dict[str, subprocess.Popen[bytes]]) -> None:
    for process in processes.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes.values():
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def dev_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="slawatch dev", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--services",
        default=",".join(SERVICES),
        help="comma-separated services to run (default: all that are installed)",
    )
    args = parser.parse_args(argv)
    wanted = [s.strip() for s in args.services.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in SERVICES]
    if unknown:
        print(f"slawatch dev: unknown service(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    services = [s for s in wanted if available(SERVICES[s][0])]

    os.environ.setdefault("SLAWATCH_ENV", "dev")
    try:
        settings = load_settings(CommonSettings)
    except SettingsError as exc:
        return int(exc.code or 2)

    stop_requested = False

    def request_stop(signum: int, _frame: object) -> None:
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    _say(
        "starting broker and database (self-provisioned where SLAWATCH_KAFKA_BOOTSTRAP / SLAWATCH_DATABASE_URL are unset)"
    )
    with provision(settings.kafka_bootstrap, settings.database_url) as stack:
        env = {
            **os.environ,
            "SLAWATCH_ENV": "dev",
            "SLAWATCH_KAFKA_BOOTSTRAP": stack.kafka_bootstrap,
            "SLAWATCH_DATABASE_URL": stack.database_url,
        }
        for var, example in EXAMPLE_FILES.items():
            if var not in env and example.exists():
                env[var] = str(example.resolve())
        _say(
            f"kafka     {stack.kafka_bootstrap}" + ("  (tansu, in-memory)" if stack.broker else "")
        )
        _say(
            "postgres  "
            + ("embedded, " + str(stack.postgres.directory) if stack.postgres else "configured")
        )
        created = asyncio.run(
            ensure_topics(settings.model_copy(update={"kafka_bootstrap": stack.kafka_bootstrap}))
        )
        if created:
            _say("created topics: " + ", ".join(created))
        if available("slawatch.services.sla_monitor.cli"):
            subprocess.run(
                [sys.executable, "-m", "slawatch.services.cli", "db", "upgrade"], env=env, check=True
            )

        # The console reaches the monitor and notifier where this stack runs them.
        # ... and the notifier reaches the monitor's report API (scheduled reports).
        for name, var in (
            ("monitor", "SLAWATCH_CONSOLE_MONITOR_URL"),
            ("notifier", "SLAWATCH_CONSOLE_NOTIFIER_URL"),
            ("monitor", "SLAWATCH_NOTIFIER_MONITOR_URL"),
        ):
            host = env.get(HOST_VARS[name], "127.0.0.1")
            env.setdefault(var, f"http://{host}:{env.get(PORT_VARS[name], DEFAULT_PORTS[name])}")
        processes: dict[str, subprocess.Popen[bytes]] = {}
        try:
            if "notifier" in services:  # the example routing file's webhook goes here
                processes["webhook-sink"] = subprocess.Popen(
                    [sys.executable, "-m", "slawatch.services.dev.webhook_sink"],
                    env=env,
                    stdin=subprocess.DEVNULL,
                    preexec_fn=_die_with_parent,
                )
            for name in services:
                processes[name] = _spawn(name, env)
            for name in services:
                host = env.get(HOST_VARS[name], "127.0.0.1")
                port = env.get(PORT_VARS[name], str(DEFAULT_PORTS[name]))
                # The monitor is ready once its partitions are assigned and caught up.
                probe = "/readyz" if name == "monitor" else "/healthz"
                if _wait_healthy(f"http://{host}:{port}{probe}", processes[name], timeout=120):
                    if name == "console":
                        _say(f"{name:<9} http://{host}:{port}   (log in with the dev token below)")
                    else:
                        _say(f"{name:<9} http://{host}:{port}   (/healthz /readyz /metrics /docs)")
                else:
                    _say(f"{name} did not become healthy; see its log above")
                    return 1
            _say(f"dev token: {DEV_TOKEN}   (Authorization: Bearer {DEV_TOKEN})")
            STATE_FILE.parent.mkdir(exist_ok=True)
            STATE_FILE.write_text(json.dumps({
                "kafka_bootstrap": stack.kafka_bootstrap,
                "topic_sla": settings.topic_sla,
                "urls": {n: f"http://{env.get(HOST_VARS[n], '127.0.0.1')}:{env.get(PORT_VARS[n], DEFAULT_PORTS[n])}" for n in services},
                "pid": os.getpid(),
            }))
            _say("ready; Ctrl-C stops everything")
            while not stop_requested:
                for name, process in processes.items():
                    if process.poll() is not None:
                        _say(f"{name} exited with {process.returncode}; stopping")
                        return 1
                time.sleep(0.2)
            _say("stopping")
            return 0
        finally:
            _stop(processes)
            STATE_FILE.unlink(missing_ok=True)
