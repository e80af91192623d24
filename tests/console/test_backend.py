"""The console's client of the monitor and the notifier, against a real HTTP server on
127.0.0.1 that closes a kept-alive connection the way uvicorn does when its keep-alive
timeout ends just as a request is sent on it: reading the request, answering nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from slawatch.services.console.backend import Backend, BackendError

OK = b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{"ok":true}'


class ClosingServer:
    """Answers the first request of a connection; closes it, unanswered, on the second."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        answered = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                if length:
                    await reader.readexactly(length)
                self.requests.append(head.split(b" ", 1)[0].decode())
                if answered:
                    break  # the keep-alive timeout: the connection closes unanswered
                writer.write(OK)
                await writer.drain()
                answered += 1
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


@pytest.fixture
async def served() -> AsyncIterator[tuple[ClosingServer, Backend]]:
    server = ClosingServer()
    async with server as url:
        backend = Backend(url, url, token="t")
        try:
            yield server, backend
        finally:
            await backend.close()


async def test_a_get_on_a_connection_the_server_just_closed_is_sent_again(
    served: tuple[ClosingServer, Backend],
) -> None:
    server, backend = served
    assert await backend.call("monitor", "GET", "/v1/board") == {"ok": True}
    assert await backend.call("monitor", "GET", "/v1/board") == {"ok": True}
    assert server.requests == ["GET", "GET", "GET"]  # the second one twice
    assert server.connections == 2


async def test_a_post_is_not_sent_twice(served: tuple[ClosingServer, Backend]) -> None:
    server, backend = served
    assert await backend.call("notifier", "GET", "/v1/silences") == {"ok": True}
    with pytest.raises(BackendError) as raised:
        await backend.call("notifier", "POST", "/v1/silences", json={"matchers": []})
    assert raised.value.status is None and raised.value.detail == "RemoteProtocolError"
    assert server.requests == ["GET", "POST"]
    assert server.connections == 1


async def _healthz(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
    writer.write(b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    sized = [line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")]
    await reader.readexactly(int(sized[0].split(b":", 1)[1]))
    return head


@pytest.mark.integration
async def test_a_service_keeps_an_idle_connection_longer_than_httpxs_pool(stack) -> None:
    """The services close idle connections after HTTP_KEEP_ALIVE_S (shared/tasks.py), so a
    client reusing one within its pool's 5 s (httpx's default) never races the close."""
    host, port = stack.url("monitor").removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        assert (await _healthz(reader, writer)).startswith(b"HTTP/1.1 200")
        await asyncio.sleep(6)  # past uvicorn's own default of 5 s, and httpx's pool expiry
        assert (await _healthz(reader, writer)).startswith(b"HTTP/1.1 200")
    finally:
        writer.close()
