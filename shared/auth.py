"""Bearer-token authentication and roles, for every slawatch HTTP API and the console.

Keys are configured as SHA-256 digests so a service never holds the tokens themselves:
``name:role:sha256hex`` (or ``name:sha256hex``, which takes the setting's default role -
the ingest keys of before roles existed stay valid that way). A presented token is hashed
and compared against every digest in constant time, and only the key's *name* is ever
logged, shown or used as a metric label.

Roles: ``viewer`` < ``operator`` < ``admin`` (each can do what the one before can), and
``ingest`` apart, for channel systems posting events (it grants no reads). Read endpoints
need ``viewer``, silences and acknowledgements ``operator``; ``/healthz``, ``/readyz`` and
``/metrics`` stay open. With ``SLAWATCH_ENV=dev`` read endpoints answer without a key.
A route declares what it needs with ``dependencies=[Depends(require_role("viewer"))]``
(or takes the :class:`Principal` as a parameter); the app carries its :class:`Access` in
``app.state.access``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from slawatch.shared.settings import CommonSettings, bad_setting

DEV_TOKEN = "slawatch-dev-token"
DEV_KEY_NAME = "dev"

Role = Literal["ingest", "viewer", "operator", "admin"]
ROLES: tuple[Role, ...] = ("ingest", "viewer", "operator", "admin")
# The people's roles, weakest first; `ingest` is not on this ladder.
LADDER: tuple[Role, ...] = ("viewer", "operator", "admin")
PEOPLE_ROLES = frozenset(LADDER)

log = logging.getLogger("slawatch.auth")


class ApiKeyFormatError(ValueError):
    pass


def grants(have: str, need: str) -> bool:
    """Whether a key of role ``have`` may do what needs ``need``."""
    if need == "ingest" or have == "ingest":
        return have == need
    return LADDER.index(have) >= LADDER.index(need)  # type: ignore[arg-type]


@dataclass(frozen=True)
class ApiKey:
    name: str
    role: Role
    digest: bytes

    def __repr__(self) -> str:  # never show the digest
        return f"ApiKey({self.name!r}, {self.role!r})"


@dataclass(frozen=True)
class Principal:
    """Who made a request: the key's name and role (never the token)."""

    name: str
    role: Role
    anonymous: bool = False

    def can(self, need: str) -> bool:
        return grants(self.role, need)


@dataclass(frozen=True)
class ApiKeys:
    keys: tuple[ApiKey, ...]

    @classmethod
    def parse(
        cls,
        spec: str,
        default_role: Role = "ingest",
        allowed: frozenset[str] = frozenset(ROLES),
    ) -> ApiKeys:
        """Parse ``name[:role]:sha256hex[,...]``; the error never echoes a digest."""
        entries: list[ApiKey] = []
        for position, item in enumerate(
            filter(None, (p.strip() for p in spec.split(","))), start=1
        ):
            parts = item.split(":")
            if len(parts) == 2:
                name, role, digest = parts[0], default_role, parts[1]
            elif len(parts) == 3:
                name, role, digest = parts  # type: ignore[assignment]
            else:
                raise ApiKeyFormatError(f"entry {position}: expected name:role:sha256hex")
            if not name:
                raise ApiKeyFormatError(f"entry {position}: the key has no name")
            if role not in ROLES:
                raise ApiKeyFormatError(
                    f"entry {position} ({name}): unknown role {role[:20]!r};"
                    f" expected one of {', '.join(ROLES)}"
                )
            if role not in allowed:
                raise ApiKeyFormatError(
                    f"entry {position} ({name}): role {role} is not used here;"
                    f" expected one of {', '.join(r for r in ROLES if r in allowed)}"
                )
            try:
                raw = bytes.fromhex(digest)
            except ValueError:
                raise ApiKeyFormatError(f"entry {position} ({name}): digest is not hex") from None
            if len(raw) != 32:
                raise ApiKeyFormatError(
                    f"entry {position} ({name}): digest must be 64 hex characters (SHA-256)"
                )
            entries.append(ApiKey(name, role, raw))
        if not entries:
            raise ApiKeyFormatError("no keys given")
        return cls(tuple(entries))

    @classmethod
    def dev(cls, role: Role = "ingest") -> ApiKeys:
        return cls((ApiKey(DEV_KEY_NAME, role, hashlib.sha256(DEV_TOKEN.encode()).digest()),))

    def __add__(self, other: ApiKeys) -> ApiKeys:
        return ApiKeys(self.keys + other.keys)

    @property
    def digests(self) -> tuple[tuple[str, bytes], ...]:
        return tuple((k.name, k.digest) for k in self.keys)

    def find(self, token: str) -> ApiKey | None:
        """The key matching ``token``, or None.

        Every digest is compared (no early exit), so timing does not reveal which entry,
        if any, came close.
        """
        presented = hashlib.sha256(token.encode()).digest()
        found: ApiKey | None = None
        for key in self.keys:
            if hmac.compare_digest(presented, key.digest) and found is None:
                found = key
        return found

    def identify(self, token: str) -> str | None:
        """The name of the key matching ``token``, or None."""
        key = self.find(token)
        return key.name if key else None


