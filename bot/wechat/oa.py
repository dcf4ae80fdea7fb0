"""Official Account APIs (docs/wechat.md §3)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from bot.settings import Settings
from bot.wechat.client import JSONDict, TokenSource, WeChatHTTP

TAG_BATCH = 50  # openids per batchtagging call


class OfficialAccountAPI:
    def __init__(self, http: WeChatHTTP, token: TokenSource, settings: Settings) -> None:
        self.http = http
        self.token = token
        self.api = settings.wechat_api_base
        self.mp = settings.wechat_mp_base
        # without the OA's AppID and secret no call that needs a token can be made
        self.configured = bool(settings.oa_appid and settings.oa_secret)

    async def _post(self, path: str, body: JSONDict) -> JSONDict:
        return await self.http.request("POST", self.api + path, json=body, token=self.token)

    async def create_qrcode(self, scene: str | int, *, permanent: bool = False,
                            expire_seconds: int | None = None) -> JSONDict:
        """A parametric QR code: {"ticket", "url", "expire_seconds" (temporary only)}.

        Doc: https://developers.weixin.qq.com/doc/service/api/qrcode/qrcodes/api_createqrcode.md
        """
        if isinstance(scene, int) and not isinstance(scene, bool):
            action = "QR_LIMIT_SCENE" if permanent else "QR_SCENE"
            inner: JSONDict = {"scene_id": scene}
        else:
            action = "QR_LIMIT_STR_SCENE" if permanent else "QR_STR_SCENE"
            inner = {"scene_str": str(scene)}
        # Always under "scene": without the wrapper WeChat issues a ticket but pushes qrscene_0.
        body: JSONDict = {"action_name": action, "action_info": {"scene": inner}}
        if not permanent and expire_seconds is not None:
            body["expire_seconds"] = expire_seconds
        return await self._post("/cgi-bin/qrcode/create", body)

    def showqrcode_url(self, ticket: str) -> str:
        """The image of a ticket; no access token. Doc: as create_qrcode."""
        return f"{self.mp}/cgi-bin/showqrcode?ticket={quote(ticket, safe='')}"

    async def fetch_qrcode_image(self, ticket: str) -> bytes:
        """The JPEG of a ticket (an unknown ticket is HTTP 404). Doc: as create_qrcode."""
        return await self.http.request("GET", self.mp + "/cgi-bin/showqrcode",
                                       params={"ticket": ticket}, raw=True)

    async def user_info(self, openid: str, lang: str = "zh_CN") -> JSONDict:
        """Doc: https://developers.weixin.qq.com/doc/service/api/usermanage/userinfo/api_userinfo"""
        return await self.http.request("GET", self.api + "/cgi-bin/user/info",
                                       params={"openid": openid, "lang": lang}, token=self.token)

    async def send_template(self, touser: str, template_id: str, data: dict[str, Any],
                            url: str | None = None, miniprogram: dict[str, str] | None = None,
                            client_msg_id: str | None = None) -> int:
        """A template message; the msgid that TEMPLATESENDJOBFINISH reports later.

        Doc: https://developers.weixin.qq.com/doc/service/api/notify/template/api_sendtemplatemessage.md
        """
        body: JSONDict = {"touser": touser, "template_id": template_id, "data": _values(data)}
        if url is not None:
            body["url"] = url
        if miniprogram is not None:
            body["miniprogram"] = miniprogram
        if client_msg_id is not None:
            body["client_msg_id"] = client_msg_id
        result = await self._post("/cgi-bin/message/template/send", body)
        return int(result["msgid"])

    async def create_tag(self, name: str) -> int:
        """The new tag's id. Doc: https://developers.weixin.qq.com/doc/service/api/usermanage/tag/api_createtag"""
        result = await self._post("/cgi-bin/tags/create", {"tag": {"name": name}})
        return int(result["tag"]["id"])

    async def batch_tag(self, openids: list[str], tag_id: int) -> None:
        """Tag followers, 50 per call. Doc: https://developers.weixin.qq.com/doc/service/api/usermanage/tag/api_batchtagging"""
        for start in range(0, len(openids), TAG_BATCH):
            chunk = openids[start:start + TAG_BATCH]
            await self._post("/cgi-bin/tags/members/batchtagging",
                             {"openid_list": chunk, "tagid": tag_id})


def _values(data: dict[str, Any]) -> dict[str, Any]:
    """Template data as WeChat wants it: {"key": {"value": ...}}; plain values are wrapped."""
    return {key: value if isinstance(value, dict) else {"value": value}
            for key, value in data.items()}
