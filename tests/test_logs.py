"""Logs: one JSON object per line in production, correlation fields at the top level."""

from __future__ import annotations

import io
import json
import logging

from slawatch.shared.logs import configure_logging
from slawatch.shared.settings import CommonSettings


def test_json_lines_carry_correlation_fields() -> None:
    stream = io.StringIO()
    configure_logging(CommonSettings(env="prod", log_format="auto"), stream)
    logging.getLogger("slawatch.test").info(
        "sla.breached %s",
        "first_response",
        extra={"ticket_id": "T-1", "sla_event_id": "T-1/first_response/0/breached"},
    )
    line = json.loads(stream.getvalue().strip())
    assert line["msg"] == "sla.breached first_response"
    assert line["ticket_id"] == "T-1" and line["sla_event_id"].endswith("/breached")
    assert line["level"] == "INFO" and line["ts"].endswith("+00:00")


def test_text_in_dev() -> None:
    stream = io.StringIO()
    configure_logging(CommonSettings(env="dev"), stream)
    logging.getLogger("slawatch.test").warning("hello", extra={"ticket_id": "T-2"})
    text = stream.getvalue()
    assert "WARNING" in text and "hello" in text and "ticket_id=T-2" in text
    assert not text.startswith("{")


def test_http_client_request_lines_with_token_urls_are_not_logged() -> None:
    """httpx logs full request URLs at INFO; robot URLs carry tokens."""
    stream = io.StringIO()
    configure_logging(CommonSettings(env="prod", log_level="INFO"), stream)
    logging.getLogger("httpx").info(
        "HTTP Request: POST https://oapi.dingtalk.com/robot/send?access_token=SECRET123"
    )
    assert "SECRET123" not in stream.getvalue()
