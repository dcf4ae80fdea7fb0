"""Domain reactions to stored signals, registered on routers by push kind and scene kind."""

from __future__ import annotations

from bot.dispatch import Router
from handlers import mp, oa, wecom

ROUTERS: list[Router] = [oa.router, wecom.router, mp.router]
