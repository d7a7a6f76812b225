"""Dependencies of the market routes: the callers' roles and the service's own settings."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from market.settings import Settings
from servicekit.auth import Principal, Role, require_roles
from servicekit.service import CurrentSettings

Trader = Annotated[Principal, Depends(require_roles(Role.TRADER))]
MarketMaster = Annotated[Principal, Depends(require_roles(Role.MARKET_MASTER, Role.CITY_ADMIN))]
Anyone = Annotated[Principal, Depends(require_roles(Role.TRADER, Role.MARKET_MASTER, Role.CITY_ADMIN))]


def market_settings(settings: CurrentSettings) -> Settings:
    if isinstance(settings, Settings):
        return settings
    return Settings.model_validate(settings.model_dump())


MarketSettings = Annotated[Settings, Depends(market_settings)]
