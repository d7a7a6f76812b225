"""Rate limits per client address for the routes anyone can reach: public pages and the login."""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from servicekit.problems import problem_response

# Clients tracked at once; the least recently seen are forgotten first, so memory stays bounded under a flood.
MAX_CLIENTS = 10_000


@dataclass
class Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    """A token bucket per key: `per_minute` requests a minute on average, bursts up to `burst`."""

    def __init__(self, per_minute: int, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.clock = clock
        self.buckets: OrderedDict[str, Bucket] = OrderedDict()

    def take(self, key: str) -> float:
        """Take one token for `key`: 0 when allowed, else the seconds until a token is back."""
        now = self.clock()
        bucket = self.buckets.pop(key, None) or Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        self.buckets[key] = bucket
        if len(self.buckets) > MAX_CLIENTS:
            self.buckets.popitem(last=False)
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.rate


class RateLimitMiddleware:
    """429 problem+json with `Retry-After` when a client exceeds the limit on a limited path."""

    def __init__(
        self, app: ASGIApp, *, prefixes: Sequence[str], per_minute: int, burst: int | None = None
    ) -> None:
        self.app = app
        self.prefixes = tuple(prefixes)
        self.buckets = TokenBuckets(per_minute, burst if burst is not None else max(1, per_minute // 6))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._limited(scope):
            await self.app(scope, receive, send)
            return
        wait = self.buckets.take(self._client(scope))
        if wait == 0:
            await self.app(scope, receive, send)
            return
        retry_after = str(max(1, math.ceil(wait)))
        response = problem_response(
            429, detail="too many requests; try again later", headers={"Retry-After": retry_after}
        )
        await response(scope, receive, send)

    def _limited(self, scope: Scope) -> bool:
        path: str = scope.get("path", "")
        root: str = scope.get("root_path", "")
        local = path[len(root) :] if root and path.startswith(root) else path
        return local.startswith(self.prefixes)

    @staticmethod
    def _client(scope: Scope) -> str:
        # Behind the ingress uvicorn runs with --proxy-headers, so `client` is the caller, not the proxy.
        client = scope.get("client")
        return str(client[0]) if client else "unknown"
