"""Signature checks shared by the adapters: HMACs compared in constant time, replay windows.

No message here ever contains the secret or the expected signature: a 401's reason says
which check failed, never what would have passed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from datetime import datetime, timedelta

from slawatch.services.ingest.sources.base import Delivery, Settings, Unauthorized


def need_secret(settings: Settings, variable: str) -> str:
    if not settings.secret:
        raise Unauthorized(f"this source is not configured ({variable} is unset)")
    return settings.secret


def header(delivery: Delivery, name: str) -> str:
    value = delivery.header(name)
    if not value:
        raise Unauthorized(f"missing {name} header")
    return value.strip()


def hmac_digest(secret: str, message: bytes, algorithm: str) -> bytes:
    return hmac.new(secret.encode(), message, getattr(hashlib, algorithm)).digest()


def same(given: bytes, expected: bytes) -> bool:
    return hmac.compare_digest(given, expected)


def check_prefixed_hex(value: str, prefix: str, expected: bytes, name: str) -> None:
    """``sha256=<hex>`` style headers (Jira, Zammad, Chatwoot)."""
    if not value.startswith(prefix):
        raise Unauthorized(f"{name} must start with {prefix!r}")
    try:
        given = bytes.fromhex(value[len(prefix) :])
    except ValueError:
        raise Unauthorized(f"{name} is not hexadecimal") from None
    if not same(given, expected):
        raise Unauthorized(f"{name} does not match the body")


def check_base64(value: str, expected: bytes, name: str) -> None:
    try:
        given = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise Unauthorized(f"{name} is not base64") from None
    if not same(given, expected):
        raise Unauthorized(f"{name} does not match the body")


def check_fresh(moment: datetime, now: datetime, window_s: int, name: str) -> None:
    if abs(now - moment) > timedelta(seconds=window_s):
        raise Unauthorized(f"{name} is outside the replay window ({window_s} s)")
