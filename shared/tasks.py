"""Long-running background loops of a service process, kept alive and stopped cleanly,
and the process itself: served by uvicorn, stopped by SIGTERM/SIGINT with exit status 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any


async def supervise(name: str, run: Callable[[], Awaitable[None]], log: logging.Logger) -> None:
    """Run a loop until it returns (it was asked to stop): a crash is logged and the loop
    restarted after a second.

    Safe because the loops keep what they need in the database and Kafka, not in the
    loop's own frame; cancellation (shutdown) passes through.
    """
    while True:
        try:
            await run()
            return
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


# Of SLAWATCH_SHUTDOWN_TIMEOUT_S, open HTTP requests get this share to finish; the
# service's own stop (batch in hand, deliveries, outbox, leaving the group) the rest.
HTTP_DRAIN_SHARE = 0.25


# How long a service keeps an idle HTTP connection open. uvicorn's own 5 s equals httpx's
# pool expiry (the console's and the notifier's clients), so a client could send on a
# connection the service was closing and get no answer (seen as the console's 502); a load
# balancer or nginx in front reuses upstream connections for 60 s by default. Closing last
# (server idle timeout above every client's) is what prevents that race; an idle
# connection costs a socket, and a stop closes idle ones at once.
HTTP_KEEP_ALIVE_S = 75


def stop_budget_s(shutdown_timeout_s: float) -> float:
    """What the lifespan stop of a service may spend, after the HTTP drain."""
    return shutdown_timeout_s * (1 - HTTP_DRAIN_SHARE)


class Deadline:
    """One shutdown budget shared by the steps of a stop (SLAWATCH_SHUTDOWN_TIMEOUT_S)."""

    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds

    def left(self, floor: float = 0.05) -> float:
        """Seconds left; never less than ``floor``, so every step gets a short try."""
        return max(self.at - time.monotonic(), floor)


async def finish(
    what: str, awaitable: Awaitable[Any], deadline: Deadline, log: logging.Logger
) -> bool:
    """Await a shutdown step within what is left of the budget; False if it ran out (the
    step is cancelled) or failed (logged: a stop goes on with the next step regardless)."""
    try:
        async with asyncio.timeout(deadline.left()):
            await awaitable
        return True
    except TimeoutError:
        log.warning("shutdown: %s did not finish within the shutdown timeout", what)
    except Exception as exc:  # noqa: BLE001 - the remaining steps must still run
        log.warning("shutdown: %s failed: %s", what, exc)
    return False


async def wait_or_cancel(
    what: str, task: asyncio.Task, deadline: Deadline, log: logging.Logger
) -> bool:
    """Let a task that was asked to stop end by itself within the budget, else cancel it."""
    done, _ = await asyncio.wait({task}, timeout=deadline.left())
    if not done:
        log.warning("shutdown: %s did not stop within the shutdown timeout; cancelling", what)
        await cancel_all([task])
        return False
    with contextlib.suppress(asyncio.CancelledError, Exception):
        task.result()
    return True


def run_service(
    app: Any,
    host: str,
    port: int,
    shutdown_timeout_s: float,
    http: str = "h11",
    loop: str = "asyncio",
) -> None:
    """Serve an ASGI app until SIGTERM or SIGINT, then stop gracefully and return (exit 0).

    ``http``/``loop`` are uvicorn's; the default is the pure-Python pair every service ran
    on before httptools and uvloop were installed (uvicorn's "auto" would switch them all
    silently). Ingest, whose load is one small request per webhook, asks for the C pair.

    uvicorn handles both signals (stop accepting, finish open requests within the shutdown
    timeout, run the lifespan shutdown) but then raises the caught signal again with the
    default handler restored, so the process would still die *by* SIGTERM (status -15/143)
    after a clean stop. A handler of ours, installed before uvicorn's, is what it restores
    and re-raises to: it turns that last signal into a normal exit.
    """
    import uvicorn

    log = logging.getLogger("slawatch")

    def exit_cleanly(signum: int, _frame: object) -> None:
        raise SystemExit(0)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, exit_cleanly)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        timeout_keep_alive=HTTP_KEEP_ALIVE_S,
        http=http,
        loop=loop,
        timeout_graceful_shutdown=max(1, round(shutdown_timeout_s * HTTP_DRAIN_SHARE)),
    )
    server = uvicorn.Server(config)
    try:
        server.run()
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise
    if not server.started:
        # The lifespan startup failed (logged by uvicorn): as uvicorn.run does, exit 3.
        raise SystemExit(3)
    log.info("stopped")
