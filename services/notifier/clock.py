"""Time for the imperative shell. The core takes instants as arguments; the dispatcher
asks a :class:`Clock`, so tests and benchmarks can run a minute of notifier time in a
second (:class:`ScaledClock`) without changing any decision the core makes.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime


class Clock:
    """Real time: wall clock for instants, monotonic clock for intervals."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    def real_seconds(self, seconds: float) -> float:
        """How long ``seconds`` of this clock's time take in real time."""
        return seconds

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(self.real_seconds(seconds), 0.0))
