"""RS256 JSON Web Tokens checked against a JSON Web Key Set fetched over HTTP (Zoho Desk).

RS256 is RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518 §3.3). The check itself is
`cryptography`'s (OpenSSL underneath): a vetted implementation beats hand-written RSA, and
is about ten times faster than Python's pow(). Each key's public-key object is built once,
when the key set is fetched, and kept beside its n and e.

Keys are cached for an hour; an unknown ``kid`` refetches the set, at most once a minute
(Zoho gives a webhook 5 s to answer, so a key rotation costs one fetch, not one per request).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey, RSAPublicNumbers

from slawatch.services.ingest.sources.base import Unauthorized, Unavailable

MIN_MODULUS_BITS = 2048
MAX_TOKEN_BYTES = 8192


def b64url(segment: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise Unauthorized("JWT segment is not base64url") from None


@dataclass(frozen=True)
class RsaKey:
    """One signing key of the set: its numbers, and the public key built from them once."""

    n: int
    e: int
    public_key: RSAPublicKey = field(repr=False, compare=False)

    @classmethod
    def build(cls, n: int, e: int) -> RsaKey | None:
        """The key, or None if it is too short (< 2048 bits) or not a valid RSA key."""
        if n.bit_length() < MIN_MODULUS_BITS or e < 3 or e % 2 == 0:
            return None
        try:
            return cls(n, e, RSAPublicNumbers(e, n).public_key())
        except ValueError:
            return None

    def verifies(self, message: bytes, signature: bytes) -> bool:
        """RSASSA-PKCS1-v1_5-VERIFY with SHA-256 (RFC 8017 §8.2.2)."""
        try:
            self.public_key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return False
        return True


def parse_jwks(document: Any) -> dict[str, RsaKey]:
    """The RSA signing keys of a key set, by ``kid``; others (EC, encryption keys) skipped."""
    keys: dict[str, RsaKey] = {}
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise Unavailable("the key set has no `keys` list")
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("kty") != "RSA":
            continue
        if entry.get("use", "sig") != "sig" or entry.get("alg", "RS256") != "RS256":
            continue
        kid, n, e = entry.get("kid"), entry.get("n"), entry.get("e")
        if not isinstance(kid, str) or not isinstance(n, str) or not isinstance(e, str):
            continue
        try:
            key = RsaKey.build(int.from_bytes(b64url(n), "big"), int.from_bytes(b64url(e), "big"))
        except Unauthorized:
            continue
        if key is not None:
            keys[kid] = key
    return keys


@dataclass
class KeySet:
    """A remote key set with the caching rules above."""

    url: str
    max_age_s: float = 3600.0
    refetch_after_s: float = 60.0
    timeout_s: float = 2.0
    _keys: dict[str, RsaKey] = field(default_factory=dict)
    _fetched: float = float("-inf")
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def key(self, kid: str) -> RsaKey:
        now = time.monotonic()
        if kid in self._keys and now - self._fetched < self.max_age_s:
            return self._keys[kid]
        async with self._lock:
            if kid not in self._keys or time.monotonic() - self._fetched >= self.max_age_s:
                if time.monotonic() - self._fetched >= self.refetch_after_s or not self._keys:
                    await self._fetch()
        if kid not in self._keys:
            raise Unauthorized("JWT signed by a key that is not in the key set")
        return self._keys[kid]

    async def _fetch(self) -> None:
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                response = await client.get(self.url)
            response.raise_for_status()
            keys = parse_jwks(response.json())
        except (httpx.HTTPError, ValueError) as exc:
            raise Unavailable(f"key set unreachable: {type(exc).__name__}") from None
        self._keys, self._fetched = keys, time.monotonic()


async def verify_rs256(token: str, keys: KeySet) -> dict[str, Any]:
    """The claims of a valid RS256 token; Unauthorized on any defect (signature only: the
    caller checks the claims it cares about)."""
    if len(token) > MAX_TOKEN_BYTES:
        raise Unauthorized("JWT too long")
    parts = token.split(".")
    if len(parts) != 3:
        raise Unauthorized("not a JWT (expected three dot-separated parts)")
    try:
        header = json.loads(b64url(parts[0]))
        claims = json.loads(b64url(parts[1]))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise Unauthorized("JWT header or claims are not JSON") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise Unauthorized("JWT header or claims are not JSON objects")
    if header.get("alg") != "RS256":
        raise Unauthorized("JWT algorithm must be RS256")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid or len(kid) > 256:
        raise Unauthorized("JWT has no key id (kid)")
    key = await keys.key(kid)
    signed = f"{parts[0]}.{parts[1]}".encode()
    if not key.verifies(signed, b64url(parts[2])):
        raise Unauthorized("JWT signature does not verify")
    return claims
