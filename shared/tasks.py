"""Long-running background loops of a service process, kept alive and stopped cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable


async def supervise(name: str, run: Callable[[], Awaitable[None]], log: logging.Logger) -> None:
    """Run a loop forever: a crash is logged and the loop restarted after a second.

    Safe because the loops keep what they need in the database and Kafka, not in the
    loop's own frame; cancellation (shutdown) passes through.
    """
    while True:
        try:
            await run()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s loop crashed; restarting in 1s", name)
            await asyncio.sleep(1)


async def cancel_all(tasks: Iterable[asyncio.Task]) -> None:
    """Cancel tasks and wait until each has finished; their errors are not ours any more."""
    tasks = list(tasks)
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
