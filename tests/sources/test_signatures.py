"""Each system's own signature scheme: valid passes; wrong secret, tampered body, stale
timestamp and missing header are refused (401 at the route), and no reason shows the secret."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest

from slawatch.services.ingest.sources import ADAPTERS
from slawatch.services.ingest.sources.base import Settings, Unauthorized
from slawatch.services.ingest.sources.jwks import KeySet, RsaKey, parse_jwks
from slawatch.services.ingest.sources.pipeline import delivery
from tests.sources import payloads
from tests.sources.payloads import SECRET, ZOHO_ORG
from tests.sources.rsa import TestKey, jwks_server

NOW = datetime.now(UTC).replace(microsecond=0)
BODY = b'{"ticket": {"id": "1"}}'
HMAC_SIGNERS = {
    "zendesk": payloads.zendesk_sign,
    "jira": payloads.jira_sign,
    "zammad": payloads.zammad_sign,
    "chatwoot": payloads.chatwoot_sign,
    "freshdesk": payloads.freshdesk_sign,
}
STAMPED = {"zendesk": "X-Zendesk-Webhook-Signature-Timestamp", "chatwoot": "X-Chatwoot-Timestamp"}
REQUIRED = {
    "zendesk": ["X-Zendesk-Webhook-Signature", "X-Zendesk-Webhook-Signature-Timestamp"],
    "jira": ["X-Hub-Signature"],
    "zammad": ["X-Hub-Signature"],
    "chatwoot": ["X-Chatwoot-Signature", "X-Chatwoot-Timestamp"],
    "freshdesk": ["Authorization"],
}


async def check(
    system: str,
    headers: dict[str, str],
    body: bytes = BODY,
    secret: str | None = SECRET,
    now: datetime = NOW,
    extra: dict | None = None,
) -> None:
    settings = Settings(secret, 300, extra or {})
    await ADAPTERS[system].verify(delivery(system, headers, body, now), settings)


@pytest.mark.parametrize("system", sorted(HMAC_SIGNERS))
async def test_valid_signature_passes(system: str) -> None:
    await check(system, HMAC_SIGNERS[system](BODY, SECRET, NOW))


@pytest.mark.parametrize("system", sorted(HMAC_SIGNERS))
async def test_wrong_secret_is_refused(system: str) -> None:
    with pytest.raises(Unauthorized) as refused:
        await check(system, HMAC_SIGNERS[system](BODY, "another-secret", NOW))
    assert SECRET not in str(refused.value)


@pytest.mark.parametrize("system", sorted(set(HMAC_SIGNERS) - {"freshdesk"}))
async def test_tampered_body_is_refused(system: str) -> None:
    headers = HMAC_SIGNERS[system](BODY, SECRET, NOW)
    with pytest.raises(Unauthorized, match="does not match"):
        await check(system, headers, BODY.replace(b'"1"', b'"2"'))


@pytest.mark.parametrize("system", sorted(STAMPED))
async def test_stale_timestamp_is_refused(system: str) -> None:
    headers = HMAC_SIGNERS[system](BODY, SECRET, NOW - timedelta(minutes=6))
    with pytest.raises(Unauthorized, match="replay window"):
        await check(system, headers)
    # ...and from the future alike; within the window it passes.
    with pytest.raises(Unauthorized, match="replay window"):
        await check(system, HMAC_SIGNERS[system](BODY, SECRET, NOW + timedelta(minutes=6)))
    await check(system, HMAC_SIGNERS[system](BODY, SECRET, NOW - timedelta(minutes=4)))


@pytest.mark.parametrize(
    ("system", "name"), [(s, n) for s, names in REQUIRED.items() for n in names]
)
async def test_missing_header_is_refused(system: str, name: str) -> None:
    headers = {k: v for k, v in HMAC_SIGNERS[system](BODY, SECRET, NOW).items() if k != name}
    with pytest.raises(Unauthorized):
        await check(system, headers)


@pytest.mark.parametrize("system", sorted(HMAC_SIGNERS))
async def test_unconfigured_source_refuses_everything(system: str) -> None:
    with pytest.raises(Unauthorized, match="not configured"):
        await check(system, HMAC_SIGNERS[system](BODY, SECRET, NOW), secret=None)


async def test_freshdesk_token_header_and_basic_auth_forms() -> None:
    await check("freshdesk", {"X-Slawatch-Token": SECRET})
    with pytest.raises(Unauthorized):
        await check("freshdesk", {"X-Slawatch-Token": SECRET + "x"})
    bad = base64.b64encode(b"no-colon").decode()
    with pytest.raises(Unauthorized):
        await check("freshdesk", {"Authorization": f"Basic {bad}"})
    with pytest.raises(Unauthorized):
        await check("freshdesk", {"Authorization": f"Bearer {SECRET}"})


@pytest.mark.parametrize(
    "value", ["sha1=" + "0" * 40, "sha256=zz", "sha256=" + "0" * 64, "", "sha256="]
)
async def test_malformed_hub_signatures_are_refused(value: str) -> None:
    with pytest.raises(Unauthorized):
        await check("jira", {"X-Hub-Signature": value})


# ------------------------------------------------------------------ Zoho Desk (RS256 JWT)


def zoho(url: str, org: str | None = ZOHO_ORG, webhook: str | None = "77") -> dict:
    return {"org_id": org, "webhook_id": webhook, "jwks_url": url}


async def test_zoho_valid_token_from_the_served_key_set(zoho_key: TestKey, zoho_jwks) -> None:
    url, _hits = zoho_jwks
    await check("zoho-desk", payloads.zoho_sign(zoho_key, NOW), b"[]", extra=zoho(url))


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"iss": "orgId:999"}, "issuer"),
        ({"aud": "webhookId:78"}, "audience"),
        ({"exp": int(NOW.timestamp()) - 60}, "expired"),
        ({"iat": int(NOW.timestamp()) - 3600, "exp": int(NOW.timestamp()) + 60}, "replay window"),
        ({"exp": None}, "expiry"),
    ],
)
async def test_zoho_claims_are_checked(
    zoho_key: TestKey, zoho_jwks, claims: dict, reason: str
) -> None:
    url, _ = zoho_jwks
    with pytest.raises(Unauthorized, match=reason):
        await check(
            "zoho-desk", payloads.zoho_sign(zoho_key, NOW, **claims), b"[]", extra=zoho(url)
        )


async def test_zoho_wrong_key_tampered_token_and_missing_header(
    zoho_key: TestKey, zoho_jwks
) -> None:
    url, _ = zoho_jwks
    stranger = TestKey.make(kid=zoho_key.kid)  # same kid, another key: the signature fails
    with pytest.raises(Unauthorized, match="signature"):
        await check("zoho-desk", payloads.zoho_sign(stranger, NOW), b"[]", extra=zoho(url))
    token = payloads.zoho_sign(zoho_key, NOW)["X-ZDesk-JWT"]
    head, claims, signature = token.split(".")
    forged = payloads.zoho_sign(zoho_key, NOW, iss="orgId:999")["X-ZDesk-JWT"].split(".")[1]
    with pytest.raises(Unauthorized, match="signature"):
        await check(
            "zoho-desk", {"X-ZDesk-JWT": f"{head}.{forged}.{signature}"}, b"[]", extra=zoho(url)
        )
    with pytest.raises(Unauthorized, match="missing"):
        await check("zoho-desk", {}, b"[]", extra=zoho(url))
    with pytest.raises(Unauthorized, match="RS256"):
        await check(
            "zoho-desk",
            {"X-ZDesk-JWT": zoho_key.token({}, {"alg": "HS256"})},
            b"[]",
            extra=zoho(url),
        )
    with pytest.raises(Unauthorized, match="not configured"):
        await check(
            "zoho-desk", payloads.zoho_sign(zoho_key, NOW), b"[]", extra=zoho(url, org=None)
        )
    with pytest.raises(Unauthorized, match="not in the key set"):
        await check(
            "zoho-desk", payloads.zoho_sign(TestKey.make(kid="other"), NOW), b"[]", extra=zoho(url)
        )


async def test_zoho_key_set_is_cached_and_refetched_for_a_new_key(zoho_key: TestKey) -> None:
    with jwks_server(zoho_key) as (url, hits):
        keys = KeySet(url, refetch_after_s=0)
        for _ in range(3):
            await keys.key(zoho_key.kid)
        assert len(hits) == 1
        with pytest.raises(Unauthorized):
            await keys.key("rotated")
        assert len(hits) == 2


def test_rsa_verify_refuses_short_keys_and_bad_lengths(zoho_key: TestKey) -> None:
    signature = zoho_key.sign(b"m")
    key = RsaKey.build(zoho_key.n, zoho_key.e)
    assert key is not None
    assert key.verifies(b"m", signature)
    assert not key.verifies(b"n", signature)
    assert not key.verifies(b"m", signature[1:])
    assert not key.verifies(b"m", b"\x00" + signature)
    assert not key.verifies(b"m", b"\xff" * len(signature))
    assert not key.verifies(b"m", b"")
    short = TestKey.make(bits=1024)
    assert RsaKey.build(short.n, short.e) is None
    assert parse_jwks({"keys": [short.jwk()]}) == {}
    assert RsaKey.build(zoho_key.n, 2) is None
    assert RsaKey.build(zoho_key.n, 1) is None
    assert list(parse_jwks({"keys": [zoho_key.jwk(), {"kty": "EC"}]})) == [zoho_key.kid]
