"""The async WeChat client: `WeChat(settings, store, session)` with `.oa`, `.mp` and `.wecom`."""

from __future__ import annotations

import aiohttp

from bot.settings import Settings
from bot.store import Store
from bot.wechat.client import (
    JSONDict,
    TokenSource,
    WeChatHTTP,
    WeChatTransportError,
)
from bot.wechat.mp import MiniProgramAPI
from bot.wechat.oa import OfficialAccountAPI
from bot.wechat.tokens import StableToken, StoredToken, WeComToken
from bot.wechat.wecom import WeComAPI

__all__ = [
    "JSONDict",
    "MiniProgramAPI",
    "OfficialAccountAPI",
    "StableToken",
    "StoredToken",
    "TokenSource",
    "WeChat",
    "WeChatHTTP",
    "WeChatTransportError",
    "WeComAPI",
    "WeComToken",
]


class WeChat:
    """Every outbound WeChat API of one service; tokens shared with other processes via `store`."""

    def __init__(self, settings: Settings, store: Store, session: aiohttp.ClientSession, *,
                 timeout: float = 10.0) -> None:
        self.settings = settings
        self.http = WeChatHTTP(session, timeout=timeout)
        # The lock must outlive a fetch (a forced refresh is two calls) or a second one starts.
        hold = max(30.0, 3 * timeout)
        self.oa_token = StableToken(self.http, store, settings, "oa", lock_timeout=hold)
        self.mp_token = StableToken(self.http, store, settings, "mp", lock_timeout=hold)
        self.wecom_token = WeComToken(self.http, store, settings, lock_timeout=hold)
        self.oa = OfficialAccountAPI(self.http, self.oa_token, settings)
        self.mp = MiniProgramAPI(self.http, self.mp_token, settings)
        self.wecom = WeComAPI(self.http, self.wecom_token, settings)
