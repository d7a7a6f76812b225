"""Settings of the logistics service (env prefix `LOGISTICS_`)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from pydantic_settings import SettingsConfigDict

from servicekit.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="LOGISTICS_", extra="ignore")

    service_name: str = "logistics"
    timezone: str = "Europe/Brussels"
    solver_time_limit_s: float = 10.0
    solver_deterministic: bool = False
    solver_parallel_searches: int = 1
    # OR-Tools keeps the interpreter lock while it searches: in a child process the service stays responsive.
    solver_in_process: bool = True
    # Runs beyond this many wait, queued, for a free slot (each search takes a core).
    max_concurrent_runs: int = 1
    detour_factor: float = 1.3
    osrm_url: str | None = None
    osrm_timeout_s: float = 10.0
    # An order further than this from every hub of its municipality is outside the reachable area.
    service_radius_km: float = 25.0
    progress_interval_s: float = 0.5

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)
