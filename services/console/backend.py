"""The console's view of the monitor and the notifier: their documented HTTP APIs.

One client per process, presenting the console's service key. Everything the console
shows comes through here; it holds no SLA or report logic of its own.
"""

from __future__ import annotations

from typing import Any

import httpx


class BackendError(Exception):
    """A service could not be reached or refused; ``status`` None when unreachable."""

    def __init__(self, service: str, status: int | None, detail: str) -> None:
        super().__init__(f"{service}: {status}: {detail}")
        self.service = service
        self.status = status
        self.detail = detail


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail", response.text)
    except ValueError:
        return response.text[:300]
    if isinstance(detail, list):
        return "; ".join(
            f"{d.get('field') or '.'.join(str(p) for p in d.get('loc', [])[1:])}: "
            f"{d.get('message') or d.get('msg')}"
            for d in detail
            if isinstance(d, dict)
        )
    return str(detail)[:300]


# A pooled connection the service closed as a request went out on it (a restart, or a
# proxy's idle timeout; our services keep theirs longer than httpx's pool, tasks.py) fails
# with no answer. A read is then sent once more on a new connection: the service never
# read it, and a read changes nothing. Anything else is never sent twice.
RESENT_METHODS = frozenset({"GET", "HEAD"})


class Backend:
    def __init__(self, monitor_url: str, notifier_url: str, token: str | None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.AsyncClient(headers=headers, timeout=10.0, follow_redirects=False)
        self.urls = {"monitor": monitor_url, "notifier": notifier_url}

    async def close(self) -> None:
        await self.http.aclose()

    async def call(
        self,
        service: str,
        method: str,
        path: str,
        *,
        params: Any = None,
        json: Any = None,
        allow: tuple[int, ...] = (),
    ) -> Any:
        url = self.urls[service] + path
        try:
            try:
                response = await self.http.request(method, url, params=params, json=json)
            except httpx.RemoteProtocolError:
                if method not in RESENT_METHODS:
                    raise
                response = await self.http.request(method, url, params=params, json=json)
        except httpx.HTTPError as exc:
            raise BackendError(service, None, type(exc).__name__) from None
        if response.status_code in allow:
            return None
        if response.status_code >= 400:
            raise BackendError(service, response.status_code, _detail(response))
        if response.headers.get("content-type", "").startswith("application/json"):
            return response.json()
        return response.text

    # ------------------------------------------------------------ monitor

    async def board(self, params: dict[str, Any]) -> dict[str, Any]:
        return await self.call("monitor", "GET", "/v1/board", params=params)

    async def ticket(self, ticket_id: str) -> dict[str, Any] | None:
        return await self.call(
            "monitor", "GET", _path("/v1/tickets/", ticket_id, "/sla"), allow=(404,)
        )

    async def timeline(self, ticket_id: str) -> dict[str, Any] | None:
        return await self.call(
            "monitor", "GET", _path("/v1/tickets/", ticket_id, "/timeline"), allow=(404,)
        )

    async def compliance(self, params: dict[str, Any]) -> dict[str, Any]:
        return await self.call("monitor", "GET", "/v1/reports/compliance", params=params)

    async def series(self, params: dict[str, Any]) -> dict[str, Any]:
        return await self.call("monitor", "GET", "/v1/reports/compliance/series", params=params)

    # ------------------------------------------------------------ notifier

    async def notifications(self, params: dict[str, Any]) -> dict[str, Any]:
        return await self.call("notifier", "GET", "/v1/notifications", params=params)

    async def silences(self, state: str | None = None) -> list[dict[str, Any]]:
        params = {"state": state} if state else None
        return (await self.call("notifier", "GET", "/v1/silences", params=params))["silences"]

    async def create_silence(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self.call("notifier", "POST", "/v1/silences", json=body)

    async def expire_silence(self, silence_id: str) -> dict[str, Any]:
        return await self.call("notifier", "DELETE", _path("/v1/silences/", silence_id))

    async def acknowledgements(self, ticket_ids: list[str], standing: bool = True) -> list[dict]:
        if not ticket_ids:
            return []
        params = [("ticket_id", t) for t in ticket_ids] + [("standing", str(standing).lower())]
        return (await self.call("notifier", "GET", "/v1/acknowledgements", params=params))[
            "acknowledgements"
        ]

    async def acknowledge(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self.call("notifier", "POST", "/v1/acknowledgements", json=body)


def _path(prefix: str, value: str, suffix: str = "") -> str:
    from urllib.parse import quote

    return prefix + quote(value, safe="") + suffix
