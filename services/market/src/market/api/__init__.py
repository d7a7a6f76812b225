"""The market HTTP API under /v1: public market-day views, the trader's pages, the market master's work."""

from __future__ import annotations

from fastapi import APIRouter

from market.api import master, public, trader

router = APIRouter(prefix="/v1")
router.include_router(public.router)
router.include_router(trader.router)
router.include_router(master.router)
