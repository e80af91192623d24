"""DingTalk (钉钉) custom robot: a markdown message, signed when the robot has a secret.

Signing (加签), as DingTalk documents it: ``string_to_sign = f"{timestamp}\\n{secret}"``
with ``timestamp`` in milliseconds; ``sign`` = base64(HMAC-SHA256(key=secret,
msg=string_to_sign)), URL-encoded; both go in the query string beside access_token. The
server refuses a timestamp more than an hour off.

DingTalk answers HTTP 200 with ``{"errcode": 0, "errmsg": "ok"}``; any other errcode is
a failure. 130101 ("send too fast, exceed 20 times per minute") throttles the robot for
ten minutes, so it is retried after ten minutes; -1 (system busy) soon; others (310000
sign/keyword/IP mismatch, 300001 bad token, 400013 disbanded group...) are permanent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime
from urllib.parse import quote_plus

from slawatch.services.notifier.integrations.base import (
    HttpIntegration,
    Prepared,
    dumps,
    error_code_result,
)
from slawatch.services.notifier.model import DeliveryResult, Notice
from slawatch.services.notifier.reports import ReportView

RETRYABLE = {130101: 600.0, 130102: 600.0, -1: None}


def dingtalk_sign(timestamp_ms: int, secret: str) -> str:
    """The base64 signature (before URL encoding)."""
    string_to_sign = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode(), string_to_sign, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class DingTalkIntegration(HttpIntegration):
    type = "dingtalk"

    def build(self, notices: list[Notice], now: datetime) -> Prepared:
        view = self.view(notices, now)
        text = self.renderer.markdown(view, "dingtalk")
        options = self.spec.options
        mobiles = list(options.get("at_mobiles", ()))
        user_ids = list(options.get("at_user_ids", ()))
        if mobiles or user_ids:
            # DingTalk only notifies @-mentions that also appear in the text.
            text += "\n\n" + " ".join([f"@{m}" for m in mobiles] + [f"@{u}" for u in user_ids])
        payload = {
            "msgtype": "markdown",
            "markdown": {"title": self.renderer.title(view), "text": text},
            "at": {
                "atMobiles": mobiles,
                "atUserIds": user_ids,
                "isAtAll": bool(options.get("at_all", False)),
            },
        }
        return Prepared(notices, payload, len(text.encode()))

    def report(self, report: ReportView, now: datetime) -> Prepared:
        text = self.renderer.report_markdown(report, "dingtalk")
        payload = {"msgtype": "markdown", "markdown": {"title": report.title, "text": text}}
        return Prepared([], payload, len(text.encode()))

    def signed_url(self) -> str:
        url = self.url()
        secret = self.spec.options.get("secret")
        if not secret:
            return url
        timestamp = int(self.wall() * 1000)
        sign = quote_plus(dingtalk_sign(timestamp, secret.reveal()))
        return f"{url}{'&' if '?' in url else '?'}timestamp={timestamp}&sign={sign}"

    async def deliver(self, prepared: Prepared) -> DeliveryResult:
        return await self.post(self.signed_url(), dumps(prepared.payload))

    def check_body(self, response) -> DeliveryResult | None:
        body = self.json_body(response)
        if body is None or "errcode" not in body:
            return DeliveryResult.permanent(
                f"DingTalk answered HTTP {response.status_code} without an errcode",
                response.status_code,
            )
        if body["errcode"] == 0:
            return DeliveryResult.ok(response.status_code)
        return error_code_result(
            body["errcode"], body.get("errmsg", ""), response.status_code, RETRYABLE, "DingTalk"
        )
