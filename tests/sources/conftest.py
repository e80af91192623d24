"""Session-wide test key and JWKS server for Zoho Desk (made at run time)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.sources.rsa import TestKey, jwks_server


@pytest.fixture(scope="session")
def zoho_key() -> TestKey:
    return TestKey.make()


@pytest.fixture(scope="session")
def zoho_jwks(zoho_key: TestKey) -> Iterator[tuple[str, list[str]]]:
    with jwks_server(zoho_key) as served:
        yield served
