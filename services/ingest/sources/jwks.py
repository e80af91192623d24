"""RS256 JSON Web Tokens checked against a JSON Web Key Set fetched over HTTP (Zoho Desk).

Why by hand: verifying RS256 is RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518 §3.3), whose
verification is one modular exponentiation and a byte comparison with the encoding we
expect (RFC 8017 §8.2.2: encode, then compare; no parsing of the decrypted block, which is
what keeps it safe from signature-forgery bugs). That is smaller than a new compiled
dependency for one header; `cryptography` is not among slawatch's dependencies.

Keys are cached for an hour; an unknown ``kid`` refetches the set, at most once a minute
(Zoho gives a webhook 5 s to answer, so a key rotation costs one fetch, not one per request).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from services.ingest.sources.base import Unauthorized, Unavailable

# DER prefix of DigestInfo for SHA-256 (RFC 8017 §9.2, note 1).
_SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")
MIN_MODULUS_BITS = 2048
MAX_TOKEN_BYTES = 8192


def b64url(segment: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise Unauthorized("JWT segment is not base64url") from None


def rsa_sha256_verify(n: int, e: int, message: bytes, signature: bytes) -> bool:
    """RSASSA-PKCS1-v1_5-VERIFY with SHA-256 (RFC 8017 §8.2.2)."""
    k = (n.bit_length() + 7) // 8
    if len(signature) != k:
        return False
    s = int.from_bytes(signature, "big")
    if s >= n:
        return False
    encoded = pow(s, e, n).to_bytes(k, "big")
    t = _SHA256_DIGEST_INFO + hashlib.sha256(message).digest()
    if k < len(t) + 11:
        return False
    expected = b"\x00\x01" + b"\xff" * (k - len(t) - 3) + b"\x00" + t
    return hmac.compare_digest(encoded, expected)


@dataclass(frozen=True)
class RsaKey:
    n: int
    e: int


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
            key = RsaKey(int.from_bytes(b64url(n), "big"), int.from_bytes(b64url(e), "big"))
        except Unauthorized:
            continue
        if key.n.bit_length() >= MIN_MODULUS_BITS and key.e >= 3 and key.e % 2 == 1:
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
    if not rsa_sha256_verify(key.n, key.e, signed, b64url(parts[2])):
        raise Unauthorized("JWT signature does not verify")
    return claims
