"""Bearer-token authentication: channel systems posting to ingest, people making silences.

Keys are configured as SHA-256 digests (``name:sha256hex``) so the service never holds the
tokens themselves; a presented token is hashed and compared against every digest in
constant time, and only the key's *name* is ever logged or used as a metric label.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass

from shared.settings import bad_setting

DEV_TOKEN = "slawatch-dev-token"
DEV_KEY_NAME = "dev"


class ApiKeyFormatError(ValueError):
    pass


@dataclass(frozen=True)
class ApiKeys:
    digests: tuple[tuple[str, bytes], ...]

    @classmethod
    def parse(cls, spec: str) -> ApiKeys:
        """Parse ``name:sha256hex[,name:sha256hex...]``; the error never echoes a digest."""
        entries: list[tuple[str, bytes]] = []
        for position, item in enumerate(
            filter(None, (p.strip() for p in spec.split(","))), start=1
        ):
            name, sep, digest = item.partition(":")
            if not sep or not name:
                raise ApiKeyFormatError(f"entry {position}: expected name:sha256hex")
            try:
                raw = bytes.fromhex(digest)
            except ValueError:
                raise ApiKeyFormatError(f"entry {position} ({name}): digest is not hex") from None
            if len(raw) != 32:
                raise ApiKeyFormatError(
                    f"entry {position} ({name}): digest must be 64 hex characters (SHA-256)"
                )
            entries.append((name, raw))
        if not entries:
            raise ApiKeyFormatError("no keys given")
        return cls(tuple(entries))

    @classmethod
    def dev(cls) -> ApiKeys:
        return cls(((DEV_KEY_NAME, hashlib.sha256(DEV_TOKEN.encode()).digest()),))

    def identify(self, token: str) -> str | None:
        """The name of the key matching ``token``, or None.

        Every digest is compared (no early exit), so timing does not reveal which entry,
        if any, came close.
        """
        presented = hashlib.sha256(token.encode()).digest()
        found: str | None = None
        for name, digest in self.digests:
            if hmac.compare_digest(presented, digest) and found is None:
                found = name
        return found


def bearer_token(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def api_keys_setting(spec: str | None, variable: str, *, dev: bool) -> ApiKeys | None:
    """Keys from a ``name:sha256hex`` setting; the dev token when unset and ``dev``; else None.

    A malformed value stops the process (exit 2) with one line naming the variable.
    """
    if spec:
        try:
            return ApiKeys.parse(spec)
        except ApiKeyFormatError as exc:
            raise bad_setting(variable, str(exc)) from None
    if dev:
        logging.getLogger("slawatch.auth").warning(
            "%s is unset: accepting the dev token %r (env=dev only)", variable, DEV_TOKEN
        )
        return ApiKeys.dev()
    return None
