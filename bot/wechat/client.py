"""The one async way out to WeChat (OA, mini program, WeCom), on aiohttp.

wechatpy's HTTP client is synchronous: it must never run on the event loop, so every outbound call
goes through `WeChatHTTP.request`. Conventions it follows (docs/wechat.md §0): the
access_token only in the query string; JSON bodies as unescaped UTF-8; a missing errcode is success;
a non-zero errcode becomes the typed exception of `bot.errors.wechat_error`; 40001/40014/42001
refresh the token once and retry once.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, Literal, Protocol, overload

import aiohttp
from yarl import URL

from bot.errors import InvalidCredential, WeChatAPIError, wechat_error
from bot.logs import scrub

log = logging.getLogger("bot.wechat")

JSONDict = dict[str, Any]

class WeChatTransportError(WeChatAPIError):
    """No usable answer: a timeout, a failed connection, a non-200 status or an unreadable body.

    errcode is -1 (WeChat's "busy, retry later"); `http_status` is set when an answer arrived.
    """

    status, code = 502, "wechat_unavailable"

    def __init__(self, reason: str, *, path: str = "", http_status: int | None = None):
        super().__init__(-1, reason, path=path)
        self.http_status = http_status


class TokenSource(Protocol):
    """Where an access token comes from; implementations live in bot.wechat.tokens."""

    @property
    def name(self) -> str:
        """`kind:appid`, for logs and the store key."""
        ...

    async def token(self) -> str:
        """The current token (cached or fetched)."""
        ...

    async def refresh(self, stale: str) -> str:
        """WeChat refused `stale`: a token other than it, fetched only if nobody has yet."""
        ...


class WeChatHTTP:
    """Thin request/response layer over one shared aiohttp session."""

    def __init__(self, session: aiohttp.ClientSession, *, timeout: float = 10.0) -> None:
        self.session = session
        self.timeout = aiohttp.ClientTimeout(total=timeout)

    @overload
    async def request(self, method: str, url: str, *, params: dict[str, Any] | None = ...,
                      json: Any = ..., token: TokenSource | None = ...,
                      raw: Literal[False] = ...) -> JSONDict: ...

    @overload
    async def request(self, method: str, url: str, *, params: dict[str, Any] | None = ...,
                      json: Any = ..., token: TokenSource | None = ...,
                      raw: Literal[True]) -> bytes: ...

    async def request(self, method: str, url: str, *, params: dict[str, Any] | None = None,
                      json: Any = None, token: TokenSource | None = None,
                      raw: bool = False) -> JSONDict | bytes:
        """One call; `raw` for binary endpoints (image bytes on success, JSON on error)."""
        if token is None:
            return await self._send(method, url, params, json, None, raw)
        access = await token.token()
        try:
            return await self._send(method, url, params, json, access, raw)
        except InvalidCredential as exc:
            log.info("%s: WeChat refused the %s token (errcode %s); refreshing once",
                     _path(url), token.name, exc.errcode)
            access = await token.refresh(access)
        return await self._send(method, url, params, json, access, raw)

    async def _send(self, method: str, url: str, params: dict[str, Any] | None, body: Any,
                    access: str | None, raw: bool) -> JSONDict | bytes:
        path = _path(url)
        query = {k: v for k, v in (params or {}).items() if v is not None}
        if access is not None:
            query["access_token"] = access
        data: bytes | None = None
        headers: dict[str, str] = {}
        if body is not None:
            data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
            headers["Content-Type"] = "application/json; charset=utf-8"
        started = time.monotonic()
        try:
            async with self.session.request(method, url, params=query, data=data, headers=headers,
                                            timeout=self.timeout) as resp:
                status, content_type = resp.status, resp.content_type
                payload = await resp.read()
        except TimeoutError:
            log.warning("%s %s timed out after %.1fs", method, path, time.monotonic() - started)
            reason = f"timed out after {self.timeout.total}s"
            raise WeChatTransportError(reason, path=path) from None
        except aiohttp.ClientError as exc:
            reason = scrub(f"{type(exc).__name__}: {exc}")
            log.warning("%s %s failed: %s", method, path, reason)
            raise WeChatTransportError(reason, path=path) from None
        elapsed = (time.monotonic() - started) * 1000
        if status != 200:
            log.warning("%s %s -> HTTP %s in %.0fms", method, path, status, elapsed)
            raise WeChatTransportError(f"HTTP {status}", path=path, http_status=status)
        if raw and content_type.startswith("image/"):
            log.debug("%s %s -> %s (%d bytes) in %.0fms", method, path, content_type,
                      len(payload), elapsed)
            return payload
        result = _decode(payload, path)
        errcode = result.get("errcode")
        log.debug("%s %s -> errcode %s in %.0fms", method, path, errcode, elapsed)
        if errcode is not None and _int(errcode) != 0:
            raise wechat_error(_int(errcode), scrub(str(result.get("errmsg", ""))), path=path)
        if raw:
            raise WeChatTransportError(f"expected an image, got {content_type or 'no type'}",
                                       path=path, http_status=status)
        return result


def _path(url: str) -> str:
    """The part of a URL fit for logs and errors: the path, never the query string."""
    return URL(url).path


def _decode(payload: bytes, path: str) -> JSONDict:
    try:
        # WeChat sometimes puts raw control characters inside strings: strict=False accepts them.
        result = json.loads(payload.decode("utf-8"), strict=False)
    except (UnicodeDecodeError, ValueError):
        raise WeChatTransportError(f"answer is not JSON ({len(payload)} bytes)",
                                   path=path) from None
    if not isinstance(result, dict):
        raise WeChatTransportError("answer is not a JSON object", path=path)
    return result


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1
