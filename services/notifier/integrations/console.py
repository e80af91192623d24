"""Console receiver for development: one line per notification on standard output."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import TextIO

from slawatch.services.notifier.integrations.base import Integration, Prepared
from slawatch.services.notifier.model import DeliveryResult, Notice
from slawatch.services.notifier.reports import ReportView


class ConsoleIntegration(Integration):
    type = "console"
    stream: TextIO | None = None  # None: whatever sys.stdout is at delivery time

    def build(self, notices: list[Notice], now: datetime) -> Prepared:
        view = self.view(notices, now)
        lines = [self.renderer.console(view, i) for i in range(len(view.events))]
        return Prepared(notices, lines, sum(len(line) for line in lines))

    def report(self, report: ReportView, now: datetime) -> Prepared:
        lines = [f"[report] {report.title}: {report.headline}"]
        return Prepared([], lines, sum(len(line) for line in lines))

    async def deliver(self, prepared: Prepared) -> DeliveryResult:
        stream = self.stream or sys.stdout
        try:
            stream.write("".join(line + "\n" for line in prepared.payload))
            stream.flush()
        except (OSError, ValueError) as exc:  # closed or broken stdout
            return DeliveryResult.retryable(f"cannot write to stdout: {exc}")
        return DeliveryResult.ok()
