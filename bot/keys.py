"""Typed handles of the resources an application holds."""

from __future__ import annotations

from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web

if TYPE_CHECKING:
    from bot.beats import HeartbeatWriter
    from bot.callbacks import Callbacks
    from bot.dispatch import Dispatcher
    from bot.ingest import Ingest
    from bot.intake import CompletionWriter, InteractionWriter
    from bot.paging import Cursors
    from bot.privacy import Sealer
    from bot.settings import Settings
    from bot.signing import ExpiringIds
    from bot.store import Store
    from bot.wechat import WeChat
    from bot.worker import Worker
    from domain.attribution import Attribution
    from domain.content import ShareTokens
    from domain.identity import Prospects
    from domain.leads import Leads
    from domain.outbox import Sender
    from domain.rules import Rules

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
STORE: web.AppKey[Store] = web.AppKey("store")
HTTP: web.AppKey[aiohttp.ClientSession] = web.AppKey("http")
WECHAT: web.AppKey[WeChat] = web.AppKey("wechat")
SEALER: web.AppKey[Sealer] = web.AppKey("sealer")
PROSPECTS: web.AppKey[Prospects] = web.AppKey("prospects")
INTERACTIONS: web.AppKey[InteractionWriter] = web.AppKey("interactions")
COMPLETIONS: web.AppKey[CompletionWriter] = web.AppKey("completions")
DISPATCHER: web.AppKey[Dispatcher] = web.AppKey("dispatcher")
CALLBACKS: web.AppKey[Callbacks] = web.AppKey("callbacks")
WORKER: web.AppKey[Worker] = web.AppKey("worker")
ATTRIBUTION: web.AppKey[Attribution] = web.AppKey("attribution")
CURSORS: web.AppKey[Cursors] = web.AppKey("cursors")  # the admin lists' paging
INGEST: web.AppKey[Ingest] = web.AppKey("ingest")  # the one way in for every signal
SHARES: web.AppKey[ShareTokens] = web.AppKey("shares")  # share tokens: signed, opaque
BEATS: web.AppKey[HeartbeatWriter] = web.AppKey("beats")  # read heartbeats, batched
RULES: web.AppKey[Rules] = web.AppKey("rules")  # the scoring rules in force
SENDER: web.AppKey[Sender] = web.AppKey("sender")  # the outbox's sender
LEADS: web.AppKey[Leads] = web.AppKey("leads")  # scoring and routing after each signal
LINKS: web.AppKey[ExpiringIds] = web.AppKey("links")  # signed, expiring opportunity-page links
