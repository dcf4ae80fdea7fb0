"""The mini-program API under /mp: log in with a wx.login code, then every call carries the
session token it gave (`Authorization: Bearer …`)."""

from __future__ import annotations

from aiohttp import web

from bot import keys
from bot.api import Handler, bearer
from bot.errors import Unauthorized
from miniprogram_api.actions import setup_action_routes
from miniprogram_api.content import setup_content_routes
from miniprogram_api.people import SIGNER, setup_people_routes
from miniprogram_api.sessions import SessionSigner

OPEN = {"/mp/login"}


@web.middleware
async def mp_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path not in OPEN:
        token = bearer(request)
        if token is None:
            raise Unauthorized("log in first: a bearer session token is required")
        request["session"] = request.app[SIGNER].verify(token)
    return await handler(request)


def create_mp_app(root: web.Application) -> web.Application:
    app = web.Application(middlewares=[mp_auth])
    app[SIGNER] = SessionSigner(root[keys.SETTINGS].require("secret_key"))
    setup_people_routes(app)
    setup_content_routes(app)
    setup_action_routes(app)
    return app
