"""OA paths: parametric QR codes, followers, template messages, tags (docs/wechat.md §3)."""

from __future__ import annotations

import base64
import re
import secrets
from typing import Any

from aiohttp import web

from bot.sandbox.api import Ctx, Reply, endpoint, jpeg
from bot.sandbox.records import QRCode, Refusal
from bot.sandbox.state import OA

OPENID = re.compile(r"[\w-]{28}")


QR_ACTIONS = ("QR_SCENE", "QR_STR_SCENE", "QR_LIMIT_SCENE", "QR_LIMIT_STR_SCENE")


def _scene(action: str, info: object) -> int | str:
    if not isinstance(info, dict):
        raise Refusal(40053)
    scene = info.get("scene")
    if scene is None and not action.endswith("STR_SCENE"):
        return 0  # WeChat issues such a code anyway and pushes qrscene_0 (§2.3)
    if not isinstance(scene, dict):
        raise Refusal(40053)
    if action.endswith("STR_SCENE"):
        value = scene.get("scene_str")
        if not isinstance(value, str) or not 1 <= len(value) <= 64:
            raise Refusal(40053)
        return value
    number = scene.get("scene_id")
    top = 100_000 if action == "QR_LIMIT_SCENE" else 2**32 - 1
    if not isinstance(number, int) or isinstance(number, bool) or not 1 <= number <= top:
        raise Refusal(40053)
    return number


@endpoint("/cgi-bin/qrcode/create", "POST", OA)
def qrcode_create(c: Ctx) -> Reply:
    s, action = c.sandbox, c.body.get("action_name")
    if action not in QR_ACTIONS:
        raise Refusal(40052)
    scene = _scene(action, c.body.get("action_info"))
    expires: float | None = None
    seconds: int | None = None
    if action.startswith("QR_LIMIT"):
        for known in s.qrcodes.values():
            if known.permanent and known.action_name == action and known.scene == scene:
                return {"ticket": known.ticket, "url": known.url}
        if sum(code.permanent for code in s.qrcodes.values()) >= s.permanent_qr_limit:
            raise Refusal(45029)
    else:
        seconds = c.body.get("expire_seconds", 60)
        if not isinstance(seconds, int) or isinstance(seconds, bool) or not (
                1 <= seconds <= 2_592_000):
            raise Refusal(40053)
        expires = s.clock() + seconds
    s.spend_daily("qrcode", 100_000)
    ticket = "gQ" + base64.b64encode(secrets.token_bytes(52)).decode()
    code = QRCode(ticket, "http://weixin.qq.com/q/" + secrets.token_urlsafe(17)[:22], action,
                  scene, s.clock(), expires)
    s.qrcodes[ticket] = code
    reply: dict[str, Any] = {"ticket": ticket, "url": code.url}
    if seconds is not None:
        reply["expire_seconds"] = seconds
    return reply


@endpoint("/cgi-bin/showqrcode", "GET")
def showqrcode(c: Ctx) -> Reply:
    code = c.sandbox.qrcodes.get(c.query.get("ticket", ""))
    if code is None or (code.expires_at is not None and c.sandbox.clock() >= code.expires_at):
        return web.Response(status=404, text="not found")
    return jpeg(code.url)


def _openid(value: object) -> str:
    if not isinstance(value, str) or not OPENID.fullmatch(value):
        raise Refusal(40003)
    return value


@endpoint("/cgi-bin/user/info", "GET", OA)
def user_info(c: Ctx) -> Reply:
    openid = _openid(c.query.get("openid"))
    if not c.sandbox.is_follower(openid):
        return {"subscribe": 0, "openid": openid}
    f = c.sandbox.followers[openid]
    info: dict[str, Any] = {
        "subscribe": 1, "openid": openid, "language": "zh_CN",
        "subscribe_time": f.subscribe_time, "remark": "", "groupid": 0,
        "tagid_list": sorted(c.sandbox.user_tags.get(openid, ())),
        "subscribe_scene": f.subscribe_scene, "qr_scene": f.qr_scene,
        "qr_scene_str": f.qr_scene_str}
    if f.unionid:
        info["unionid"] = f.unionid
    return info


@endpoint("/cgi-bin/message/template/send", "POST", OA)
def template_send(c: Ctx) -> Reply:
    s, b = c.sandbox, c.body
    touser = _openid(b.get("touser"))
    if b.get("template_id") not in s.template_ids:
        raise Refusal(40037)
    if not isinstance(b.get("data"), dict):
        raise Refusal(47003)
    if not s.is_follower(touser):
        raise Refusal(43004)
    client_msg_id, now = b.get("client_msg_id"), s.clock()
    key = f"{touser}:{client_msg_id}"
    if client_msg_id and key in s.client_msg_ids and now - s.client_msg_ids[key][1] < 600:
        return {"errcode": 0, "errmsg": "ok", "msgid": s.client_msg_ids[key][0]}
    s.spend_daily("template", s.template_daily_limit)
    msgid = s.next_msgid()
    if client_msg_id:
        s.client_msg_ids[key] = (msgid, now)
    s.template_messages.append({"msgid": msgid, "touser": touser, "at": now, **{
        k: b.get(k) for k in ("template_id", "data", "url", "miniprogram", "client_msg_id")}})
    return {"errcode": 0, "errmsg": "ok", "msgid": msgid}


@endpoint("/cgi-bin/tags/create", "POST", OA)
def tags_create(c: Ctx) -> Reply:
    s, tag = c.sandbox, c.body.get("tag")
    name = tag.get("name") if isinstance(tag, dict) else None
    if not isinstance(name, str) or not name or name in s.tags.values():
        raise Refusal(45157)
    if len(name) > 30:
        raise Refusal(45158)
    if len(s.tags) >= 100:
        raise Refusal(45056)
    tag_id = max(s.tags, default=99) + 1
    s.tags[tag_id] = name
    return {"tag": {"id": tag_id, "name": name}}


@endpoint("/cgi-bin/tags/get", "GET", OA)
def tags_get(c: Ctx) -> Reply:
    s = c.sandbox
    return {"tags": [{"id": i, "name": n, "count": sum(i in t for t in s.user_tags.values())}
                     for i, n in sorted(s.tags.items())]}


@endpoint("/cgi-bin/tags/members/batchtagging", "POST", OA)
def tags_batchtagging(c: Ctx) -> Reply:
    s, openids, tag_id = c.sandbox, c.body.get("openid_list"), c.body.get("tagid")
    if not isinstance(openids, list) or not 1 <= len(openids) <= 50:
        raise Refusal(40032)
    if tag_id not in s.tags:
        raise Refusal(45159)
    for openid in map(_openid, openids):
        if len(s.user_tags.get(openid, set()) | {tag_id}) > 20:
            raise Refusal(45059)
    for openid in openids:
        s.user_tags.setdefault(openid, set()).add(tag_id)
    return {"errcode": 0, "errmsg": "ok"}
