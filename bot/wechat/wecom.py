"""WeCom (企业微信) APIs (docs/wechat.md §5)."""

from __future__ import annotations

from typing import Any

from bot.settings import Settings
from bot.wechat.client import JSONDict, TokenSource, WeChatHTTP


class WeComAPI:
    def __init__(self, http: WeChatHTTP, token: TokenSource, settings: Settings) -> None:
        self.http = http
        self.token = token
        self.settings = settings
        self.api = settings.wecom_api_base

    async def _post(self, path: str, body: JSONDict) -> JSONDict:
        return await self.http.request("POST", self.api + path, json=body, token=self.token)

    async def add_contact_way(self, *, users: list[str], state: str, type_: int | None = None,
                              scene: int = 2, remark: str | None = None,
                              skip_verify: bool = True) -> JSONDict:
        """A 「联系我」 way: {"config_id", "qr_code" (scene 2 only)}; type_ defaults by len(users).

        Doc: https://developer.work.weixin.qq.com/document/path/96348
        """
        body: JSONDict = {"type": type_ or (1 if len(users) == 1 else 2), "scene": scene,
                          "skip_verify": skip_verify, "state": state, "user": users}
        if remark is not None:
            body["remark"] = remark
        result = await self._post("/cgi-bin/externalcontact/add_contact_way", body)
        return {"config_id": result.get("config_id"), "qr_code": result.get("qr_code")}

    async def get_external_contact(self, external_userid: str) -> JSONDict:
        """{"external_contact": {...}, "follow_user": [...]}.

        Doc: https://developer.work.weixin.qq.com/document/path/96315
        """
        result = await self.http.request(
            "GET", self.api + "/cgi-bin/externalcontact/get",
            params={"external_userid": external_userid}, token=self.token)
        return result

    async def send_welcome_msg(self, welcome_code: str, text: str,
                               attachments: list[dict[str, Any]] | None = None) -> None:
        """Once per welcome_code, within 20 s of the event. Doc: https://developer.work.weixin.qq.com/document/path/92599"""
        body: JSONDict = {"welcome_code": welcome_code, "text": {"content": text}}
        if attachments:
            body["attachments"] = attachments
        await self._post("/cgi-bin/externalcontact/send_welcome_msg", body)

    async def send_app_message(self, touser: list[str], *, text: str | None = None,
                               textcard: dict[str, str] | None = None,
                               duplicate_check: int | None = None) -> JSONDict:
        """A text or textcard application message; partial failures come back as invaliduser.

        Doc: https://developer.work.weixin.qq.com/document/path/90236
        """
        if (text is None) == (textcard is None):
            raise ValueError("send_app_message needs exactly one of text and textcard")
        body: JSONDict = {"touser": "|".join(touser),
                          "agentid": int(self.settings.require("wecom_agent_id"))}
        if text is not None:
            body.update(msgtype="text", text={"content": text})
        else:
            body.update(msgtype="textcard", textcard=textcard)
        if duplicate_check is not None:  # WeCom drops the same message within this many seconds
            body.update(enable_duplicate_check=1, duplicate_check_interval=duplicate_check)
        return await self._post("/cgi-bin/message/send", body)
