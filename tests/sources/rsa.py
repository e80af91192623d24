"""A throwaway RSA key for tests (made at run time, never stored), and RS256 tokens signed
with it: Zoho Desk's X-ZDesk-JWT as its key set verifies it.

Signing is RSASSA-PKCS1-v1_5 (RFC 8017 §8.2.1) by hand, the mirror of the verifier in
services/ingest/sources/jwks.py; a JWKS served from a real HTTP server on 127.0.0.1 is the
key set the adapter fetches.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")
_SMALL_PRIMES = [p for p in range(3, 2000, 2) if all(p % q for q in range(3, int(p**0.5) + 1, 2))]


def _probable_prime(n: int, rounds: int = 24) -> bool:
    if any(n % p == 0 for p in _SMALL_PRIMES):
        return n in _SMALL_PRIMES
    d, r = n - 1, 0
    while d % 2 == 0:
        d, r = d // 2, r + 1
    for _ in range(rounds):
        x = pow(secrets.randbelow(n - 3) + 2, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(r - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def _prime(bits: int) -> int:
    while True:
        candidate = secrets.randbits(bits) | (1 << (bits - 1)) | (1 << (bits - 2)) | 1
        if _probable_prime(candidate):
            return candidate


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class TestKey:
    __test__ = False  # a key, not a test class
    kid: str
    n: int
    e: int
    d: int

    @classmethod
    def make(cls, bits: int = 2048, kid: str = "test-key-1") -> TestKey:
        e = 65537
        while True:
            p, q = _prime(bits // 2), _prime(bits // 2)
            phi = (p - 1) * (q - 1)
            if p != q and phi % e and (p * q).bit_length() == bits:
                return cls(kid, p * q, e, pow(e, -1, phi))

    def jwk(self) -> dict[str, str]:
        size = (self.n.bit_length() + 7) // 8
        return {
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self.kid,
            "n": b64url(self.n.to_bytes(size, "big")),
            "e": b64url(self.e.to_bytes(3, "big")),
        }

    def sign(self, message: bytes) -> bytes:
        k = (self.n.bit_length() + 7) // 8
        t = _SHA256_DIGEST_INFO + hashlib.sha256(message).digest()
        encoded = b"\x00\x01" + b"\xff" * (k - len(t) - 3) + b"\x00" + t
        return pow(int.from_bytes(encoded, "big"), self.d, self.n).to_bytes(k, "big")

    def token(self, claims: dict[str, Any], header: dict[str, Any] | None = None) -> str:
        head = {"alg": "RS256", "typ": "JWT", "kid": self.kid, **(header or {})}
        signing = b64url(json.dumps(head).encode()) + "." + b64url(json.dumps(claims).encode())
        return signing + "." + b64url(self.sign(signing.encode()))


@contextmanager
def jwks_server(*keys: TestKey):
    """A real HTTP server on 127.0.0.1 serving ``{"keys": [...]}``; yields its URL and a list
    of the paths requested (to count fetches)."""
    body = json.dumps({"keys": [k.jwk() for k in keys]}).encode()
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/.well-known/jwks.json", hits
    finally:
        server.shutdown()
        server.server_close()
