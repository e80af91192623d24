"""``python -m tests.notifier.clocked_notifier``: the notifier as `slawatch notifier` runs
it (services/notifier/main.py, SLAWATCH_* settings, SIGTERM), except that its report
schedule runs on a clock read from the file named by ``REPORT_CLOCK_FILE`` (an RFC 3339
instant), so a test can take several notifier processes through a week in seconds."""

from __future__ import annotations

import asyncio
import os
from datetime import datetime
from pathlib import Path

from slawatch.services.notifier.clock import Clock
from slawatch.services.notifier.main import run


class FileClock(Clock):
    def __init__(self, path: Path) -> None:
        self.path = path

    def now(self) -> datetime:
        return datetime.fromisoformat(self.path.read_text().strip())

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(0.05)


def set_time(path: Path, at: datetime) -> None:
    """Write the clock file whole (rename), so a reader never sees half an instant."""
    part = path.with_suffix(".part")
    part.write_text(at.isoformat())
    part.replace(path)


if __name__ == "__main__":
    run(clock=FileClock(Path(os.environ["REPORT_CLOCK_FILE"])))
