"""The WeChat API paths of the three hosts, served on one root (docs/wechat.md §0, §3–§5).

One dispatcher does what every WeChat path does (method, injected failures, access_token, JSON body,
the error envelope, the call log); each handler only applies its own rules. This module has the
token and mini-program paths; bot.sandbox.oa and bot.sandbox.wecom register the others.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import io
import json
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import qrcode
from aiohttp import web

from bot.sandbox.records import Call, Refusal, Token
from bot.sandbox.state import MP, SANDBOX, TOKEN_TTL, Sandbox

JSON_TYPE = "application/json; encoding=utf-8"
SCENE = re.compile(r"[0-9A-Za-z!#$&'()*+,/:;=?@\-._~]+")
MASKED = ("secret", "corpsecret")


@dataclass(frozen=True)
class Ctx:
    sandbox: Sandbox
    request: web.Request
    query: dict[str, str]
    body: dict[str, Any]
    token: Token | None


Reply = dict[str, Any] | web.Response
Handler = Callable[[Ctx], Reply]


@dataclass(frozen=True)
class Endpoint:
    method: str
    handler: Handler
    platforms: frozenset[str]
    bad_body: int


ENDPOINTS: dict[str, Endpoint] = {}


def endpoint(path: str, method: str, *platforms: str,
             bad_body: int = 47001) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        ENDPOINTS[path] = Endpoint(method, handler, frozenset(platforms), bad_body)
        return handler
    return register


def is_wecom(path: str) -> bool:
    return path in ("/cgi-bin/gettoken", "/cgi-bin/message/send") or path.startswith(
        "/cgi-bin/externalcontact/")


def refusal_body(refusal: Refusal, path: str, sandbox: Sandbox, remote: str | None) -> bytes:
    if is_wecom(path):
        hint = f"{int(sandbox.clock())}_{secrets.token_hex(8)}"
        errmsg = (f"{refusal.errmsg}, hint: [{hint}], from ip: {remote}, more info at "
                  f"https://open.work.weixin.qq.com/devtool/query?e={refusal.errcode}")
    else:
        rid = "-".join(secrets.token_hex(4) for _ in range(3))
        errmsg = f"{refusal.errmsg} rid: {rid}"
    return json.dumps({"errcode": refusal.errcode, "errmsg": errmsg}, ensure_ascii=False,
                      separators=(",", ":")).encode()


def _masked(data: dict[str, Any]) -> dict[str, Any]:
    return {k: "***" if k in MASKED else v for k, v in data.items() if k != "access_token"}


async def dispatch(request: web.Request) -> web.StreamResponse:
    """Answers a call; a delay injected for its path (Sandbox.delay) holds the answer back
    after the call has taken effect."""
    wait = request.app[SANDBOX].take_delay(request.path)
    response = await answer(request)
    if wait > 0:
        await asyncio.sleep(wait)
    return response


async def answer(request: web.Request) -> web.Response:
    sandbox = request.app[SANDBOX]
    path = request.path
    endpoint = ENDPOINTS[path]
    query = dict(request.query)
    raw = await request.read()
    body: dict[str, Any] | None = None
    if request.method == "POST":
        try:
            parsed = json.loads(raw.decode("utf-8"))
            body = parsed if isinstance(parsed, dict) else None
        except ValueError:
            body = None
    call = Call(request.method, path, _masked(query),
                _masked(body) if body is not None else (raw.decode("utf-8", "replace") or None),
                at=sandbox.clock())
    sandbox.calls.append(call)
    try:
        if request.method != endpoint.method:
            raise Refusal(43002 if endpoint.method == "POST" else 43001)
        sandbox.take_failure(path)
        token = None
        if endpoint.platforms:
            token = sandbox.check_token(query.get("access_token"), endpoint.platforms)
        if endpoint.method == "POST" and body is None:
            raise Refusal(endpoint.bad_body)
        reply = endpoint.handler(Ctx(sandbox, request, query, body or {}, token))
    except Refusal as refusal:
        call.errcode = refusal.errcode
        return web.Response(body=refusal_body(refusal, path, sandbox, request.remote),
                            headers={"Content-Type": JSON_TYPE})
    if isinstance(reply, web.Response):
        call.errcode = 0 if reply.status == 200 else reply.status
        return reply
    call.errcode = int(reply.get("errcode", 0))
    return web.Response(body=json.dumps(reply, ensure_ascii=False, separators=(",", ":")).encode(),
                        headers={"Content-Type": JSON_TYPE})


@functools.lru_cache(maxsize=128)
def render_jpeg(text: str, width: int = 430) -> bytes:
    """A real QR code of `text`, as WeChat's JPEG."""
    image = qrcode.make(text, border=2).get_image().convert("RGB").resize((width, width))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def jpeg(text: str, width: int = 430) -> web.Response:
    return web.Response(body=render_jpeg(text, width), content_type="image/jpeg")


