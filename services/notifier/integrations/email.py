"""E-mail over SMTP (aiosmtplib): a multipart/alternative message, text and HTML parts,
with the subject in the receiver's language.

``security``: ``starttls`` (default, port 587) upgrades a plain connection and refuses
to go on without TLS; ``tls`` (port 465) speaks TLS from the first byte; ``none`` (port
25) sends in the clear - for a relay on localhost or tests only.

Answers: connection trouble, timeouts and 4xx replies are retryable; 5xx replies
(unknown mailbox, authentication failed, message refused) are permanent.
"""

from __future__ import annotations

from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import aiosmtplib

from slawatch.services.notifier.config import reveal
from slawatch.services.notifier.integrations.base import Integration, Prepared, short
from slawatch.services.notifier.model import DeliveryResult, Notice
from slawatch.services.notifier.reports import ReportView, to_csv

DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}
CONTENT_LANGUAGE = {"en": "en", "zh": "zh-CN"}


def _smtp_result(code: int, message: str, what: str) -> DeliveryResult:
    reason = f"SMTP {code} {what}: {short(message)}"
    if 400 <= code < 500:
        return DeliveryResult.retryable(reason)
    return DeliveryResult.permanent(reason)


class EmailIntegration(Integration):
    type = "email"

    def build(self, notices: list[Notice], now: datetime) -> Prepared:
        view = self.view(notices, now)
        options = self.spec.options
        message = EmailMessage()
        message["Subject"] = self.renderer.title(view)
        message["From"] = reveal(options["from"])
        message["To"] = ", ".join(options["to"])
        message["Date"] = format_datetime(now)
        message["Message-ID"] = make_msgid(domain="slawatch.local")
        message["X-Slawatch-Receiver"] = self.receiver.name
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies, please
        message.set_content(self.renderer.text(view))
        message.add_alternative(self.renderer.html(view), subtype="html")
        # after: set_content drops Content-*
        message["Content-Language"] = CONTENT_LANGUAGE[view.language]
        return Prepared(notices, message, 0)

    def report(self, report: ReportView, now: datetime) -> Prepared:
        """The tables in HTML (and text), the groups as a CSV attachment."""
        options = self.spec.options
        message = EmailMessage()
        message["Subject"] = report.title
        message["From"] = reveal(options["from"])
        message["To"] = ", ".join(options["to"])
        message["Date"] = format_datetime(now)
        message["Message-ID"] = make_msgid(domain="slawatch.local")
        message["X-Slawatch-Receiver"] = self.receiver.name
        message["X-Slawatch-Report"] = report.name
        message["Auto-Submitted"] = "auto-generated"
        message.set_content(self.renderer.report_text(report))
        message.add_alternative(self.renderer.report_html(report), subtype="html")
        message.add_attachment(
            to_csv(report.groups), maintype="text", subtype="csv", filename=report.csv_name
        )
        message["Content-Language"] = CONTENT_LANGUAGE[report.language]
        return Prepared([], message, 0)

    async def deliver(self, prepared: Prepared) -> DeliveryResult:
        options = self.spec.options
        security = options.get("security", "starttls")
        message: EmailMessage = prepared.payload
        if prepared.message_id:
            message.replace_header("Message-ID", f"<{prepared.message_id}@slawatch.local>")
        try:
            errors, _ = await aiosmtplib.send(
                message,
                hostname=reveal(options["host"]),
                port=options.get("port", DEFAULT_PORTS[security]),
                username=reveal(options.get("username")),
                password=reveal(options.get("password")),
                use_tls=security == "tls",
                start_tls=True if security == "starttls" else False,
                validate_certs=options.get("validate_certs", True),
                cert_bundle=reveal(options.get("ca_file")),
                timeout=self.spec.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            if codes and all(400 <= c < 500 for c in codes):
                return DeliveryResult.retryable(f"SMTP recipients refused for now ({codes})")
            return DeliveryResult.permanent(f"SMTP recipients refused ({codes})")
        except aiosmtplib.SMTPResponseException as exc:
            return _smtp_result(exc.code, exc.message, type(exc).__name__)
        except aiosmtplib.SMTPNotSupported as exc:
            return DeliveryResult.permanent(f"SMTP server does not support it: {short(str(exc))}")
        except (aiosmtplib.SMTPTimeoutError, TimeoutError) as exc:
            return DeliveryResult.retryable(f"SMTP timeout ({type(exc).__name__})")
        except aiosmtplib.SMTPException as exc:
            if "starttls" in str(exc).lower():  # security: starttls, server cannot: never fall back
                return DeliveryResult.permanent(
                    f"SMTP server does not offer STARTTLS: {short(str(exc))}"
                )
            return DeliveryResult.retryable(f"SMTP error ({type(exc).__name__}): {short(str(exc))}")
        except OSError as exc:
            return DeliveryResult.retryable(f"SMTP connection error ({type(exc).__name__})")
        if errors:
            # Some recipients refused, others accepted: delivered, but say who failed.
            refused = sorted(errors)
            return (
                DeliveryResult.ok()
                if len(refused) < len(options["to"])
                else DeliveryResult.permanent(f"SMTP refused every recipient ({len(refused)})")
            )
        return DeliveryResult.ok()