def bearer_token(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def api_keys_setting(
    spec: str | None,
    variable: str,
    *,
    dev: bool,
    default_role: Role = "ingest",
    allowed: frozenset[str] = frozenset(ROLES),
    dev_role: Role | None = None,
) -> ApiKeys | None:
    """Keys from a ``name[:role]:sha256hex`` setting; the dev token when unset and ``dev``;
    else None. A malformed value stops the process (exit 2) with one line naming the variable.
    """
    if spec:
        try:
            return ApiKeys.parse(spec, default_role, allowed)
        except ApiKeyFormatError as exc:
            raise bad_setting(variable, str(exc)) from None
    if dev:
        log.warning(
            "%s is unset: accepting the dev token %r (env=dev only)", variable, DEV_TOKEN
        )
        return ApiKeys.dev(dev_role or default_role)
    return None


# ---------------------------------------------------------------- HTTP access control


@dataclass(frozen=True)
class Access:
    """The keys an HTTP API accepts, and whether reads are open (``SLAWATCH_ENV=dev``)."""

    keys: ApiKeys | None
    open_reads: bool = False

    def authenticate(self, token: str | None) -> Principal | None:
        if not token or self.keys is None:
            return None
        key = self.keys.find(token)
        return Principal(key.name, key.role) if key else None

    def check(self, token: str | None, need: Role) -> Principal:
        """The principal allowed to do what needs ``need``; HTTP 401/403 otherwise."""
        principal = self.authenticate(token)
        if principal is None:
            if token is None and self.open_reads and need == "viewer":
                return Principal("anonymous", "viewer", anonymous=True)
            raise HTTPException(
                401,
                detail="missing or unknown bearer token",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not principal.can(need):
            raise HTTPException(
                403, detail=f"this needs the role {need}; key {principal.name!r} is {principal.role}"
            )
        return principal


def access_from(settings: CommonSettings, *extra: ApiKeys | None) -> Access:
    """The Access of a read API: ``SLAWATCH_API_KEYS`` plus any service-specific keys.

    With ``SLAWATCH_ENV=dev`` and no keys configured the dev token is an admin key.
    """
    keys = api_keys_setting(
        settings.api_keys,
        "SLAWATCH_API_KEYS",
        dev=False,
        default_role="viewer",
        allowed=PEOPLE_ROLES,
    )
    for more in extra:
        if more is not None:
            keys = more if keys is None else keys + more
    if keys is None and settings.is_dev:
        keys = ApiKeys.dev("admin")
    if keys is None:
        log.warning("SLAWATCH_API_KEYS is unset: every read endpoint answers 401")
    return Access(keys, open_reads=settings.is_dev)


# HTTPBearer only documents the scheme in OpenAPI (/docs gets an Authorize button);
# Access.check makes the decision.
bearer_scheme = HTTPBearer(auto_error=False, description="An API key: `Bearer <token>`.")


def require_role(need: Role) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A FastAPI dependency: the request's :class:`Principal`, or 401/403.

    The principal is also left on ``request.state.principal`` for audit log lines.
    """

    async def dependency(
        request: Request,
        _documented: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
    ) -> Principal:
        access: Access | None = getattr(request.app.state, "access", None)
        if access is None:  # fail closed: an app that forgot its Access lets nobody in
            log.error("no access control configured for %s", request.url.path)
            raise HTTPException(401, detail="access control is not configured")
        principal = access.check(bearer_token(request.headers.get("authorization")), need)
        request.state.principal = principal
        return principal

    dependency.__name__ = f"require_{need}"
    return dependency


# Route parameters that need a role and give the handler who is asking, e.g.
# ``async def create(body: SilenceIn, principal: OperatorKey)``.
ViewerKey = Annotated[Principal, Depends(require_role("viewer"))]
OperatorKey = Annotated[Principal, Depends(require_role("operator"))]
