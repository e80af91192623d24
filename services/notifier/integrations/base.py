"""What every integration does: turn notices into provider payloads (pure, sized, split
to fit the provider), and deliver one payload, reporting ok / retryable / permanent.

HTTP integrations share :meth:`HttpIntegration.post` and its classification of answers:
timeouts, connection errors, 408, 429 and 5xx are retryable (honouring Retry-After);
other 4xx are permanent; a 2xx is handed to the provider's body check, because DingTalk,
WeCom and Feishu answer 200 with an error code in the body. Reasons never contain the
URL or any secret: webhook URLs carry their tokens.
"""

from __future__ import annotations

import hashlib
import json
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar

import httpx

from slawatch.services.notifier.config import IntegrationSpec, Receiver
from slawatch.services.notifier.model import DeliveryResult, Notice
from slawatch.services.notifier.providers import PROVIDERS
from slawatch.services.notifier.reports import ReportView
from slawatch.services.notifier.templates import MessageView, Renderer, message_view

USER_AGENT = "slawatch-notifier/0.1"
REASON_MAX = 300


@dataclass
class Prepared:
    """One message ready to deliver (signatures are added at delivery time)."""

    notices: list[Notice]
    payload: Any  # a JSON-able dict, an EmailMessage, or lines of text
    size: int  # as the provider counts it, for splitting
    message_id: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def message_id(notices: Sequence[Notice]) -> str:
    """Stable across retries and restarts: the same notices make the same id."""
    digest = hashlib.sha256("\n".join(sorted(str(n.key) for n in notices)).encode())
    return digest.hexdigest()[:24]


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """Retry-After is either delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(when.timestamp() - now, 0.0)


def short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= REASON_MAX else text[: REASON_MAX - 1] + "…"


class Integration(ABC):
    type: ClassVar[str]

    def __init__(
        self,
        spec: IntegrationSpec,
        receiver: Receiver,
        renderer: Renderer,
        client: httpx.AsyncClient | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.spec = spec
        self.receiver = receiver
        self.renderer = renderer
        self.client = client
        self.wall = wall
        provider = PROVIDERS[spec.type]
        self.max_events = spec.max_events_per_message
        self.max_bytes = provider.max_bytes

    @property
    def name(self) -> str:
        return self.spec.name

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.receiver.name}/{self.spec.name}>"

    def view(self, notices: Sequence[Notice], now: datetime) -> MessageView:
        return message_view(notices, self.receiver, now)

    @abstractmethod
    def build(self, notices: list[Notice], now: datetime) -> Prepared:
        """The payload for these notices; pure."""

    @abstractmethod
    def report(self, report: ReportView, now: datetime) -> Prepared:
        """A scheduled report as one message (services/notifier/reports.py); pure."""

    @abstractmethod
    async def deliver(self, prepared: Prepared) -> DeliveryResult:
        """One attempt. Never raises for provider or network trouble: it classifies it."""

    def prepare(self, notices: Sequence[Notice], now: datetime) -> list[Prepared]:
        """Split into messages of at most ``max_events`` events and ``max_bytes`` bytes."""
        out: list[Prepared] = []
        for start in range(0, len(notices), self.max_events):
            out.extend(self._fit(list(notices[start : start + self.max_events]), now))
        return out

    def _fit(self, notices: list[Notice], now: datetime) -> list[Prepared]:
        prepared = self.build(notices, now)
        if self.max_bytes is None or prepared.size <= self.max_bytes or len(notices) == 1:
            prepared.message_id = message_id(notices)
            return [prepared]
        half = len(notices) // 2
        return self._fit(notices[:half], now) + self._fit(notices[half:], now)


class HttpIntegration(Integration):
    """POST JSON to a webhook and classify the answer."""

    def url(self) -> str:
        return self.spec.options["url"].reveal()

    async def post(
        self,
        url: str,
        body: bytes,
        headers: dict[str, str] | None = None,
    ) -> DeliveryResult:
        assert self.client is not None, "HTTP integrations need an httpx.AsyncClient"
        all_headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": USER_AGENT}
        all_headers.update(headers or {})
        try:
            response = await self.client.post(
                url, content=body, headers=all_headers, timeout=self.spec.timeout
            )
        except httpx.TimeoutException as exc:
            return DeliveryResult.retryable(f"timeout ({type(exc).__name__})")
        except httpx.TransportError as exc:
            return DeliveryResult.retryable(f"connection error ({type(exc).__name__})")
        return self.classify(response)

    def classify(self, response: httpx.Response) -> DeliveryResult:
        status = response.status_code
        retry_after = retry_after_seconds(response.headers.get("retry-after"), self.wall())
        if status == 429 or status == 408 or status >= 500:
            return DeliveryResult.retryable(
                f"HTTP {status}{self._snippet(response)}", retry_after, status
            )
        if 200 <= status < 300:
            checked = self.check_body(response)
            return checked if checked is not None else DeliveryResult.ok(status)
        # 4xx: a provider error code in the body may still say "retry later"
        checked = self.check_body(response)
        if checked is not None and not checked.delivered:
            return checked
        return DeliveryResult.permanent(f"HTTP {status}{self._snippet(response)}", status)

    def check_body(self, response: httpx.Response) -> DeliveryResult | None:
        """Provider-specific: None means "the status code says it all"."""
        return None

    @staticmethod
    def _snippet(response: httpx.Response) -> str:
        text = response.text.strip() if response.content else ""
        return f": {short(text)}" if text else ""

    @staticmethod
    def json_body(response: httpx.Response) -> dict[str, Any] | None:
        try:
            data = json.loads(response.content or b"null")
        except ValueError:
            return None
        return data if isinstance(data, dict) else None


def dumps(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def error_code_result(
    code: Any,
    message: str,
    status: int,
    retryable: Mapping[int, float | None],
    provider: str,
) -> DeliveryResult:
    """A body error code: retryable (with the provider's throttle time) or permanent."""
    reason = f"{provider} error {code}: {short(str(message))}"
    if isinstance(code, int) and code in retryable:
        return DeliveryResult.retryable(reason, retryable[code], status)
    return DeliveryResult.permanent(reason, status)


def utc_now_iso(wall: Callable[[], float]) -> str:
    return datetime.fromtimestamp(wall(), UTC).isoformat(timespec="seconds")
