"""Slack incoming webhook: a Block Kit message (header, one section per event, context).

Slack answers 200 with the body ``ok``; errors come as 4xx with a short code in the body
(``invalid_payload``, ``no_service``, ``channel_is_archived``...), which are permanent,
and 429 with Retry-After. ``text`` is the notification/fallback text.
"""

from __future__ import annotations

from datetime import datetime

from slawatch.services.notifier.integrations.base import HttpIntegration, Prepared, dumps
from slawatch.services.notifier.model import DeliveryResult, Notice
from slawatch.services.notifier.reports import ReportView

HEADER_MAX = 150  # plain_text header limit
SECTION_MAX = 3000  # mrkdwn section limit


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class SlackIntegration(HttpIntegration):
    type = "slack"

    def build(self, notices: list[Notice], now: datetime) -> Prepared:
        view = self.view(notices, now)
        title = self.renderer.title(view)
        blocks: list[dict] = [
            {
                "type": "header",
                "text": {"type": "plain_text", "text": _cut(title, HEADER_MAX), "emoji": True},
            }
        ]
        if view.via:
            blocks.append(
                {
                    "type": "context",
                    "elements": [{"type": "mrkdwn", "text": _cut(view.via, SECTION_MAX)}],
                }
            )
        for index in range(len(view.events)):
            if index:
                blocks.append({"type": "divider"})
            blocks.append(
                {
                    "type": "section",
                    "text": {
                        "type": "mrkdwn",
                        "text": _cut(self.renderer.slack_event(view, index), SECTION_MAX),
                    },
                }
            )
        blocks.append(
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": _cut(view.footer, SECTION_MAX)}],
            }
        )
        payload = {"text": title, "blocks": blocks}
        return Prepared(notices, payload, len(dumps(payload)))

    def report(self, report: ReportView, now: datetime) -> Prepared:
        blocks = [
            {
                "type": "header",
                "text": {
                    "type": "plain_text",
                    "text": _cut(report.title, HEADER_MAX),
                    "emoji": True,
                },
            },
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": _cut(self.renderer.report_markdown(report, "slack"), SECTION_MAX),
                },
            },
        ]
        payload = {"text": report.title, "blocks": blocks}
        return Prepared([], payload, len(dumps(payload)))

    async def deliver(self, prepared: Prepared) -> DeliveryResult:
        return await self.post(self.url(), dumps(prepared.payload))
