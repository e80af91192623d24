"""Feishu / Lark custom bot: an interactive card, signed when the bot has a secret.

Signing, as Feishu documents it: ``string_to_sign = f"{timestamp}\\n{secret}"`` with
``timestamp`` in seconds, used as the HMAC-SHA256 *key* over an empty message; ``sign``
is the base64 digest. ``timestamp`` (a string) and ``sign`` go in the JSON body; the
server refuses a timestamp more than an hour off.

Feishu answers ``{"code": 0, "msg": "success", "data": {}}`` (older bots:
``{"StatusCode": 0, ...}``), HTTP 200 or 400 alike. 11232 (frequency limited: more than
100 a minute or 5 a second) is retried after a minute; 19021 (signature or timestamp
rejected), 19022 (IP not allowed), 19024 (keyword missing), 9499 (bad request) and
the rest are permanent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime

from slawatch.services.notifier.i18n import translate
from slawatch.services.notifier.integrations.base import (
    HttpIntegration,
    Prepared,
    dumps,
    error_code_result,
)
from slawatch.services.notifier.model import DeliveryResult, Notice
from slawatch.services.notifier.reports import ReportView
from slawatch.shared.sla_events import SlaKind

RETRYABLE = {11232: 60.0}
HEADER_COLOURS = {
    SlaKind.escalated: "carmine",
    SlaKind.breached: "red",
    SlaKind.warning: "orange",
    SlaKind.met: "green",
    SlaKind.retracted: "grey",
}


def feishu_sign(timestamp_s: int, secret: str) -> str:
    string_to_sign = f"{timestamp_s}\n{secret}".encode()
    digest = hmac.new(string_to_sign, b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class FeishuIntegration(HttpIntegration):
    type = "feishu"

    def build(self, notices: list[Notice], now: datetime) -> Prepared:
        view = self.view(notices, now)
        strongest = next(
            (k for k in HEADER_COLOURS if any(n.event.kind == k for n in notices)), SlaKind.breached
        )
        elements: list[dict] = [
            {
                "tag": "div",
                "text": {"tag": "lark_md", "content": self.renderer.markdown(view, "feishu")},
            }
        ]
        urls = {e.url for e in view.events if e.url}
        if len(urls) == 1:
            elements.append(
                {
                    "tag": "action",
                    "actions": [
                        {
                            "tag": "button",
                            "text": {
                                "tag": "plain_text",
                                "content": translate(view.language, "open_ticket"),
                            },
                            "type": "primary",
                            "url": urls.pop(),
                        }
                    ],
                }
            )
        card = {
            "config": {"wide_screen_mode": True},
            "header": {
                "title": {"tag": "plain_text", "content": self.renderer.title(view)},
                "template": HEADER_COLOURS[strongest],
            },
            "elements": elements,
        }
        payload = {"msg_type": "interactive", "card": card}
        return Prepared(notices, payload, len(dumps(payload)) + 80)

    def report(self, report: ReportView, now: datetime) -> Prepared:
        card = {
            "config": {"wide_screen_mode": True},
            "header": {
                "title": {"tag": "plain_text", "content": report.title},
                "template": "blue",
            },
            "elements": [
                {
                    "tag": "div",
                    "text": {
                        "tag": "lark_md",
                        "content": self.renderer.report_markdown(report, "feishu"),
                    },
                }
            ],
        }
        payload = {"msg_type": "interactive", "card": card}
        return Prepared([], payload, len(dumps(payload)) + 80)

    def signed_payload(self, payload: dict) -> dict:
        secret = self.spec.options.get("secret")
        if not secret:
            return payload
        timestamp = int(self.wall())
        return {
            "timestamp": str(timestamp),
            "sign": feishu_sign(timestamp, secret.reveal()),
            **payload,
        }

    async def deliver(self, prepared: Prepared) -> DeliveryResult:
        return await self.post(self.url(), dumps(self.signed_payload(prepared.payload)))

    def check_body(self, response) -> DeliveryResult | None:
        body = self.json_body(response)
        if body is None:
            return DeliveryResult.permanent(
                f"Feishu answered HTTP {response.status_code} without a JSON body",
                response.status_code,
            )
        code = body.get("code", body.get("StatusCode"))
        if code is None:
            return DeliveryResult.permanent(
                f"Feishu answered HTTP {response.status_code} without a code", response.status_code
            )
        if code == 0 and 200 <= response.status_code < 300:
            return DeliveryResult.ok(response.status_code)
        message = body.get("msg", body.get("StatusMessage", ""))
        return error_code_result(code, message, response.status_code, RETRYABLE, "Feishu")
