"""WeCom (企业微信) group robot: a markdown message (content at most 4,096 UTF-8 bytes).

WeCom answers HTTP 200 with ``{"errcode": 0, "errmsg": "ok"}``; 45009 ("api freq out of
limit": more than 20 messages a minute) and 45033 (too many concurrent calls) are
retried after a minute, -1 (system busy) soon; others (93000 invalid webhook URL,
40008 invalid message type...) are permanent. The robot URL's ``key`` is its only
credential; WeCom robots have no signing.
"""

from __future__ import annotations

from datetime import datetime

from slawatch.services.notifier.integrations.base import (
    HttpIntegration,
    Prepared,
    dumps,
    error_code_result,
)
from slawatch.services.notifier.model import DeliveryResult, Notice
from slawatch.services.notifier.reports import ReportView

RETRYABLE = {45009: 60.0, 45033: 60.0, -1: None}


class WeComIntegration(HttpIntegration):
    type = "wecom"

    def build(self, notices: list[Notice], now: datetime) -> Prepared:
        view = self.view(notices, now)
        content = self.renderer.markdown(view, "wecom")
        mentions = self.spec.options.get("mention_userids", ())
        if mentions:
            content += "\n" + " ".join(f"<@{user}>" for user in mentions)
        payload = {"msgtype": "markdown", "markdown": {"content": content}}
        return Prepared(notices, payload, len(content.encode()))

    def report(self, report: ReportView, now: datetime) -> Prepared:
        content = self.renderer.report_markdown(report, "wecom")
        payload = {"msgtype": "markdown", "markdown": {"content": content}}
        return Prepared([], payload, len(content.encode()))

    async def deliver(self, prepared: Prepared) -> DeliveryResult:
        return await self.post(self.url(), dumps(prepared.payload))

    def check_body(self, response) -> DeliveryResult | None:
        body = self.json_body(response)
        if body is None or "errcode" not in body:
            return DeliveryResult.permanent(
                f"WeCom answered HTTP {response.status_code} without an errcode",
                response.status_code,
            )
        if body["errcode"] == 0:
            return DeliveryResult.ok(response.status_code)
        return error_code_result(
            body["errcode"], body.get("errmsg", ""), response.status_code, RETRYABLE, "WeCom"
        )
