"""The fields of OA and WeCom pushes (docs/wechat.md §2.3, §5.3) and what they change.

Builders return the fields a caller chooses; `complete_*` adds the header fields WeChat always sends
(in WeChat's order) and `apply_*` makes the sandbox's state agree with the event.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.sandbox.state import Sandbox

ADD_CHANGES = ("add_external_contact", "add_half_external_contact")
DROP_CHANGES = ("del_follow_user", "del_external_contact")
Fields = dict[str, Any]


def subscribe(openid: str, scene: int | str | None = None, ticket: str | None = None) -> Fields:
    """A follow; through a parametric QR code when `scene` is given (EventKey `qrscene_<scene>`)."""
    fields: Fields = {"FromUserName": openid, "MsgType": "event", "Event": "subscribe"}
    if scene is not None:
        fields.update(EventKey=f"qrscene_{scene}", Ticket=ticket or "")
    return fields


def scan(openid: str, scene: int | str, ticket: str) -> Fields:
    """A follower scanning a parametric QR code: EventKey is the bare scene."""
    return {"FromUserName": openid, "MsgType": "event", "Event": "SCAN", "EventKey": str(scene),
            "Ticket": ticket}


def unsubscribe(openid: str) -> Fields:
    return {"FromUserName": openid, "MsgType": "event", "Event": "unsubscribe"}


def text(openid: str, content: str, msg_id: int | None = None) -> Fields:
    fields: Fields = {"FromUserName": openid, "MsgType": "text", "Content": content}
    if msg_id is not None:
        fields["MsgId"] = msg_id
    return fields


def template_finished(openid: str, msgid: int, status: str = "success") -> Fields:
    """The delivery report of a template message; `MsgID` with a capital D."""
    return {"FromUserName": openid, "MsgType": "event", "Event": "TEMPLATESENDJOBFINISH",
            "MsgID": msgid, "Status": status}


def external_contact(change_type: str, userid: str, external_userid: str, *,
                     state: str | None = None, welcome_code: str | None = None) -> Fields:
    """A `change_external_contact` event. An add without `welcome_code` gets a fresh one when
    completed; pass `welcome_code=""` for an add that carries none."""
    fields: Fields = {"ChangeType": change_type, "UserID": userid,
                      "ExternalUserID": external_userid}
    if state is not None:
        fields["State"] = state
    if welcome_code is not None:
        fields["WelcomeCode"] = welcome_code
    return fields


def scan_code(sandbox: Sandbox, ticket: str, openid: str, unionid: str | None = None) -> Fields:
    """What scanning the OA code `ticket` pushes: subscribe+qrscene for a newcomer, else SCAN."""
    code = sandbox.qrcodes[ticket]
    if unionid is not None and not sandbox.is_follower(openid):
        sandbox.add_follower(openid, unionid, subscribed=False)
    if sandbox.is_follower(openid):
        return scan(openid, code.scene, ticket)
    return subscribe(openid, code.scene, ticket)


def contact_way_added(sandbox: Sandbox, config_id: str, external_userid: str | None = None,
                      welcome_code: str | None = None) -> Fields:
    """A customer adding the (first) member of contact way `config_id`: its `state` comes back."""
    way = sandbox.contact_ways[config_id]
    external_userid = external_userid or "wm" + secrets.token_urlsafe(23)[:30]
    return external_contact("add_external_contact", way.users[0] if way.users else "",
                            external_userid, state=way.state, welcome_code=welcome_code)


def _header(fields: Mapping[str, Any], to: str, sender: str | None, now: float,
            msgtype: str) -> Fields:
    if not (fields.get("FromUserName") or sender):
        raise ValueError("FromUserName is required")
    out: Fields = {"ToUserName": fields.get("ToUserName") or to,
                   "FromUserName": fields.get("FromUserName") or sender,
                   "CreateTime": int(fields.get("CreateTime") or now),
                   "MsgType": fields.get("MsgType") or msgtype}
    return out


def complete_oa(sandbox: Sandbox, fields: Mapping[str, Any]) -> Fields:
    out = _header(fields, sandbox.oa_original_id, None, sandbox.clock(),
                  "event" if "Event" in fields else "text")
    out.update((k, v) for k, v in fields.items() if k not in out)
    if out["MsgType"] != "event" and "MsgId" not in out:
        out["MsgId"] = 10**18 + secrets.randbelow(9 * 10**18)
    return out


def apply_oa(sandbox: Sandbox, fields: Mapping[str, Any]) -> None:
    openid, event = str(fields["FromUserName"]), fields.get("Event")
    if event == "unsubscribe":
        sandbox.remove_follower(openid)
    if event != "subscribe":
        return
    key, when = str(fields.get("EventKey") or ""), int(fields["CreateTime"])
    if not key.startswith("qrscene_"):
        sandbox.add_follower(openid, subscribe_time=when)
        return
    scene = key.removeprefix("qrscene_")
    code = sandbox.qrcodes.get(str(fields.get("Ticket") or ""))
    by_number = isinstance(code.scene, int) if code else scene.isdigit()
    sandbox.add_follower(openid, scene="ADD_SCENE_QR_CODE", subscribe_time=when,
                         qr_scene=int(scene) if by_number else 0,
                         qr_scene_str="" if by_number else scene)


def complete_wecom(sandbox: Sandbox, fields: Mapping[str, Any]) -> Fields:
    out = _header(fields, str(sandbox.settings.wecom_corpid or ""), "sys", sandbox.clock(),
                  "event")
    if out["MsgType"] == "event":
        out["Event"] = fields.get("Event") or "change_external_contact"
    out.update((k, v) for k, v in fields.items() if k not in out)
    if out.get("ChangeType") in ADD_CHANGES and "WelcomeCode" not in out:
        out["WelcomeCode"] = secrets.token_urlsafe(32)
    if "WelcomeCode" in out and not out["WelcomeCode"]:
        del out["WelcomeCode"]
    return out


def apply_wecom(sandbox: Sandbox, fields: Mapping[str, Any]) -> None:
    if fields.get("Event") != "change_external_contact":
        return
    change = fields.get("ChangeType")
    userid, external_userid = str(fields.get("UserID") or ""), str(fields.get("ExternalUserID"))
    if change in ADD_CHANGES:
        sandbox.add_external_contact(external_userid, userid=userid, state=fields.get("State"))
        if fields.get("WelcomeCode"):
            sandbox.welcome_code(userid, external_userid, code=str(fields["WelcomeCode"]))
    elif change in DROP_CHANGES and external_userid in sandbox.external_contacts:
        contact = sandbox.external_contacts[external_userid]
        contact.follow_users = [f for f in contact.follow_users if f.userid != userid]
