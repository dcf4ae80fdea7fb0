"""Assembly: `create_app(settings)` builds the service; each resource is one cleanup context."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import fields

import aiohttp
from aiohttp import web

from bot import callbacks, keys, logs, openapi
from bot.api import SERVER_OPTIONS, errors, reply
from bot.beats import HeartbeatWriter
from bot.db import close_db, init_db, migrate, ping
from bot.dispatch import Dispatcher
from bot.errors import SettingError
from bot.faults import is_outage
from bot.ingest import Ingest
from bot.intake import CompletionWriter, InteractionWriter
from bot.privacy import Sealer
from bot.settings import Secret, Settings
from bot.signing import ExpiringIds
from bot.store import create_store
from bot.wechat import WeChat
from bot.worker import Worker
from domain import rules, scoring
from domain.attribution import Attribution
from domain.content import ShareTokens
from domain.identity import Prospects
from domain.leads import Leads
from domain.opportunities import Messaging
from domain.outbox import Sender
from domain.scenes import Scenes
from handlers import ROUTERS
from models import Identity

log = logging.getLogger(__name__)
HEALTH_TIMEOUT = 2.0


async def healthz(request: web.Request) -> web.Response:
    checks: dict[str, str] = {}
    for name, probe in (("database", ping), ("store", request.app[keys.STORE].ping)):
        try:
            checks[name] = "ok" if await asyncio.wait_for(probe(), HEALTH_TIMEOUT) else "down"
        except Exception as exc:  # a hung connection, too: a probe may not outlast its timeout
            checks[name] = f"down: {type(exc).__name__}"
    healthy = all(v == "ok" for v in checks.values())
    return reply({"status": "ok" if healthy else "unavailable", **checks},
                 status=200 if healthy else 503)


async def check_data_key(sealer: Sealer, settings: Settings, from_file: bool) -> None:
    """Refuses to start with a key that cannot open the personal data already sealed: every
    phone would show as `****` and no lookup by phone would find anyone."""
    sample = await Identity.filter(sealed__isnull=False).limit(1).values_list("sealed", flat=True)
    if sample and sealer.unseal(str(sample[0])) is None:
        which = f"the key in {settings.key_file}" if from_file else "this key"
        raise SettingError("SCRM_SECRET_KEY", (
            f"{which} does not open the personal data sealed in the database; "
            "start with the key it was sealed with"))


def create_app(settings: Settings, *, worker: bool = True, auto_migrate: bool | None = None,
               serve_http: bool = True) -> web.Application:
    from_file = settings.secret_key is None
    settings = settings.with_secret_key()
    logs.protect(*(getattr(settings, f.name) for f in fields(settings)
                   if isinstance(getattr(settings, f.name), Secret)))
    app = web.Application(middlewares=[errors], client_max_size=1024 * 1024,
                          handler_args=SERVER_OPTIONS)
    app[keys.SETTINGS] = settings
    app[keys.CALLBACKS] = callbacks.Callbacks(settings)
    app[keys.SEALER] = Sealer(settings.require("secret_key"))
    app[keys.PROSPECTS] = Prospects(app[keys.SEALER])
    app[keys.SHARES] = ShareTokens(settings.require("secret_key"))
    app[keys.LINKS] = ExpiringIds(settings.require("secret_key"), b"opportunity-page",
                                  settings.link_ttl)
    try:
        app[keys.RULES] = rules.load(settings.scoring_rules)
    except rules.RulesError as exc:
        raise SettingError("SCRM_SCORING_RULES", str(exc)) from None
    migrate_first = settings.is_sqlite if auto_migrate is None else auto_migrate

    async def database(app: web.Application) -> AsyncIterator[None]:
        try:
            if migrate_first:
                await migrate(settings.database_url)
            await init_db(settings.database_url)
            await check_data_key(app[keys.SEALER], settings, from_file)  # the first query
        except Exception as exc:
            if not is_outage(exc):
                raise
            raise SettingError("SCRM_DATABASE_URL", f"the database does not answer "
                                                    f"({type(exc).__name__}: {exc})") from None
        yield
        await close_db()

    async def store(app: web.Application) -> AsyncIterator[None]:
        app[keys.STORE] = create_store(settings.redis_url)
        try:
            await asyncio.wait_for(app[keys.STORE].ping(), HEALTH_TIMEOUT)
        except Exception as exc:  # served anyway: what needs the store answers 503 until it is up
            log.warning("SCRM_REDIS_URL: the store does not answer (%s); requests that need it "
                        "get 503 until it does", type(exc).__name__)
        yield
        await app[keys.STORE].close()

    async def http(app: web.Application) -> AsyncIterator[None]:
        session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        app[keys.HTTP] = session
        app[keys.WECHAT] = WeChat(settings, app[keys.STORE], session)
        yield
        await session.close()

    async def pipeline(app: web.Application) -> AsyncIterator[None]:
        app[keys.INTERACTIONS] = InteractionWriter()
        app[keys.BEATS] = HeartbeatWriter()
        app[keys.COMPLETIONS] = CompletionWriter(linger=settings.completion_linger)
        app[keys.ATTRIBUTION] = Attribution(app[keys.STORE])
        deps = {"settings": settings, "store": app[keys.STORE], "wechat": app[keys.WECHAT],
                "prospects": app[keys.PROSPECTS], "sealer": app[keys.SEALER],
                "attribution": app[keys.ATTRIBUTION]}
        app[keys.SENDER] = Sender(app[keys.WECHAT],
                                  template_id=settings.oa_opportunity_template_id,
                                  wecom_agent=settings.wecom_agent_id is not None)
        links = app[keys.LINKS]
        messaging = Messaging(settings.oa_opportunity_template_id,
                              settings.wecom_agent_id is not None,
                              lambda opportunity_id, salesperson_id: (
                                  f"{settings.public_url}/o/"
                                  f"{links.issue(opportunity_id, salesperson_id)}"))
        app[keys.LEADS] = Leads(app[keys.RULES], app[keys.ATTRIBUTION], app[keys.PROSPECTS],
                                messaging, kick=app[keys.SENDER].kick)
        deps["sender"] = app[keys.SENDER]
        app[keys.DISPATCHER] = Dispatcher(ROUTERS, deps, Scenes().code, app[keys.COMPLETIONS],
                                          after=app[keys.LEADS].after,
                                          after_kinds=frozenset(scoring.SCORED_KINDS))
        app[keys.INGEST] = Ingest(app[keys.INTERACTIONS], app[keys.DISPATCHER])
        app[keys.WORKER] = Worker(app[keys.DISPATCHER], settings.recovery_after,
                                  ingest=app[keys.INGEST])
        if worker:
            app[keys.WORKER].start()
            app[keys.SENDER].start()
        yield
        await app[keys.SENDER].stop()
        await app[keys.WORKER].stop()
        await app[keys.INTERACTIONS].stop()
        await app[keys.BEATS].stop()
        await app[keys.DISPATCHER].drain(timeout=10)
        await app[keys.LEADS].stop()
        await app[keys.COMPLETIONS].stop()
        await app[keys.PROSPECTS].resolver.stop()

    app.cleanup_ctx.extend([database, store, http, pipeline])
    if serve_http:
        from bot import admin
        from bot.page import setup_page_routes
        from miniprogram_api import create_mp_app

        app.router.add_get("/healthz", healthz)
        app.router.add_get("/openapi.json", openapi.serve)
        callbacks.setup_routes(app)
        setup_page_routes(app)
        app.add_subapp("/admin", admin.create_admin_app(app))
        app.add_subapp("/mp", create_mp_app(app))
    return app
