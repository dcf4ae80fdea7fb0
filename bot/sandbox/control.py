"""A small JSON control API under /sandbox/ so a person or another process can drive the sandbox.

Every route answers JSON; bad input is a 400 `{"error": "..."}`.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from bot.errors import ScrmError
from bot.sandbox import events
from bot.sandbox.api import jpeg
from bot.sandbox.pushes import push_oa, push_wecom
from bot.sandbox.records import Refusal, new_openid
from bot.sandbox.state import SANDBOX, Sandbox

Handler = Callable[[web.Request, Sandbox, dict[str, Any]], Awaitable[Any]]
DELIVERY_OPTIONS: dict[str, type | tuple[type, ...]] = {
    "duplicates": int, "tries": int, "timeout": (int, float), "timestamp": str, "nonce": str,
    "random_prefix": str}


def bad(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=json.dumps({"error": message}), content_type="application/json")


def arg(body: dict[str, Any], name: str, kind: type | tuple[type, ...] = str,
        default: Any = None, required: bool = False) -> Any:
    value = body.get(name, default)
    if value is None and not required:
        return None
    if value is None or not isinstance(value, kind) or isinstance(value, bool) and kind is int:
        raise bad(f"{name} is required and must be {getattr(kind, '__name__', kind)}"
                  if required else f"{name} must be {getattr(kind, '__name__', kind)}")
    return value


def route(handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def view(request: web.Request) -> web.Response:
        body: Any = {}
        if request.method == "POST" and await request.read():
            try:
                body = await request.json()
            except ValueError:
                raise bad("the body is not JSON") from None
        if not isinstance(body, dict):
            raise bad("the body must be a JSON object")
        try:
            result = await handler(request, request.app[SANDBOX], body)
        except (ValueError, KeyError, TypeError, ScrmError) as exc:
            raise bad(f"{type(exc).__name__}: {exc}") from None
        return web.json_response(result, dumps=lambda o: json.dumps(o, ensure_ascii=False))
    return view


def delivery_options(body: dict[str, Any]) -> dict[str, Any]:
    options = {name: arg(body, name, kind) for name, kind in DELIVERY_OPTIONS.items()}
    return {name: value for name, value in options.items() if value is not None}


async def login_code(request: web.Request, s: Sandbox, body: dict[str, Any]) -> Any:
    openid = arg(body, "openid") or new_openid()
    return {"code": s.issue_login_code(openid, arg(body, "unionid")), "openid": openid}


async def phone_code(request: web.Request, s: Sandbox, body: dict[str, Any]) -> Any:
    return {"code": s.issue_phone_code(arg(body, "phone", required=True),
                                       arg(body, "country_code", default="86"))}


async def encrypted_phone(request: web.Request, s: Sandbox, body: dict[str, Any]) -> Any:
    """What the legacy getPhoneNumber gave the mini-program: the phone encrypted with the
    openid's session_key (AES-128-CBC, watermarked with the appid; docs/wechat.md §4.3)."""
    openid = arg(body, "openid", required=True)
    key = s.session_keys.get(openid)
    if key is None:
        raise ValueError(f"no session_key for {openid}: log in first")
    phone = arg(body, "phone", required=True)
    plain = json.dumps({"phoneNumber": phone, "purePhoneNumber": phone, "countryCode": "86",
                        "watermark": {"appid": arg(body, "appid") or s.settings.mp_appid,
                                      "timestamp": int(s.clock())}}).encode()
    iv = secrets.token_bytes(16)
    padder = padding.PKCS7(128).padder()
    encryptor = Cipher(algorithms.AES(base64.b64decode(key)), modes.CBC(iv)).encryptor()
    data = encryptor.update(padder.update(plain) + padder.finalize()) + encryptor.finalize()
    return {"encrypted_data": base64.b64encode(data).decode(),
            "iv": base64.b64encode(iv).decode()}


async def follower(request: web.Request, s: Sandbox, body: dict[str, Any]) -> Any:
    added = s.add_follower(arg(body, "openid"), arg(body, "unionid"))
    return {"openid": added.openid, "unionid": added.unionid}


async def external_contact(request: web.Request, s: Sandbox, body: dict[str, Any]) -> Any:
    names = ("name", "corp_name", "position", "unionid", "userid", "state")
    contact = s.add_external_contact(arg(body, "external_userid"), **{
        n: arg(body, n) for n in names if body.get(n) is not None})
    return contact.to_api()


async def welcome_code(request: web.Request, s: Sandbox, body: dict[str, Any]) -> Any:
    return {"welcome_code": s.welcome_code(arg(body, "userid", default="zhangsan"),
                                           arg(body, "external_userid"))}


