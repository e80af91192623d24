"""Generic webhook: the SLA events as JSON, signed so the receiver can trust them.

Headers: ``X-Slawatch-Timestamp: <unix seconds>`` and, with a secret,
``X-Slawatch-Signature: t=<ts>,v1=<hex>`` where ``hex`` is HMAC-SHA256(secret,
f"{ts}.{body}") over the exact body bytes (the Stripe scheme: a receiver recomputes it
and refuses old timestamps to stop replays). ``X-Slawatch-Delivery`` is the message id,
the same on every retry, for the receiver's own deduplication.

Any 2xx is success; 408, 429 and 5xx are retried; other statuses are permanent.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

from slawatch.services.notifier.integrations.base import (
    HttpIntegration,
    Prepared,
    dumps,
    utc_now_iso,
)
from slawatch.services.notifier.model import DeliveryResult, Notice
from slawatch.services.notifier.reports import ReportView

SCHEMA_VERSION = 1


def webhook_signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return mac.hexdigest()


class WebhookIntegration(HttpIntegration):
    type = "webhook"

    def build(self, notices: list[Notice], now: datetime) -> Prepared:
        payload = {
            "version": SCHEMA_VERSION,
            "receiver": self.receiver.name,
            "integration": self.spec.name,
            "language": self.receiver.language,
            "title": self.renderer.title(self.view(notices, now)),
            "notifications": [
                {
                    "id": n.notification_id,
                    "event_id": n.event.id,
                    "repeat": n.repeat,
                    **({"via": n.via} if n.via else {}),
                }
                for n in notices
            ],
            "events": [n.event.model_dump(mode="json", exclude_none=True) for n in notices],
        }
        return Prepared(notices, payload, len(dumps(payload)))

    def report(self, report: ReportView, now: datetime) -> Prepared:
        """The report as JSON: the groups exactly as the monitor returned them."""
        payload = {
            "version": SCHEMA_VERSION,
            "receiver": self.receiver.name,
            "integration": self.spec.name,
            "language": self.receiver.language,
            "title": report.title,
            "report": {
                "name": report.name,
                "every": report.every,
                "group_by": report.group_by,
                "from": report.period_start.isoformat(),
                "to": report.period_end.isoformat(),
                "groups": list(report.groups),
            },
        }
        return Prepared([], payload, len(dumps(payload)))

    async def deliver(self, prepared: Prepared) -> DeliveryResult:
        payload = {**prepared.payload, "sent_at": utc_now_iso(self.wall)}
        body = dumps(payload)
        timestamp = int(self.wall())
        headers = {
            "X-Slawatch-Timestamp": str(timestamp),
            "X-Slawatch-Delivery": prepared.message_id,
        }
        secret = self.spec.options.get("secret")
        if secret:
            signature = webhook_signature(secret.reveal(), timestamp, body)
            headers["X-Slawatch-Signature"] = f"t={timestamp},v1={signature}"
        for name, value in self.spec.options.get("headers", {}).items():
            headers[name] = value.reveal()
        return await self.post(self.url(), body, headers)
