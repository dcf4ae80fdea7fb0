"""The mini-program API under /mp: login with a wx.login code, then calls with the token."""

from __future__ import annotations

import logging
import uuid

from aiohttp import web

from bot import fields, keys
from bot.api import Handler, bearer, read_json, reply
from bot.errors import Unauthorized
from bot.signals import Signal
from miniprogram_api.sessions import SessionSigner

log = logging.getLogger(__name__)
ROOT: web.AppKey[web.Application] = web.AppKey("mp_root")
SIGNER: web.AppKey[SessionSigner] = web.AppKey("mp_signer")
SESSION_KEY_TTL = 3 * 24 * 3600
OPEN = {"/mp/login"}


@web.middleware
async def mp_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path not in OPEN:
        token = bearer(request)
        if token is None:
            raise Unauthorized("log in first: a bearer session token is required")
        request["session"] = request.app[SIGNER].verify(token)
    return await handler(request)


async def login(request: web.Request) -> web.Response:
    data = await read_json(request)
    fields.only(data, ("code", "scene"))
    code = fields.text(data, "code", limit=128, required=True)
    scene = fields.text(data, "scene", limit=128) if data.get("scene") != "" else None
    root = request.app[ROOT]
    session = await root[keys.WECHAT].mp.code_to_session(str(code))
    openid, unionid = str(session["openid"]), session.get("unionid")
    await root[keys.STORE].set(f"scrm:mp:session_key:{openid}", str(session["session_key"]),
                               ttl=SESSION_KEY_TTL)
    signal = Signal(source="mp", kind="mp.login", dedup_key=f"login:{uuid.uuid4().hex}",
                    actor=openid, scene=scene or None,
                    fields={"openid": openid, "unionid": unionid, "scene": scene})
    outcome = (await root[keys.INGEST].receive(signal)).outcome
    if outcome is None or outcome.prospect_id is None:
        raise RuntimeError("a login was processed without a prospect")
    token = request.app[SIGNER].issue(outcome.prospect_id, openid)
    return reply({"token": token, "prospect_id": outcome.prospect_id})


def create_mp_app(root: web.Application) -> web.Application:
    app = web.Application(middlewares=[mp_auth])
    app[ROOT] = root
    app[SIGNER] = SessionSigner(root[keys.SETTINGS].require("secret_key"))
    app.router.add_post("/login", login)
    return app