async def push_to_oa(request: web.Request, s: Sandbox, body: dict[str, Any]) -> Any:
    callback = arg(body, "callback", required=True)
    if body.get("ticket") is not None:
        event = events.scan_code(s, arg(body, "ticket"), arg(body, "openid", required=True),
                                 arg(body, "unionid"))
    else:
        event = arg(body, "event", dict, required=True)
    delivery = await push_oa(s, callback, event, mode=arg(body, "mode", default="safe"),
                             **delivery_options(body))
    return delivery.to_dict()


async def push_to_wecom(request: web.Request, s: Sandbox, body: dict[str, Any]) -> Any:
    callback = arg(body, "callback", required=True)
    if body.get("config_id") is not None:
        event = events.contact_way_added(s, arg(body, "config_id"), arg(body, "external_userid"))
    else:
        event = arg(body, "event", dict, required=True)
    return (await push_wecom(s, callback, event, **delivery_options(body))).to_dict()


async def fail(request: web.Request, s: Sandbox, body: dict[str, Any]) -> Any:
    path = arg(body, "path", required=True)
    s.fail(path, arg(body, "errcode", int, required=True), arg(body, "times", int, default=1),
           arg(body, "errmsg"))
    return {"path": path, "pending": len(s.failures[path])}


async def expire_tokens(request: web.Request, s: Sandbox, body: dict[str, Any]) -> Any:
    return {"expired": s.expire_tokens()}


async def calls(request: web.Request, s: Sandbox, body: dict[str, Any]) -> Any:
    path = request.query.get("path")
    return {"calls": [c.to_dict() for c in s.calls if path is None or c.path == path]}


async def messages(request: web.Request, s: Sandbox, body: dict[str, Any]) -> Any:
    return {"template": s.template_messages, "app": s.app_messages,
            "welcome": s.welcome_messages, "wxacode": s.wxacodes}


CONTACT_WAY_IMAGE = "/sandbox/contact_way/image"


async def contact_way_image(request: web.Request) -> web.Response:
    """WeCom's image host for contact-way codes. A failure injected for CONTACT_WAY_IMAGE (any
    errcode) makes it answer 503, as an unreachable host would."""
    sandbox = request.app[SANDBOX]
    try:
        sandbox.take_failure(CONTACT_WAY_IMAGE)
    except Refusal:
        raise web.HTTPServiceUnavailable() from None
    way = sandbox.contact_ways.get(request.match_info["config_id"])
    if way is None or way.qr_code is None:
        raise web.HTTPNotFound()
    return jpeg(way.qr_code)


# Each control route, with its one-line description (GET /sandbox/ lists them).
ROUTES: list[tuple[str, str, Handler, str]] = [
    ("POST", "login_code", login_code,
     "a wx.login code for /mp/login: {openid?, unionid?} -> {code, openid}"),
    ("POST", "phone_code", phone_code,
     "a phone-button code for getuserphonenumber: {phone, country_code?} -> {code}"),
    ("POST", "encrypted_phone", encrypted_phone,
     "a legacy getPhoneNumber result for a logged-in openid: {openid, phone, appid?} -> "
     "{encrypted_data, iv}"),
    ("POST", "follower", follower, "an OA follower user/info knows: {openid?, unionid?}"),
    ("POST", "external_contact", external_contact,
     "a WeCom external contact: {external_userid?, name?, corp_name?, position?, unionid?}"),
    ("POST", "welcome_code", welcome_code,
     "a WelcomeCode for send_welcome_msg: {userid?, external_userid?}"),
    ("POST", "push/oa", push_to_oa,
     "send a signed OA push to a callback: {callback, ticket + openid (a scan/follow of an "
     "issued code) | event: {...}, mode?: plain|compat|safe, duplicates?, tries?, timeout?}"),
    ("POST", "push/wecom", push_to_wecom,
     "send a signed WeCom push: {callback, config_id + external_userid? (a contact added "
     "through a contact way) | event: {...}}"),
    ("POST", "fail", fail,
     "the next calls of an API path answer an errcode: {path, errcode, times?, errmsg?}"),
    ("POST", "expire_tokens", expire_tokens, "every access token issued so far expires now"),
    ("GET", "calls", calls, "the API calls received, secrets masked: ?path= to filter"),
    ("GET", "messages", messages,
     "template, app and welcome messages sent, and mini-program codes drawn"),
]


async def index(request: web.Request, s: Sandbox, body: dict[str, Any]) -> Any:
    return {"routes": [{"method": method, "path": f"/sandbox/{name}", "does": does}
                       for method, name, _, does in ROUTES],
            "accounts": s.accounts()}


def setup_control_routes(app: web.Application) -> None:
    app.router.add_get("/sandbox/", route(index))
    for method, name, handler, _ in ROUTES:
        app.router.add_route(method, f"/sandbox/{name}", route(handler))
    app.router.add_get("/sandbox/contact_way/{config_id}.jpg", contact_way_image)
