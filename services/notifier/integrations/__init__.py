"""Integrations, by routing-file ``type``."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from slawatch.services.notifier.config import IntegrationSpec, Receiver
from slawatch.services.notifier.integrations.base import Integration, Prepared
from slawatch.services.notifier.integrations.console import ConsoleIntegration
from slawatch.services.notifier.integrations.dingtalk import DingTalkIntegration
from slawatch.services.notifier.integrations.email import EmailIntegration
from slawatch.services.notifier.integrations.feishu import FeishuIntegration
from slawatch.services.notifier.integrations.slack import SlackIntegration
from slawatch.services.notifier.integrations.teams import TeamsIntegration
from slawatch.services.notifier.integrations.webhook import WebhookIntegration
from slawatch.services.notifier.integrations.wecom import WeComIntegration
from slawatch.services.notifier.templates import Renderer

REGISTRY: dict[str, type[Integration]] = {
    cls.type: cls
    for cls in (
        SlackIntegration,
        TeamsIntegration,
        DingTalkIntegration,
        WeComIntegration,
        FeishuIntegration,
        WebhookIntegration,
        EmailIntegration,
        ConsoleIntegration,
    )
}


def build_integration(
    spec: IntegrationSpec,
    receiver: Receiver,
    renderer: Renderer,
    client: httpx.AsyncClient | None,
    wall: Callable[[], float] = time.time,
) -> Integration:
    return REGISTRY[spec.type](spec, receiver, renderer, client, wall)


__all__ = ["REGISTRY", "Integration", "Prepared", "build_integration"]
