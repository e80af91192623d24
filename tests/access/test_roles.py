"""Roles and keys (shared/auth.py): parsing, the role ladder, and the 401/403 decision."""

from __future__ import annotations

import hashlib

import pytest
from fastapi import HTTPException

from slawatch.shared.auth import (
    DEV_TOKEN,
    PEOPLE_ROLES,
    Access,
    ApiKeyFormatError,
    ApiKeys,
    access_from,
    grants,
)
from slawatch.shared.settings import CommonSettings, SettingsError


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def test_three_part_keys_carry_their_role_and_two_part_keys_the_default() -> None:
    keys = ApiKeys.parse(f"vera:viewer:{digest('v')},crm:{digest('c')}", "ingest")
    vera, crm = keys.find("v"), keys.find("c")
    ops = ApiKeys.parse(f"ops:{digest('o')}", "operator").find("o")
    assert vera is not None and vera.role == "viewer" and vera.name == "vera"
    assert crm is not None and crm.role == "ingest" and keys.identify("c") == "crm"
    assert ops is not None and ops.role == "operator"
    assert keys.find("nope") is None


def test_the_key_repr_never_shows_the_digest() -> None:
    keys = ApiKeys.parse(f"vera:viewer:{digest('v')}")
    assert digest("v") not in repr(keys) and digest("v")[:16] not in repr(keys)


@pytest.mark.parametrize(
    "spec",
    [
        "vera:superuser:" + "ab" * 32,
        "vera:viewer:extra:" + "ab" * 32,
        ":viewer:" + "ab" * 32,
        "vera:viewer:zz" + "ab" * 31,
        "vera:viewer:" + "ab" * 31,
    ],
)
def test_malformed_role_keys_are_refused_without_echoing_digests(spec: str) -> None:
    with pytest.raises(ApiKeyFormatError) as info:
        ApiKeys.parse(spec)
    assert "ab" * 8 not in str(info.value)


def test_a_role_not_used_by_a_setting_is_refused() -> None:
    with pytest.raises(ApiKeyFormatError, match="role ingest is not used here"):
        ApiKeys.parse("crm:ingest:" + "ab" * 32, "viewer", PEOPLE_ROLES)


@pytest.mark.parametrize(
    ("have", "need", "allowed"),
    [
        ("viewer", "viewer", True),
        ("viewer", "operator", False),
        ("viewer", "admin", False),
        ("operator", "viewer", True),
        ("operator", "operator", True),
        ("operator", "admin", False),
        ("admin", "viewer", True),
        ("admin", "operator", True),
        ("admin", "admin", True),
        ("ingest", "viewer", False),
        ("ingest", "ingest", True),
        ("admin", "ingest", False),
        ("viewer", "ingest", False),
    ],
)
def test_role_ladder(have: str, need: str, allowed: bool) -> None:
    assert grants(have, need) is allowed


def test_access_answers_401_without_a_valid_key_and_403_for_a_small_role() -> None:
    access = Access(ApiKeys.parse(f"vera:viewer:{digest('v')},ada:admin:{digest('a')}"))
    assert access.check("v", "viewer").name == "vera"
    assert access.check("a", "operator").name == "ada"
    for token in (None, "", "wrong"):
        with pytest.raises(HTTPException) as info:
            access.check(token or None, "viewer")
        assert info.value.status_code == 401
        assert info.value.headers == {"WWW-Authenticate": "Bearer"}
    with pytest.raises(HTTPException) as info:
        access.check("v", "operator")
    assert info.value.status_code == 403 and "operator" in info.value.detail
    assert "v" not in info.value.detail.replace("viewer", "").replace("vera", "")


def test_dev_opens_reads_only_and_the_dev_token_is_admin() -> None:
    access = access_from(CommonSettings(env="dev"))
    assert access.check(None, "viewer").anonymous
    with pytest.raises(HTTPException) as info:
        access.check(None, "operator")
    assert info.value.status_code == 401
    assert access.check(DEV_TOKEN, "admin").name == "dev"


def test_prod_without_keys_lets_nobody_in() -> None:
    access = access_from(CommonSettings(env="prod"))
    for need in ("viewer", "operator"):
        with pytest.raises(HTTPException) as info:
            access.check(DEV_TOKEN, need)
        assert info.value.status_code == 401


def test_bad_api_keys_setting_stops_with_the_variable_named(capsys) -> None:
    with pytest.raises(SettingsError):
        access_from(CommonSettings(api_keys="vera:viewer:" + "ab" * 31))
    err = capsys.readouterr().err
    assert "SLAWATCH_API_KEYS" in err and "ab" * 8 not in err


def test_extra_service_keys_are_added() -> None:
    ops = ApiKeys.parse(f"ops:{digest('o')}", "operator")
    access = access_from(CommonSettings(api_keys=f"vera:viewer:{digest('v')}"), ops)
    assert access.check("o", "operator").name == "ops"
    assert access.check("v", "viewer").name == "vera"


def test_ingest_keys_must_be_ingest_keys() -> None:
    from tests.test_settings import run_cli

    result = run_cli(
        "ingest",
        SLAWATCH_KAFKA_BOOTSTRAP="127.0.0.1:1",
        SLAWATCH_INGEST_API_KEYS="bob:viewer:" + "ab" * 32,
    )
    assert result.returncode == 2
    assert "SLAWATCH_INGEST_API_KEYS" in result.stderr and "role viewer" in result.stderr
    assert "ab" * 8 not in result.stderr
