"""Mini-program APIs (docs/wechat.md §4); session_key and phones stay out of logs."""

from __future__ import annotations

import logging

from bot.privacy import mask_phone
from bot.settings import Settings
from bot.wechat.client import JSONDict, TokenSource, WeChatHTTP, WeChatTransportError

log = logging.getLogger("bot.wechat")


class MiniProgramAPI:
    def __init__(self, http: WeChatHTTP, token: TokenSource, settings: Settings) -> None:
        self.http = http
        self.token = token
        self.settings = settings
        self.api = settings.wechat_api_base

    async def code_to_session(self, js_code: str) -> JSONDict:
        """A wx.login code → {"openid", "session_key", "unionid"?}; no access token.

        Doc: https://developers.weixin.qq.com/miniprogram/dev/server/API/user-login/api_code2session
        """
        params = {
            "appid": self.settings.require("mp_appid"),
            "secret": self.settings.require("mp_secret"),
            "js_code": js_code,
            "grant_type": "authorization_code",
        }
        result = await self.http.request("GET", self.api + "/sns/jscode2session", params=params)
        if not result.get("openid"):
            raise WeChatTransportError("the answer has no openid", path="/sns/jscode2session")
        return result

    async def get_phone_number(self, code: str) -> JSONDict:
        """A getPhoneNumber button code → phone_info {"phoneNumber", "purePhoneNumber", ...}.

        Doc: https://developers.weixin.qq.com/miniprogram/dev/server/API/user-info/phone-number/api_getphonenumber
        """
        path = "/wxa/business/getuserphonenumber"
        result = await self.http.request("POST", self.api + path, json={"code": code},
                                         token=self.token)
        info = result.get("phone_info")
        if not isinstance(info, dict):
            raise WeChatTransportError("the answer has no phone_info", path=path)
        log.debug("phone number %s resolved", mask_phone(str(info.get("purePhoneNumber", ""))))
        return info

    async def get_unlimited_code(self, scene: str, page: str, *, check_path: bool = True,
                                 width: int = 430, env_version: str = "release") -> bytes:
        """The image of an unlimited mini-program code (JSON only on error).

        Doc: https://developers.weixin.qq.com/miniprogram/dev/server/API/qrcode-link/qr-code/api_getunlimitedqrcode
        """
        body: JSONDict = {"scene": scene, "page": page, "check_path": check_path,
                          "width": width, "env_version": env_version}
        return await self.http.request("POST", self.api + "/wxa/getwxacodeunlimit", json=body,
                                       token=self.token, raw=True)
