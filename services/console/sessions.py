"""Console sessions: a signed cookie naming the key that logged in, and CSRF tokens.

The cookie holds the key's *name* and role, an expiry and a random nonce, signed with
HMAC-SHA256 under ``SLAWATCH_CONSOLE_SESSION_SECRET`` (never the key itself). It is
HttpOnly, SameSite=Strict, and Secure behind HTTPS. Each request checks the signature,
the expiry and that a key of that name and role is still configured, so removing a key
and restarting ends its sessions. A form that changes state carries a CSRF token derived
from the session's nonce; without the right token the change is refused (403).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

from slawatch.shared.auth import LADDER, ApiKeys

COOKIE = "slawatch_session"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Session:
    name: str
    role: str
    expires: int
    nonce: str
    # cookie: logged in here; bearer: an API key on the request (no CSRF: not ambient);
    # proxy: an authenticating proxy named the user (SLAWATCH_CONSOLE_PROXY_USER_HEADER).
    kind: str = "cookie"

    def can(self, need: str) -> bool:
        return LADDER.index(self.role) >= LADDER.index(need)  # type: ignore[arg-type]


class Sessions:
    def __init__(self, secret: bytes, ttl_s: int, keys: ApiKeys | None) -> None:
        self.secret = secret
        self.ttl_s = ttl_s
        self.keys = keys

    def _sign(self, payload: bytes) -> str:
        return _b64(hmac.new(self.secret, b"session|" + payload, hashlib.sha256).digest())

    def issue(self, name: str, role: str, now: float | None = None) -> tuple[str, Session]:
        expires = int((now or time.time()) + self.ttl_s)
        session = Session(name, role, expires, secrets.token_urlsafe(16))
        payload = json.dumps(
            {"n": name, "r": role, "e": expires, "c": session.nonce}, separators=(",", ":")
        ).encode()
        return f"{_b64(payload)}.{self._sign(payload)}", session

    def read(self, cookie: str | None, now: float | None = None) -> Session | None:
        """The session a cookie carries, or None if absent, forged, expired or revoked."""
        if not cookie or len(cookie) > 4096 or "." not in cookie:
            return None
        body, _, signature = cookie.partition(".")
        try:
            payload = _unb64(body)
        except ValueError:
            return None
        if not hmac.compare_digest(self._sign(payload), signature):
            return None
        try:
            data = json.loads(payload)
            session = Session(str(data["n"]), str(data["r"]), int(data["e"]), str(data["c"]))
        except (ValueError, KeyError, TypeError):
            return None
        if session.expires <= (now or time.time()) or session.role not in LADDER:
            return None
        if self.keys is None or not any(
            k.name == session.name and k.role == session.role for k in self.keys.keys
        ):
            return None  # the key is no longer configured
        return session

    def csrf_token(self, session: Session) -> str:
        return _b64(
            hmac.new(self.secret, b"csrf|" + session.nonce.encode(), hashlib.sha256).digest()
        )

    def check_csrf(self, session: Session, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf_token(session), token or "")
