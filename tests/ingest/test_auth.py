"""API keys: digests only, constant-time matching, errors that never echo a secret."""

from __future__ import annotations

import hashlib

import pytest

from slawatch.shared.auth import DEV_TOKEN, ApiKeyFormatError, ApiKeys, bearer_token


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def test_identifies_the_key_by_name() -> None:
    keys = ApiKeys.parse(f"crm:{digest('a')}, chat:{digest('b')}")
    assert keys.identify("a") == "crm"
    assert keys.identify("b") == "chat"
    assert keys.identify("c") is None
    assert keys.identify("") is None


def test_dev_key_accepts_only_the_documented_token() -> None:
    assert ApiKeys.dev().identify(DEV_TOKEN) == "dev"
    assert ApiKeys.dev().identify("anything-else") is None


@pytest.mark.parametrize(
    "spec", ["", "crm", ":" + "ab" * 32, "crm:zz" + "ab" * 31, "crm:abcd", "crm:" + "ab" * 33]
)
def test_malformed_specs_are_refused_without_echoing_digests(spec: str) -> None:
    with pytest.raises(ApiKeyFormatError) as info:
        ApiKeys.parse(spec)
    assert "ab" * 8 not in str(info.value)


@pytest.mark.parametrize(
    ("header", "token"),
    [
        (None, None),
        ("", None),
        ("Bearer", None),
        ("Bearer   ", None),
        ("Basic x", None),
        ("Bearer t0k", "t0k"),
        ("bearer t0k ", "t0k"),
    ],
)
def test_bearer_parsing(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token