# --- tokens and the mini program ------------------------------------------------------------------

@endpoint("/cgi-bin/token", "GET")
def token(c: Ctx) -> Reply:
    issued = c.sandbox.fetch_token(c.query.get("appid"), c.query.get("secret"),
                                   c.query.get("grant_type"))
    return {"access_token": issued.value, "expires_in": TOKEN_TTL}


@endpoint("/cgi-bin/stable_token", "POST")
def stable_token(c: Ctx) -> Reply:
    b = c.body
    issued = c.sandbox.fetch_stable_token(b.get("appid"), b.get("secret"), b.get("grant_type"),
                                          b.get("force_refresh") is True)
    return {"access_token": issued.value,
            "expires_in": int(issued.expires_at - c.sandbox.clock())}


@endpoint("/sns/jscode2session", "GET")
def jscode2session(c: Ctx) -> Reply:
    s, q = c.sandbox, c.query
    try:
        if s.account(q.get("appid"), q.get("secret")) != MP:
            raise Refusal(40013)
    except Refusal as refusal:
        raise Refusal(40125) if refusal.errcode == 40001 else refusal from None
    if q.get("grant_type") != "authorization_code":
        raise Refusal(40002)
    if not q.get("js_code"):
        raise Refusal(41008)
    issued = s.use_code(s.login_codes, q["js_code"], reused=40163)
    openid = issued.data["openid"]
    try:
        s.spend_minute(f"login:{openid}", s.login_minute_limit)
    except Refusal:
        issued.used = False
        raise
    reply = {"openid": openid, "session_key": base64.b64encode(secrets.token_bytes(16)).decode()}
    s.session_keys[openid] = reply["session_key"]
    if s.mini_users.get(openid):
        reply["unionid"] = str(s.mini_users[openid])
    return reply


@endpoint("/wxa/business/getuserphonenumber", "POST", MP)
def phone_number(c: Ctx) -> Reply:
    s = c.sandbox
    issued = s.use_code(s.phone_codes, c.body.get("code"), reused=40029)
    phone, country = issued.data["phone"], issued.data["country_code"]
    return {"errcode": 0, "errmsg": "ok", "phone_info": {
        "phoneNumber": phone if country == "86" else f"+{country} {phone}",
        "purePhoneNumber": phone, "countryCode": country,
        "watermark": {"timestamp": int(s.clock()), "appid": s.settings.mp_appid}}}


@endpoint("/wxa/getwxacodeunlimit", "POST", MP, bad_body=40169)
def wxacode(c: Ctx) -> Reply:
    s, b = c.sandbox, c.body
    scene, page = b.get("scene"), b.get("page", "")
    if not isinstance(scene, str) or not 1 <= len(scene) <= 32:
        raise Refusal(40169)
    if not SCENE.fullmatch(scene):
        raise Refusal(40129)
    if not isinstance(page, str) or page.startswith("/") or "?" in page:
        raise Refusal(41030)
    if page and b.get("check_path", True) is not False and page not in s.published_pages:
        raise Refusal(41030)
    if b.get("env_version", "release") not in ("release", "trial", "develop"):
        raise Refusal(40097)
    width = b.get("width", 430)
    width = min(max(width, 280), 1280) if isinstance(width, int) else 430
    s.spend_minute("wxacode", s.wxacode_minute_limit, errcode=45009)
    s.wxacodes.append({"scene": scene, "page": page, "at": s.clock(),
                       "env_version": b.get("env_version", "release")})
    return jpeg(f"https://mp.weixin.qq.com/a/~{s.settings.mp_appid}?scene={scene}&page={page}",
                width)


def setup_api_routes(app: web.Application) -> None:
    """Route every registered path (this module's and bot.sandbox.wecom's) to the dispatcher."""
    for path in ENDPOINTS:
        app.router.add_route("*", path, dispatch)
