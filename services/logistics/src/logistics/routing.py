"""Distance and travel-time matrices: haversine with a detour factor, or an OSRM `table` server when set."""

from __future__ import annotations

import asyncio
import logging
import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from logistics.domain import GeoPoint, SpeedProfile

log = logging.getLogger(__name__)

EARTH_RADIUS_M = 6_371_008.8
UNREACHABLE = 10**9


@dataclass(frozen=True)
class Matrix:
    """Square matrices over the same points: metres and seconds, rounded to integers."""

    distance_m: list[list[int]]
    duration_s: list[list[int]]

    def __len__(self) -> int:
        return len(self.distance_m)


class RoutingUnavailable(RuntimeError):
    """The road-network server did not answer usefully."""


def haversine_m(a: GeoPoint, b: GeoPoint) -> float:
    phi1, phi2 = math.radians(a.lat), math.radians(b.lat)
    dphi, dlmb = phi2 - phi1, math.radians(b.lon - a.lon)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def haversine_matrix(points: Sequence[GeoPoint], profile: SpeedProfile, detour_factor: float = 1.3) -> Matrix:
    """Great-circle distance times a detour factor; time at the profile's average speed."""
    metres_per_s = profile.speed_kmh / 3.6
    distance: list[list[int]] = []
    duration: list[list[int]] = []
    for a in points:
        row = [haversine_m(a, b) * detour_factor for b in points]
        distance.append([round(d) for d in row])
        duration.append([math.ceil(d / metres_per_s) for d in row])
    return Matrix(distance, duration)


class OsrmClient:
    """The OSRM `table` service; every call is bounded by `timeout_s`."""

    def __init__(
        self, base_url: str, timeout_s: float = 10.0, client: httpx.AsyncClient | None = None
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._timeout = httpx.Timeout(timeout_s)
        self._client = client

    async def table(self, points: Sequence[GeoPoint], profile: SpeedProfile) -> Matrix:
        coords = ";".join(f"{p.lon:.6f},{p.lat:.6f}" for p in points)
        url = f"{self._base_url}/table/v1/{profile.osrm_profile}/{coords}"
        params = {"annotations": "duration,distance"}
        try:
            if self._client is not None:
                response = await self._client.get(url, params=params, timeout=self._timeout)
            else:
                async with httpx.AsyncClient(timeout=self._timeout) as client:
                    response = await client.get(url, params=params)
            response.raise_for_status()
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise RoutingUnavailable(f"OSRM table failed: {exc}") from exc
        if body.get("code") != "Ok" or "durations" not in body or "distances" not in body:
            raise RoutingUnavailable(f"OSRM table answered {body.get('code')!r}")
        return Matrix(_integers(body["distances"], ceil=False), _integers(body["durations"], ceil=True))


def _integers(rows: list[list[float | None]], *, ceil: bool) -> list[list[int]]:
    """OSRM marks unroutable pairs with null: make them prohibitively long."""
    return [[UNREACHABLE if v is None else (math.ceil(v) if ceil else round(v)) for v in row] for row in rows]


class MatrixProvider:
    """Matrices per speed profile for a list of points, cached by points and profile (least recently used)."""

    def __init__(
        self,
        osrm: OsrmClient | None = None,
        detour_factor: float = 1.3,
        cache_size: int = 64,
        fall_back_to_haversine: bool = True,
    ) -> None:
        self._osrm = osrm
        self._detour = detour_factor
        self._cache: OrderedDict[tuple[object, ...], Matrix] = OrderedDict()
        self._cache_size = cache_size
        self._fallback = fall_back_to_haversine

    async def matrix(self, points: Sequence[GeoPoint], profile: SpeedProfile) -> Matrix:
        key = (profile, self._detour, tuple((round(p.lat, 6), round(p.lon, 6)) for p in points))
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        matrix = await self._compute(points, profile)
        self._cache[key] = matrix
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return matrix

    async def matrices(
        self, points: Sequence[GeoPoint], profiles: Sequence[SpeedProfile]
    ) -> dict[str, Matrix]:
        return {profile.name: await self.matrix(points, profile) for profile in dict.fromkeys(profiles)}

    async def _compute(self, points: Sequence[GeoPoint], profile: SpeedProfile) -> Matrix:
        if self._osrm is None:
            # Pure Python over n² pairs: in a thread the event loop still gets its turns.
            return await asyncio.to_thread(haversine_matrix, points, profile, self._detour)
        try:
            return await self._osrm.table(points, profile)
        except RoutingUnavailable:
            if not self._fallback:
                raise
            log.warning("OSRM unavailable, using haversine distances", exc_info=True)
            return haversine_matrix(points, profile, self._detour)
