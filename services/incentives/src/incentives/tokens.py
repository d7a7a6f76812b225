"""Verified bearer tokens remembered for a minute: a shop's scanner sends the same token with every scan.

RS256 verification costs about half a millisecond a request (a sixth of a redemption's CPU). A remembered
token still expires on time (its `exp`, with the verifier's leeway), and no longer than `ttl_s` after it was
verified, so a key withdrawn from the identity provider's set stops working as soon as without memory
(the key set itself is cached for minutes).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any

from servicekit.auth import Principal, TokenVerifier


class RememberedTokens:
    """A `TokenVerifier` keeping the principal of each verified token (bounded, least recently used out)."""

    def __init__(self, inner: TokenVerifier, *, ttl_s: float = 60.0, size: int = 10_000) -> None:
        self.inner = inner
        self.ttl_s = ttl_s
        self.size = size
        self._known: OrderedDict[str, tuple[Principal, float]] = OrderedDict()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)  # issuer, audience, keys: as the verifier has them

    async def verify(self, token: str) -> Principal:
        now = time.time()
        hit = self._known.pop(token, None)
        if hit is not None and now < hit[1]:
            self._known[token] = hit  # most recently used last
            return hit[0]
        principal = await self.inner.verify(
            token
        )  # a stale entry is verified afresh (and refused if expired)
        self._known[token] = principal, min(now + self.ttl_s, _expiry(principal, self.inner.leeway_s))
        if len(self._known) > self.size:
            self._known.popitem(last=False)
        return principal


def _expiry(principal: Principal, leeway_s: float) -> float:
    return float(principal.claims["exp"]) + leeway_s
