"""Remembered bearer tokens: served from memory, but never past their expiry and never when forged."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from incentives.tokens import RememberedTokens
from servicekit.auth import InvalidToken, StaticKeySource, TokenVerifier
from servicekit.devidp import DevIdentityProvider, demo_user, load_or_create_key, public_pem


def verifier_and_idp(tmp_path: Path) -> tuple[RememberedTokens, DevIdentityProvider]:
    idp = DevIdentityProvider(tmp_path / "devidp", issuer="cityblocks-dev", audience="cityblocks")
    keys = StaticKeySource(public_pem(load_or_create_key(tmp_path / "devidp")))
    inner = TokenVerifier(keys, issuer="cityblocks-dev", audience="cityblocks", leeway_s=0)
    return RememberedTokens(inner, ttl_s=60), idp


async def test_a_remembered_token_is_refused_once_it_expires(tmp_path: Path) -> None:
    verifier, idp = verifier_and_idp(tmp_path)
    token = idp.issue(demo_user("geel.merchant"), ttl_s=1)
    assert (await verifier.verify(token)).tenant == "13008"
    assert (await verifier.verify(token)).tenant == "13008"
    await asyncio.sleep(1.2)
    with pytest.raises(InvalidToken, match="expired"):
        await verifier.verify(token)


async def test_a_forged_token_is_refused_every_time(tmp_path: Path) -> None:
    verifier, idp = verifier_and_idp(tmp_path)
    other = DevIdentityProvider(tmp_path / "other", issuer="cityblocks-dev", audience="cityblocks")
    genuine = idp.issue(demo_user("geel.merchant"), ttl_s=60)
    await verifier.verify(genuine)
    for _ in range(2):
        with pytest.raises(InvalidToken):
            await verifier.verify(other.issue(demo_user("geel.merchant"), ttl_s=60))
    header, payload, signature = genuine.split(".")
    with pytest.raises(InvalidToken):
        await verifier.verify(f"{header}.{payload}.{signature[::-1]}")
