"""WeCom paths: contact ways, external contacts, welcome and app messages (docs/wechat.md §5)."""

from __future__ import annotations

import json
import secrets
from typing import Any

from bot.sandbox.api import Ctx, Reply, endpoint
from bot.sandbox.records import ContactWay, Refusal
from bot.sandbox.state import WECOM, WELCOME_TTL


@endpoint("/cgi-bin/gettoken", "GET")
def gettoken(c: Ctx) -> Reply:
    issued = c.sandbox.fetch_wecom_token(c.query.get("corpid"), c.query.get("corpsecret"))
    return {"errcode": 0, "errmsg": "ok", "access_token": issued.value,
            "expires_in": int(issued.expires_at - c.sandbox.clock())}


@endpoint("/cgi-bin/externalcontact/add_contact_way", "POST", WECOM)
def add_contact_way(c: Ctx) -> Reply:
    s, b = c.sandbox, c.body
    kind, scene = b.get("type"), b.get("scene")
    if kind is None:
        raise Refusal(41037)
    users, parties = b.get("user") or [], b.get("party") or []
    state, remark = b.get("state"), b.get("remark") or ""
    if kind not in (1, 2) or scene not in (1, 2) or not isinstance(users, list):
        raise Refusal(40058)
    if kind == 1 and (len(users) != 1 or parties) or kind == 2 and not (users or parties):
        raise Refusal(40058)
    if state is not None and (not isinstance(state, str) or len(state) > 30):
        raise Refusal(40058)
    if not isinstance(remark, str) or len(remark) > 30:
        raise Refusal(40058)
    if not all(isinstance(u, str) and s.is_member(u) for u in users):
        raise Refusal(60011)
    config_id = secrets.token_hex(16)
    way = ContactWay(config_id, kind, scene, list(users), state, remark,
                     b.get("skip_verify", True) is not False, s.clock())
    reply: dict[str, Any] = {"errcode": 0, "errmsg": "ok", "config_id": config_id}
    if scene == 2:
        way.qr_code = f"{c.request.url.origin()}/sandbox/contact_way/{config_id}.jpg"
        reply["qr_code"] = way.qr_code
    s.contact_ways[config_id] = way
    return reply


@endpoint("/cgi-bin/externalcontact/get", "GET", WECOM)
def external_contact_get(c: Ctx) -> Reply:
    external_userid = c.query.get("external_userid")
    if not external_userid:
        raise Refusal(40096)
    contact = c.sandbox.external_contacts.get(external_userid)
    if contact is None or not contact.follow_users:
        raise Refusal(84061)
    return contact.to_api()


@endpoint("/cgi-bin/externalcontact/send_welcome_msg", "POST", WECOM)
def send_welcome_msg(c: Ctx) -> Reply:
    s, b = c.sandbox, c.body
    code = b.get("welcome_code")
    if not isinstance(code, str) or code not in s.welcome_codes:
        raise Refusal(40058, "invalid welcome_code")
    text, attachments = b.get("text"), b.get("attachments") or []
    if not isinstance(attachments, list) or len(attachments) > 9:
        raise Refusal(40058)
    if not (isinstance(text, dict) and text.get("content")) and not attachments:
        raise Refusal(44004)
    issued = s.use_code(s.welcome_codes, code, reused=41051, ttl=WELCOME_TTL, unknown=41051)
    s.welcome_messages.append({"welcome_code": code, **issued.data, "text": text,
                               "attachments": attachments, "at": s.clock()})
    return {"errcode": 0, "errmsg": "ok"}


@endpoint("/cgi-bin/message/send", "POST", WECOM)
def message_send(c: Ctx) -> Reply:
    s, b = c.sandbox, c.body
    agentid = b.get("agentid")
    if str(agentid) != str(s.settings.wecom_agent_id) or s.settings.wecom_agent_id is None:
        raise Refusal(40056)
    msgtype = b.get("msgtype")
    if not isinstance(msgtype, str) or not isinstance(b.get(msgtype), dict):
        raise Refusal(40058)
    if msgtype == "text" and not b["text"].get("content"):
        raise Refusal(44004)
    named = [u for u in str(b.get("touser") or "").split("|") if u]
    if named == ["@all"]:
        named = sorted(s.members) if s.members is not None else ["@all"]
    valid = [u for u in named if u == "@all" or s.is_member(u)]
    invalid = [u.lower() for u in named if u not in valid]
    parties, tags = str(b.get("toparty") or ""), str(b.get("totag") or "")
    if not valid and not parties.strip() and not tags.strip():
        raise Refusal(81013)
    if b.get("enable_duplicate_check") in (1, "1"):  # the same JSON within the interval: dropped
        interval = b.get("duplicate_check_interval", 1800)
        if not isinstance(interval, int) or isinstance(interval, bool) or not (
                0 < interval <= 4 * 3600):
            raise Refusal(40058)
        body_key = json.dumps({k: v for k, v in b.items()}, sort_keys=True, ensure_ascii=False)
        seen = s.app_message_bodies.get(body_key)
        if seen is not None and s.clock() - seen[1] < interval:
            return {"errcode": 0, "errmsg": "ok", "msgid": seen[0]}
    msgid = secrets.token_urlsafe(24)
    if b.get("enable_duplicate_check") in (1, "1"):
        s.app_message_bodies[body_key] = (msgid, s.clock())
    s.app_messages.append({"msgid": msgid, "touser": valid, "toparty": parties, "totag": tags,
                           "msgtype": msgtype, "content": b[msgtype], "body": b, "at": s.clock()})
    reply: dict[str, Any] = {"errcode": 0, "errmsg": "ok", "msgid": msgid}
    if invalid:
        reply["invaliduser"] = "|".join(invalid)
    return reply
