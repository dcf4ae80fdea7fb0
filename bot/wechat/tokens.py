"""Access tokens shared through the Store: processes sharing Redis never invalidate each other.

Reading is lock-free (the cached token); fetching happens only under `TOKEN_LOCK`, after re-reading
the cache, so however many processes miss at once WeChat is asked once. Within a process, one
caller at a time goes for the shared lock (the others wait for it in memory, not by polling the
store: a burst of hundreds must not take a store connection each), and a fetch that just failed
fails its waiters at once for a second rather than being tried by each in turn. A refused token
is replaced only if it is still the cached one: a process never throws away a token another one
just fetched.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

from bot.settings import Settings
from bot.store import TOKEN_KEY, TOKEN_LOCK, LockTimeout, Store
from bot.wechat.client import JSONDict, WeChatHTTP, WeChatTransportError

log = logging.getLogger("bot.wechat")

STABLE = "/cgi-bin/stable_token"
FAILED_FOR = 1.0  # seconds a failed fetch answers for the callers waiting behind it
GETTOKEN = "/cgi-bin/gettoken"


class StoredToken:
    """The cache, the lock and compare-before-replace; subclasses say how WeChat hands one out."""

    #: seconds cut from `expires_in`, so a cached token is never one WeChat is about to drop
    margin = 300.0

    def __init__(self, http: WeChatHTTP, store: Store, settings: Settings, *,
                 lock_timeout: float = 30.0) -> None:
        self.http = http
        self.store = store
        self.settings = settings
        self.lock_timeout = lock_timeout
        self._local = asyncio.Lock()
        self._failed: tuple[float, BaseException] | None = None  # the last fetch, if it failed

    @property
    def name(self) -> str:
        """`kind:appid`, the key of this token in the store."""
        raise NotImplementedError

    def credentials(self) -> None:
        """Raises MissingSetting when this token cannot be had at all (no secret configured):
        said at once, without asking the store."""
        raise NotImplementedError

    async def token(self) -> str:
        self.credentials()
        key = TOKEN_KEY.format(self.name)
        cached = await self.store.get(key)
        if cached:
            return cached
        async with self._local:  # one caller of this process at a time past here
            if self._failed is not None and time.monotonic() - self._failed[0] < FAILED_FOR:
                raise self._failed[1].with_traceback(None)  # not one traceback per waiter
            cached = await self.store.get(key)  # fetched meanwhile, here or elsewhere
            if cached:
                return cached
            try:
                async with self._locked():
                    cached = await self.store.get(key)
                    if cached:
                        return cached
                    token = await self._fetch_and_cache(stale=None)
            except Exception as exc:
                self._failed = (time.monotonic(), exc)
                raise
            self._failed = None
            return token

    async def refresh(self, stale: str) -> str:
        """A new token in place of `stale`, which WeChat refused."""
        key = TOKEN_KEY.format(self.name)
        async with self._locked():
            current = await self.store.get(key)
            if current and current != stale:
                return current  # someone already replaced the refused token
            if current:
                await self.store.delete(key)
            return await self._fetch_and_cache(stale=stale)

    async def _fetch(self, stale: str | None) -> tuple[str, int]:
        raise NotImplementedError

    async def _fetch_and_cache(self, stale: str | None) -> str:
        token, expires_in = await self._fetch(stale)
        ttl = max(expires_in - self.margin, expires_in / 2, 1.0)
        await self.store.set(TOKEN_KEY.format(self.name), token, ttl)
        log.info("fetched the %s access token (expires_in %ss, cached %.0fs)",
                 self.name, expires_in, ttl)
        return token

    @asynccontextmanager
    async def _locked(self) -> AsyncIterator[None]:
        try:
            async with self.store.lock(TOKEN_LOCK.format(self.name), timeout=self.lock_timeout,
                                       wait=self.lock_timeout):
                yield
        except LockTimeout:
            raise WeChatTransportError(f"the {self.name} token lock is busy",
                                       path="token") from None


def _parse(result: JSONDict, path: str) -> tuple[str, int]:
    token = result.get("access_token")
    if not isinstance(token, str) or not token:
        raise WeChatTransportError("the answer has no access_token", path=path)
    try:
        expires_in = int(result.get("expires_in", 7200))
    except (TypeError, ValueError):
        expires_in = 7200
    return token, expires_in


class StableToken(StoredToken):
    """OA and mini program, through the stable token API (isolated from cgi-bin/token).

    Doc: https://developers.weixin.qq.com/doc/service/api/base/api_getstableaccesstoken
    """

    def __init__(self, http: WeChatHTTP, store: Store, settings: Settings,
                 kind: Literal["oa", "mp"], *, lock_timeout: float = 30.0) -> None:
        super().__init__(http, store, settings, lock_timeout=lock_timeout)
        self.kind = kind

    @property
    def name(self) -> str:
        return f"{self.kind}:{self.settings.require(f'{self.kind}_appid')}"

    def credentials(self) -> None:
        self.settings.require(f"{self.kind}_appid")
        self.settings.require(f"{self.kind}_secret")

    async def _fetch(self, stale: str | None) -> tuple[str, int]:
        url = self.settings.wechat_api_base + STABLE
        body: dict[str, Any] = {
            "grant_type": "client_credential",
            "appid": self.settings.require(f"{self.kind}_appid"),
            "secret": self.settings.require(f"{self.kind}_secret"),
        }
        token, expires_in = _parse(await self.http.request("POST", url, json=body), STABLE)
        if stale is not None and token == stale:
            # WeChat still hands out the token it refused: only now force a new one (20/day).
            body["force_refresh"] = True
            token, expires_in = _parse(await self.http.request("POST", url, json=body), STABLE)
        return token, expires_in


class WeComToken(StoredToken):
    """WeCom: one token per corp secret. Doc: https://developer.work.weixin.qq.com/document/path/91039"""

    @property
    def name(self) -> str:
        return f"wecom:{self.settings.require('wecom_corpid')}"

    def credentials(self) -> None:
        self.settings.require("wecom_corpid")
        self.settings.require("wecom_secret")

    async def _fetch(self, stale: str | None) -> tuple[str, int]:
        url = self.settings.wecom_api_base + GETTOKEN
        params = {"corpid": self.settings.require("wecom_corpid"),
                  "corpsecret": self.settings.require("wecom_secret")}
        return _parse(await self.http.request("GET", url, params=params), GETTOKEN)
