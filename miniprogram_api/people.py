"""The person behind the mini-program: logging in, binding a phone, the profile and consent.

Each call becomes a signal, stored and dispatched like a WeChat push (handlers/mp.py does the
work); what personal data a signal must carry for the worker to redo it is sealed, and erased
with the rest when consent is withdrawn.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from functools import partial
from typing import Any

from aiohttp import web
from tortoise.exceptions import DoesNotExist
from wechatpy.crypto import WeChatWxaCrypto

from bot import fields, keys
from bot.api import read_json, reply
from bot.errors import BadRequest, Conflict, Unauthorized
from bot.privacy import mask_phone, normalize_phone
from bot.signals import Signal
from domain.merging import load
from miniprogram_api.sessions import SessionSigner
from models import Prospect

SIGNER: web.AppKey[SessionSigner] = web.AppKey("mp_signer")
SESSION_KEY = "scrm:mp:session_key:{}"
SESSION_KEY_TTL = 3 * 24 * 3600
PROFILE: dict[str, fields.Reader] = {
    "name": partial(fields.text, limit=64),
    "company": partial(fields.text, limit=128),
    "title": partial(fields.text, limit=64),
    "department": partial(fields.text, limit=64),
    "industry": partial(fields.text, limit=64),
    "company_size": partial(fields.text, limit=32),
    "email": partial(fields.text, limit=254),
    "consent_version": partial(fields.text, limit=32, required=True),
}
PERSONAL = ("name", "company", "email")  # kept sealed in the signal; the rest is the fit


def show_self(prospect: Prospect, phone: str | None) -> dict[str, Any]:
    """The prospect as the prospect may see themselves."""
    return {"id": prospect.id, "name": prospect.name, "company": prospect.company,
            "title": prospect.title, "department": prospect.department,
            "industry": prospect.industry, "company_size": prospect.company_size,
            "email": prospect.email, "phone": phone,
            "consent_version": prospect.consent_version,
            "consent_at": prospect.consent_at.isoformat() if prospect.consent_at else None}


async def visitor(request: web.Request) -> Prospect:
    """The prospect of the session (its survivor, if merged since the login)."""
    try:
        return await load(request["session"].prospect_id)
    except DoesNotExist:  # a token signed for someone no longer there
        raise Unauthorized("the session's person is not known: log in again",
                           code="invalid_token") from None


async def ingest(request: web.Request, kind: str, prospect: Prospect,
                 payload: dict[str, Any]) -> int:
    """Stores and processes a mini-program signal in line; the prospect it left."""
    openid = request["session"].openid
    signal = Signal(source="mp", kind=kind, dedup_key=f"{kind}:{uuid.uuid4().hex}",
                    actor=openid, scene=None, fields={"prospect_id": prospect.id, **payload})
    outcome = (await request.config_dict[keys.INGEST].receive(signal)).outcome
    return outcome.prospect_id if outcome and outcome.prospect_id else prospect.id


async def login(request: web.Request) -> web.Response:
    data = await read_json(request)
    fields.only(data, ("code", "scene"))
    code = fields.text(data, "code", limit=128, required=True)
    scene = fields.text(data, "scene", limit=128) if data.get("scene") != "" else None
    root = request.config_dict
    session = await root[keys.WECHAT].mp.code_to_session(str(code))
    openid, unionid = str(session["openid"]), session.get("unionid")
    await root[keys.STORE].set(SESSION_KEY.format(openid), str(session["session_key"]),
                               ttl=SESSION_KEY_TTL)
    signal = Signal(source="mp", kind="mp.login", dedup_key=f"login:{uuid.uuid4().hex}",
                    actor=openid, scene=scene or None,
                    fields={"openid": openid, "unionid": unionid, "scene": scene})
    outcome = (await root[keys.INGEST].receive(signal)).outcome
    if outcome is None or outcome.prospect_id is None:
        raise RuntimeError("a login was processed without a prospect")
    token = request.app[SIGNER].issue(outcome.prospect_id, openid)
    return reply({"token": token, "prospect_id": outcome.prospect_id})


async def bind_phone(request: web.Request) -> web.Response:
    """The phone from the getPhoneNumber button's code, or the legacy encryptedData + iv
    decrypted with the session_key kept since the login (docs/wechat.md §4.2, §4.3)."""
    data = await read_json(request)
    fields.only(data, ("code", "encrypted_data", "iv"))
    prospect = await visitor(request)
    if prospect.consent_version is None:
        raise Conflict("record the person's consent first (POST /mp/profile with "
                       "consent_version)", code="consent_required")
    if "code" in data:
        code = fields.text(data, "code", limit=128, required=True)
        info = await request.config_dict[keys.WECHAT].mp.get_phone_number(str(code))
        via = "button"
    else:
        info = await _decrypted(request, fields.text(data, "encrypted_data", limit=4096,
                                                     required=True),
                                fields.text(data, "iv", limit=64, required=True))
        via = "legacy"
    phone = normalize_phone(str(info.get("purePhoneNumber") or info.get("phoneNumber") or ""),
                            str(info.get("countryCode") or "86"))
    if not 5 <= len(phone) <= 20:
        raise BadRequest("WeChat gave no usable phone number", code="invalid_phone")
    sealer = request.config_dict[keys.SEALER]
    await ingest(request, "mp.phone", prospect,
                 {"phone": mask_phone(phone), "sealed": sealer.seal(phone), "via": via})
    return reply({"phone": mask_phone(phone)})


async def _decrypted(request: web.Request, encrypted: str | None,
                     iv: str | None) -> dict[str, Any]:
    root = request.config_dict
    session_key = await root[keys.STORE].get(SESSION_KEY.format(request["session"].openid))
    if session_key is None:
        raise Unauthorized("the WeChat session has expired: log in again",
                           code="session_expired")
    try:  # wechatpy checks the watermark's appid
        found = WeChatWxaCrypto(session_key, iv, root[keys.SETTINGS].require("mp_appid")
                                ).decrypt_message(encrypted)
    except Exception:  # bad base64, padding, JSON or appid alike: not WeChat's for this session
        raise BadRequest("encrypted_data and iv do not decrypt with this session",
                         code="invalid_encrypted_data") from None
    if not isinstance(found, dict):
        raise BadRequest("encrypted_data holds no phone", code="invalid_encrypted_data")
    return found


async def save_profile(request: web.Request) -> web.Response:
    """Name, company, title, department, industry, company size, email — kept only with the
    consent given (its version, recorded with its time)."""
    values = fields.read_form(await read_json(request), PROFILE)
    if values["email"] is not None and not _looks_like_email(values["email"]):
        raise fields.invalid("email", "is not an email address")
    prospect = await visitor(request)
    sealer = request.config_dict[keys.SEALER]
    given = {name: value for name, value in values.items() if value is not None}
    personal = {name: given.pop(name) for name in PERSONAL if name in given}
    payload: dict[str, Any] = {**given, "fields": sorted([*given, *personal]),
                               "at": datetime.now(UTC).isoformat()}
    if personal:
        payload["sealed"] = sealer.seal(json.dumps(personal, ensure_ascii=False))
    prospect_id = await ingest(request, "mp.profile", prospect, payload)
    return reply(await _shown(request, prospect_id))


async def withdraw_consent(request: web.Request) -> web.Response:
    """Consent withdrawn: the person's personal fields and phone are erased; their
    interactions stay, anonymous."""
    prospect = await visitor(request)
    await ingest(request, "mp.consent_withdrawn", prospect, {})
    return web.Response(status=204)


async def show_profile(request: web.Request) -> web.Response:
    return reply(await _shown(request, (await visitor(request)).id))


async def _shown(request: web.Request, prospect_id: int) -> dict[str, Any]:
    prospect = await load(prospect_id)
    number = next(iter(await request.config_dict[keys.PROSPECTS].phones(prospect.id)), None)
    return show_self(prospect, mask_phone(number) if number else None)


EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+")


def _looks_like_email(value: str) -> bool:
    return EMAIL.fullmatch(value) is not None


def setup_people_routes(app: web.Application) -> None:
    app.router.add_post("/login", login)
    app.router.add_post("/phone", bind_phone)
    app.router.add_post("/profile", save_profile)
    app.router.add_get("/profile", show_profile)
    app.router.add_delete("/profile", withdraw_consent)
