"""A throwaway RSA key for tests (made at run time, never stored), and RS256 tokens signed
with it: Zoho Desk's X-ZDesk-JWT as its key set verifies it.

Keys are made and tokens signed (RSASSA-PKCS1-v1_5 with SHA-256) by `cryptography`, the
library the verifier in services/ingest/sources/jwks.py uses; a JWKS served from a real
HTTP server on 127.0.0.1 is the key set the adapter fetches.
"""

from __future__ import annotations

import base64
import json
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class TestKey:
    __test__ = False  # a key, not a test class
    kid: str
    private_key: rsa.RSAPrivateKey

    @classmethod
    def make(cls, bits: int = 2048, kid: str = "test-key-1") -> TestKey:
        return cls(kid, rsa.generate_private_key(public_exponent=65537, key_size=bits))

    @property
    def n(self) -> int:
        return self.private_key.public_key().public_numbers().n

    @property
    def e(self) -> int:
        return self.private_key.public_key().public_numbers().e

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
        return self.private_key.sign(message, padding.PKCS1v15(), hashes.SHA256())

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
