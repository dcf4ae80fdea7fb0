"""The sandbox's records and WeChat's error texts (docs/wechat.md §0, §3, §4, §5)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

ERRMSG: dict[int, str] = {
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    40002: "invalid grant_type",
    40003: "invalid openid",
    40013: "invalid appid",
    40014: "invalid access_token",
    40029: "invalid code",
    40032: "invalid openid list size",
    40037: "invalid template_id",
    40052: "invalid action name",
    40053: "invalid action info, please check document",
    40056: "invalid agentid",
    40058: "invalid parameter",
    40096: "invalid external userid",
    40097: "invalid args",
    40125: "invalid appsecret",
    40129: "invalid scene",
    40163: "code been used",
    40169: "invalid length for scene, or the data is not json string",
    41001: "access_token missing",
    41002: "appid missing",
    41004: "appsecret missing",
    41008: "missing code",
    41030: "invalid page",
    41037: "missing contact way type",
    41051: "externaluser has started chatting",
    42001: "access_token expired",
    43001: "require GET method",
    43002: "require POST method",
    43004: "require subscribe",
    44004: "empty content",
    45009: "reach max api daily quota limit",
    45011: "api minute-quota reach limit  mustslower  retry next minute",
    45029: "qrcode count out of limit",
    45056: "too many tags",
    45059: "too many tags on this user",
    45157: "invalid tag name",
    45158: "tag name too long",
    45159: "invalid tag id",
    47001: "data format error",
    47003: "argument invalid!",
    48001: "api unauthorized",
    60011: "no privilege to access/modify contact/party/agent",
    81013: "user & party & tag all invalid",
    84061: "not external contact",
}
TOKEN_QUOTA_ERRMSG = ("reach max api daily quota limit, could get access_token by "
                      "getStableAccessToken, more details at https://mmbizurl.cn/s/JtxxFh33r")


class Refusal(Exception):
    """WeChat answering an errcode; raised anywhere in the sandbox, answered by the API layer."""

    def __init__(self, errcode: int, errmsg: str | None = None):
        self.errcode = errcode
        self.errmsg = errmsg or ERRMSG.get(errcode, "error")
        super().__init__(f"{errcode} {self.errmsg}")

    def __repr__(self) -> str:
        return f"Refusal(errcode={self.errcode}, errmsg={self.errmsg!r})"


def new_openid() -> str:
    """28 chars of [A-Za-z0-9_-] starting with `o`, like a real OpenID or UnionID."""
    return "o" + secrets.token_urlsafe(20)[:27]


@dataclass
class Token:
    value: str
    platform: str  # oa, mp, wecom
    kind: str  # token, stable, wecom
    issued_at: float
    expires_at: float
    revoked_at: float | None = None  # rotated out: answers 40001 from then on

    def __repr__(self) -> str:
        return f"Token({self.platform}/{self.kind}, {self.value[:8]}..)"


@dataclass
class Call:
    """One API call as the sandbox saw it; the access_token is left out, secrets masked."""

    method: str
    path: str
    query: dict[str, str]
    json: Any
    errcode: int = 0
    at: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "path": self.path, "query": self.query,
                "json": self.json, "errcode": self.errcode, "at": self.at}


@dataclass
class Follower:
    openid: str
    unionid: str | None
    subscribed: bool
    subscribe_time: int
    subscribe_scene: str = "ADD_SCENE_SEARCH"
    qr_scene: int = 0
    qr_scene_str: str = ""


@dataclass
class IssuedCode:
    """A single-use code (login, phone, welcome) and what it stands for."""

    code: str
    issued_at: float
    data: dict[str, Any]
    used: bool = False


@dataclass
class QRCode:
    ticket: str
    url: str
    action_name: str
    scene: int | str
    created_at: float
    expires_at: float | None  # None: permanent

    @property
    def permanent(self) -> bool:
        return self.expires_at is None


@dataclass
class FollowUser:
    userid: str
    state: str | None
    createtime: int
    remark: str = ""
    add_way: int = 1


@dataclass
class ExternalContact:
    external_userid: str
    name: str
    corp_name: str
    position: str
    unionid: str | None = None
    type: int = 1
    gender: int = 0
    follow_users: list[FollowUser] = field(default_factory=list)

    def to_api(self) -> dict[str, Any]:
        """The body of `externalcontact/get` (§5.5)."""
        contact: dict[str, Any] = {
            "external_userid": self.external_userid, "name": self.name,
            "position": self.position, "avatar": "", "corp_name": self.corp_name,
            "corp_full_name": self.corp_name, "type": self.type, "gender": self.gender}
        if self.unionid and self.type == 1:
            contact["unionid"] = self.unionid
        follow = []
        for f in self.follow_users:
            item: dict[str, Any] = {"userid": f.userid, "remark": f.remark, "description": "",
                                    "createtime": f.createtime, "tags": [],
                                    "oper_userid": self.external_userid, "add_way": f.add_way}
            if f.state:
                item["state"] = f.state
            follow.append(item)
        return {"errcode": 0, "errmsg": "ok", "external_contact": contact, "follow_user": follow}


@dataclass
class ContactWay:
    config_id: str
    type: int
    scene: int
    users: list[str]
    state: str | None
    remark: str
    skip_verify: bool
    created_at: float
    qr_code: str | None = None
