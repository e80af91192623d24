"""Microsoft Teams through a Workflows (Power Automate) webhook: an Adaptive Card in the
``message`` / ``attachments`` envelope the "post to a channel when a webhook request is
received" flow expects. Office 365 connectors are retired; their MessageCard is not used.

The flow answers 202 Accepted (some tenants 200); 429 and 5xx are retryable.
"""

from __future__ import annotations

from datetime import datetime

from slawatch.services.notifier.i18n import translate
from slawatch.services.notifier.integrations.base import HttpIntegration, Prepared, dumps
from slawatch.services.notifier.model import DeliveryResult, Notice
from slawatch.services.notifier.reports import ReportView
from slawatch.shared.sla_events import SlaKind

CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
CARD_VERSION = "1.4"
CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"


class TeamsIntegration(HttpIntegration):
    type = "teams"

    def build(self, notices: list[Notice], now: datetime) -> Prepared:
        view = self.view(notices, now)
        alarming = any(n.event.kind in (SlaKind.breached, SlaKind.escalated) for n in notices)
        body: list[dict] = [
            {
                "type": "TextBlock",
                "text": self.renderer.title(view),
                "weight": "Bolder",
                "size": "Medium",
                "wrap": True,
                "color": "Attention" if alarming else "Warning",
            }
        ]
        if view.via:
            body.append({"type": "TextBlock", "text": view.via, "isSubtle": True, "wrap": True})
        for index in range(len(view.events)):
            body.append(
                {
                    "type": "Container",
                    "separator": True,
                    "items": [
                        {
                            "type": "TextBlock",
                            "text": self.renderer.teams_event(view, index),
                            "wrap": True,
                        }
                    ],
                }
            )
        body.append(
            {
                "type": "TextBlock",
                "text": view.footer,
                "isSubtle": True,
                "size": "Small",
                "wrap": True,
            }
        )
        card: dict = {
            "$schema": CARD_SCHEMA,
            "type": "AdaptiveCard",
            "version": CARD_VERSION,
            "msteams": {"width": "Full"},
            "body": body,
        }
        urls = {e.url for e in view.events if e.url}
        if len(urls) == 1:
            card["actions"] = [
                {
                    "type": "Action.OpenUrl",
                    "title": translate(view.language, "open_ticket"),
                    "url": urls.pop(),
                }
            ]
        payload = {
            "type": "message",
            "attachments": [{"contentType": CONTENT_TYPE, "contentUrl": None, "content": card}],
        }
        return Prepared(notices, payload, len(dumps(payload)))

    def report(self, report: ReportView, now: datetime) -> Prepared:
        card = {
            "$schema": CARD_SCHEMA,
            "type": "AdaptiveCard",
            "version": CARD_VERSION,
            "msteams": {"width": "Full"},
            "body": [
                {
                    "type": "TextBlock",
                    "text": report.title,
                    "weight": "Bolder",
                    "size": "Medium",
                    "wrap": True,
                },
                {
                    "type": "TextBlock",
                    "text": self.renderer.report_markdown(report, "teams"),
                    "wrap": True,
                },
            ],
        }
        payload = {
            "type": "message",
            "attachments": [{"contentType": CONTENT_TYPE, "contentUrl": None, "content": card}],
        }
        return Prepared([], payload, len(dumps(payload)))

    async def deliver(self, prepared: Prepared) -> DeliveryResult:
        return await self.post(self.url(), dumps(prepared.payload))
