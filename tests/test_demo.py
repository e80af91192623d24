"""`slawatch demo` by itself: starts the stack, runs the scenario, shows every kind of SLA
event and the compliance report, and stops the stack again."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from slawatch.services.dev.provision import free_port

pytestmark = pytest.mark.integration


def test_demo_shows_the_whole_flow() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLAWATCH_")}
    env.update({f"SLAWATCH_{name}_PORT": str(free_port()) for name in ("INGEST", "MONITOR", "NOTIFIER", "CONSOLE")})
    result = subprocess.run([sys.executable, "-m", "slawatch.services.cli", "demo"], env=env, capture_output=True,
                            text=True, timeout=400)
    out = result.stdout
    assert result.returncode == 0, out[-4000:] + result.stderr[-4000:]
    for expected in ("warning at 50%", "BREACHED", "escalated to level 1", "escalated to level 2",
                     "met in time", "met (late)", "compliance report", "[slawatch dev] stopping",
                     "[slawatch dev] console   http://127.0.0.1:"):
        assert expected in out, f"{expected!r} missing:\n{out[-4000:]}"
    report = out.split("compliance report", 1)[1].splitlines()
    silver = next(line for line in report if line.strip().startswith("silver"))
    assert silver.split()[1:4] == ["1", "3", "0"]  # tickets, met, breached
    assert "100.0" in silver  # FCR, NPS
