"""Assembly: `create_app(settings)` builds the service; each resource is one cleanup context."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
from aiohttp import web

from bot import callbacks, keys
from bot.db import close_db, init_db, migrate, ping
from bot.dispatch import Dispatcher
from bot.errors import ScrmError
from bot.intake import CompletionWriter, InteractionWriter
from bot.privacy import Sealer
from bot.settings import Settings
from bot.store import create_store
from bot.wechat import WeChat
from bot.worker import Worker
from handlers import ROUTERS
from handlers.attribution import Attribution
from handlers.prospects import Prospects
from handlers.scenes import Scenes

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
HEALTH_TIMEOUT = 2.0


def error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    return {"error": {"code": code, "message": message}}


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Domain errors and aiohttp's own 4xx become the JSON error envelope; anything else is a 500
    that says nothing of its cause to the caller."""
    try:
        return await handler(request)
    except ScrmError as exc:
        if exc.status >= 500:
            log.warning("%s %s: %r", request.method, request.path, exc)
        return web.json_response(error_body(exc.code, exc.message), status=exc.status)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = (exc.reason or "error").lower().replace(" ", "_").replace("-", "_")
        return web.json_response(error_body(code, exc.reason or "error"), status=exc.status)
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        return web.json_response(error_body("internal_error", "the service failed; it is logged"),
                                 status=500)


async def read_json(request: web.Request) -> dict[str, object]:
    """A JSON object body, or a 400 saying what is wrong with it."""
    from bot.errors import BadRequest

    try:
        data = json.loads(await request.read() or b"null")
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("the body is not valid JSON", code="malformed_json") from None
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object", code="malformed_json")
    return data


async def healthz(request: web.Request) -> web.Response:
    checks: dict[str, str] = {}
    for name, probe in (("database", ping), ("store", request.app[keys.STORE].ping)):
        try:
            checks[name] = "ok" if await asyncio.wait_for(probe(), HEALTH_TIMEOUT) else "down"
        except Exception as exc:  # a hung connection, too: a probe may not outlast its timeout
            checks[name] = f"down: {type(exc).__name__}"
    healthy = all(v == "ok" for v in checks.values())
    return web.json_response({"status": "ok" if healthy else "unavailable", **checks},
                             status=200 if healthy else 503)


def create_app(settings: Settings, *, worker: bool = True, auto_migrate: bool | None = None,
               serve_http: bool = True) -> web.Application:
    settings = settings.with_secret_key()
    app = web.Application(middlewares=[errors], client_max_size=1024 * 1024)
    app[keys.SETTINGS] = settings
    app[keys.CALLBACKS] = callbacks.Callbacks(settings)
    app[keys.SEALER] = Sealer(settings.require("secret_key"))
    app[keys.PROSPECTS] = Prospects(app[keys.SEALER])
    migrate_first = settings.is_sqlite if auto_migrate is None else auto_migrate

    async def database(app: web.Application) -> AsyncIterator[None]:
        if migrate_first:
            await migrate(settings.database_url)
        await init_db(settings.database_url)
        yield
        await close_db()

    async def store(app: web.Application) -> AsyncIterator[None]:
        app[keys.STORE] = create_store(settings.redis_url)
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
        app[keys.COMPLETIONS] = CompletionWriter(linger=settings.completion_linger)
        deps = {"settings": settings, "store": app[keys.STORE], "wechat": app[keys.WECHAT],
                "prospects": app[keys.PROSPECTS], "sealer": app[keys.SEALER],
                "attribution": Attribution(app[keys.STORE])}
        app[keys.DISPATCHER] = Dispatcher(ROUTERS, deps, Scenes().kind, app[keys.COMPLETIONS])
        app[keys.WORKER] = Worker(app[keys.DISPATCHER], settings.recovery_after)
        if worker:
            app[keys.WORKER].start()
        yield
        await app[keys.WORKER].stop()
        await app[keys.INTERACTIONS].stop()
        await app[keys.DISPATCHER].drain(timeout=10)
        await app[keys.COMPLETIONS].stop()
        await app[keys.PROSPECTS].resolver.stop()

    app.cleanup_ctx.extend([database, store, http, pipeline])
    if serve_http:
        from bot import admin
        from miniprogram_api import create_mp_app

        app.router.add_get("/healthz", healthz)
        callbacks.setup_routes(app)
        app.add_subapp("/admin", admin.create_admin_app(app))
        app.add_subapp("/mp", create_mp_app(app))
    return app
