"""`slawatch dev` end to end: starts the stack, serves ingest, and leaves nothing behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import psutil
import pytest

from slawatch.services.dev.provision import free_port

pytestmark = pytest.mark.integration


def test_dev_starts_everything_and_ctrl_c_stops_everything(tmp_path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLAWATCH_")}
    env.update(
        {
            "SLAWATCH_INGEST_PORT": str(port),
            "SLAWATCH_MONITOR_PORT": str(free_port()),
            "SLAWATCH_NOTIFIER_PORT": str(free_port()),
        }
    )
    log = open(tmp_path / "dev.log", "w+")
    dev = subprocess.Popen(
        [sys.executable, "-m", "slawatch.services.cli", "dev", "--services", "ingest"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 90
        while "ready; Ctrl-C stops everything" not in (tmp_path / "dev.log").read_text():
            assert dev.poll() is None, (tmp_path / "dev.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "dev.log").read_text()
            time.sleep(0.2)
        output = (tmp_path / "dev.log").read_text()
        assert f"http://127.0.0.1:{port}" in output and "slawatch-dev-token" in output
        children = psutil.Process(dev.pid).children(recursive=True)
        assert any("tansu" in " ".join(c.cmdline()) for c in children)
        response = httpx.post(
            f"http://127.0.0.1:{port}/v1/events",
            headers={"Authorization": "Bearer slawatch-dev-token"},
            json={
                "event_id": "d1",
                "type": "ticket.created",
                "ticket_id": "T-d1",
                "occurred_at": "2026-11-23T09:00:00Z",
            },
            timeout=30,
        )
        assert response.status_code == 202, response.text
        dev.send_signal(signal.SIGINT)
        assert dev.wait(60) == 0
        time.sleep(0.5)
        survivors = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
        assert survivors == [], [c.cmdline() for c in survivors]
        pg_dir = output.split("postgres  embedded, ", 1)[1].split()[0]
        postgres_left = [
            p.info["cmdline"]
            for p in psutil.process_iter(["cmdline", "status"])
            if p.info["status"] != psutil.STATUS_ZOMBIE
            and pg_dir in " ".join(p.info["cmdline"] or [])
        ]
        assert postgres_left == []
    finally:
        if dev.poll() is None:
            dev.kill()
        log.close()


def test_embedded_postgres_stops_when_its_owner_is_killed_hard(tmp_path) -> None:
    """kill -9 runs no cleanup: the watchdog stops the server and removes its folder."""
    import json
    import os
    import signal
    import subprocess
    import sys
    import time

    script = (
        "import json, sys, time\n"
        "from slawatch.services.dev.provision import Postgres\n"
        "pg = Postgres().start()\n"
        "pid = int((pg.directory / 'pgdata' / 'postmaster.pid').read_text().split()[0])\n"
        "print(json.dumps({'pid': pid, 'dir': str(pg.directory)}), flush=True)\n"
        "time.sleep(600)\n"
    )
    owner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert owner.stdout is not None  # stdout=PIPE
    try:
        started = json.loads(owner.stdout.readline())
        os.kill(started["pid"], 0)  # the server runs
        owner.send_signal(signal.SIGKILL)
        owner.wait(10)
        deadline = time.monotonic() + 20
        while True:
            try:
                os.kill(started["pid"], 0)
            except ProcessLookupError:
                break
            assert time.monotonic() < deadline, "postgres outlived its owner"
            time.sleep(0.1)
        while os.path.exists(started["dir"]):
            assert time.monotonic() < deadline, "its folder was left behind"
            time.sleep(0.1)
    finally:
        if owner.poll() is None:
            owner.kill()
