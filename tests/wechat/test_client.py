"""The core of the async client: errcodes, the one refresh-and-retry, binary answers, transport
failures, missing settings and what never reaches a log."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.errors import (
    InvalidArgument,
    InvalidCredential,
    MissingSetting,
    QuotaExceeded,
    SystemBusy,
    WeChatAPIError,
)
from bot.logs import scrub as redact
from bot.privacy import mask_phone
from bot.sandbox import Sandbox
from bot.store import MemoryStore, Store
from bot.wechat import WeChat, WeChatHTTP, WeChatTransportError
from tests.conftest import base_settings

QR = "/cgi-bin/qrcode/create"
JPEG = b"\xff\xd8"


@pytest.fixture
async def wx(wechat: Sandbox, store: Store) -> AsyncIterator[WeChat]:
    async with aiohttp.ClientSession() as session:
        yield WeChat(wechat.settings_for(base_settings()), store, session)


# --- errcodes -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("errcode", "kind"), [
    (45009, QuotaExceeded), (45011, QuotaExceeded), (-1, SystemBusy), (40053, InvalidArgument),
    (48001, WeChatAPIError),
])
async def test_errcode_becomes_typed_exception(wx: WeChat, wechat: Sandbox, errcode: int,
                                               kind: type[WeChatAPIError]) -> None:
    wechat.fail(QR, errcode)
    with pytest.raises(kind) as caught:
        await wx.oa.create_qrcode("booth", permanent=False)
    assert type(caught.value) is kind
    assert caught.value.errcode == errcode
    assert caught.value.path == QR
    assert "rid:" in caught.value.errmsg  # WeChat's own errmsg, kept for the logs


async def test_wechat_validation_is_typed(wx: WeChat) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await wx.oa.create_qrcode("x" * 65, permanent=True)
    assert caught.value.errcode == 40053


async def test_missing_errcode_is_success(wx: WeChat, wechat: Sandbox) -> None:
    result = await wx.oa.create_qrcode(42, permanent=False, expire_seconds=300)
    assert "errcode" not in result  # qrcode/create answers no errcode at all on success
    assert result["ticket"] in wechat.qrcodes
    assert result["expire_seconds"] == 300


# --- one refresh, one retry -----------------------------------------------------------------------

@pytest.mark.parametrize("errcode", [40001, 40014, 42001])
async def test_token_error_refreshes_and_retries_once(wx: WeChat, wechat: Sandbox,
                                                      errcode: int) -> None:
    await wx.oa.create_qrcode("warm-up", permanent=False)
    before = await wx.oa_token.token()
    wechat.fail(QR, errcode)
    result = await wx.oa.create_qrcode("booth", permanent=False)
    assert result["ticket"]
    assert [c.errcode for c in wechat.calls_to(QR)] == [0, errcode, 0]
    assert await wx.oa_token.token() != before


async def test_refused_twice_raises_without_looping(wx: WeChat, wechat: Sandbox) -> None:
    wechat.fail(QR, 40001, times=5)
    with pytest.raises(InvalidCredential) as caught:
        await wx.oa.create_qrcode("booth", permanent=False)
    assert caught.value.errcode == 40001
    assert wechat.count(QR) == 2
    assert len(wechat.failures[QR]) == 3


async def test_token_errors_of_token_free_calls_are_not_retried(wx: WeChat,
                                                                wechat: Sandbox) -> None:
    wechat.fail("/sns/jscode2session", 40001)
    with pytest.raises(InvalidCredential):
        await wx.mp.code_to_session(wechat.issue_login_code())
    assert wechat.count("/sns/jscode2session") == 1
    assert wechat.count("/cgi-bin/stable_token") == 0


# --- binary endpoints -----------------------------------------------------------------------------

async def test_image_answer_is_bytes(wx: WeChat) -> None:
    image = await wx.mp.get_unlimited_code("c=42", "pages/index/index")
    assert image.startswith(JPEG)


async def test_json_answer_of_binary_endpoint_is_an_error(wx: WeChat) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await wx.mp.get_unlimited_code("c=42", "pages/unpublished/index")
    assert caught.value.errcode == 41030


async def test_binary_endpoint_retries_on_expired_token(wx: WeChat, wechat: Sandbox) -> None:
    await wx.mp.get_unlimited_code("c=1", "pages/index/index")
    wechat.expire_tokens()
    assert (await wx.mp.get_unlimited_code("c=2", "pages/index/index")).startswith(JPEG)
    assert [c.errcode for c in wechat.calls_to("/wxa/getwxacodeunlimit")] == [0, 42001, 0]


# --- missing settings -----------------------------------------------------------------------------

Call = Callable[[WeChat, Sandbox], Awaitable[Any]]
CALLS: dict[str, Call] = {
    "user_info": lambda w, s: w.oa.user_info("o6_bmjrPTlm6_2sgVt7hMZOPfL2M"),
    "code_to_session": lambda w, s: w.mp.code_to_session(s.issue_login_code()),
    "get_phone_number": lambda w, s: w.mp.get_phone_number(s.issue_phone_code("13800138000")),
    "get_external_contact": lambda w, s: w.wecom.get_external_contact("wmABC"),
    "send_app_message": lambda w, s: w.wecom.send_app_message(["zhangsan"], text="hi"),
}


@pytest.mark.parametrize(("missing", "call", "variable"), [
    ("oa_secret", "user_info", "SCRM_OA_SECRET"),
    ("oa_appid", "user_info", "SCRM_OA_APPID"),
    ("mp_secret", "code_to_session", "SCRM_MP_SECRET"),
    ("mp_appid", "get_phone_number", "SCRM_MP_APPID"),
    ("wecom_secret", "get_external_contact", "SCRM_WECOM_SECRET"),
    ("wecom_corpid", "get_external_contact", "SCRM_WECOM_CORPID"),
    ("wecom_agent_id", "send_app_message", "SCRM_WECOM_AGENT_ID"),
])
async def test_missing_setting_is_named(wechat: Sandbox, missing: str, call: str,
                                        variable: str) -> None:
    settings = wechat.settings_for(base_settings(**{missing: None}))
    async with aiohttp.ClientSession() as session:
        wx = WeChat(settings, MemoryStore(), session)
        with pytest.raises(MissingSetting) as caught:
            await CALLS[call](wx, wechat)
    assert caught.value.variable == variable
    assert variable in caught.value.message
    assert wechat.calls == []


# --- transport failures and the shape of a request ------------------------------------------------

class FixedToken:
    name = "test:fixed"

    async def token(self) -> str:
        return "ACCESS-TOKEN-123"

    async def refresh(self, stale: str) -> str:
        return "ACCESS-TOKEN-456"


@pytest.fixture
async def odd() -> AsyncIterator[tuple[str, list[web.Request], list[bytes]]]:
    """A server answering the ways WeChat should not."""
    seen: list[web.Request] = []
    bodies: list[bytes] = []

    async def echo(request: web.Request) -> web.Response:
        seen.append(request)
        bodies.append(await request.read())
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(2)
        return web.json_response({})

    def answer(response: web.Response) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handler(request: web.Request) -> web.Response:
            return response
        return handler

    app = web.Application()
    app.router.add_post("/echo", echo)
    app.router.add_get("/gateway", answer(web.Response(status=502, text="<html>bad</html>")))
    app.router.add_get("/html", answer(web.Response(text="<html>hello</html>")))
    app.router.add_get("/list", answer(web.json_response([1, 2])))
    app.router.add_get("/slow", slow)
    app.router.add_post("/json-not-image", answer(web.json_response({"ok": True})))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/"), seen, bodies
    finally:
        await server.close()


async def test_request_shape(odd: tuple[str, list[web.Request], list[bytes]]) -> None:
    url, seen, bodies = odd
    async with aiohttp.ClientSession() as session:
        result = await WeChatHTTP(session).request(
            "POST", url + "/echo", params={"lang": "zh_CN", "skip": None},
            json={"name": "广东", "n": 1}, token=FixedToken())
    assert result == {"errcode": 0, "errmsg": "ok"}
    request, body = seen[0], bodies[0]
    assert dict(request.query) == {"lang": "zh_CN", "access_token": "ACCESS-TOKEN-123"}
    assert request.content_type == "application/json"
    assert body == '{"name":"广东","n":1}'.encode()  # unescaped UTF-8, token not in the body
    assert "ACCESS-TOKEN" not in json.dumps(dict(request.headers))


@pytest.mark.parametrize(("method", "path", "raw", "http_status"), [
    ("GET", "/gateway", False, 502), ("GET", "/html", False, None), ("GET", "/list", False, None),
    ("POST", "/json-not-image", True, 200), ("GET", "/slow", False, None),
    ("GET", "/missing", False, 404),
])
async def test_bad_answers_are_transport_errors(odd: tuple[str, list[web.Request], list[bytes]],
                                                method: str, path: str, raw: bool,
                                                http_status: int | None) -> None:
    url = odd[0]
    async with aiohttp.ClientSession() as session:
        http = WeChatHTTP(session, timeout=0.3)
        with pytest.raises(WeChatTransportError) as caught:
            await http.request(method, url + path, token=FixedToken(), raw=raw)
    assert isinstance(caught.value, WeChatAPIError)
    assert caught.value.http_status == http_status
    assert caught.value.path == path
    assert "ACCESS-TOKEN" not in str(caught.value)


async def test_unreachable_wechat_is_a_transport_error() -> None:
    settings = base_settings(wechat_api_base="http://127.0.0.1:9")
    async with aiohttp.ClientSession() as session:
        with pytest.raises(WeChatTransportError) as caught:
            await WeChat(settings, MemoryStore(), session).oa.user_info("openid")
    assert caught.value.path == "/cgi-bin/stable_token"
    assert caught.value.status == 502


# --- logs -----------------------------------------------------------------------------------------

def test_redaction() -> None:
    assert mask_phone("13800138000") == "138****8000"
    line = redact("GET /x?access_token=abc&js_code=def&secret=s&errcode=40001 phone 13800138000")
    assert line == "GET /x?access_token=***&js_code=***&secret=***&errcode=40001 phone 138****8000"


async def test_logs_hold_no_credentials(wx: WeChat, wechat: Sandbox,
                                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="bot.wechat")
    session = await wx.mp.code_to_session(wechat.issue_login_code())
    phone = await wx.mp.get_phone_number(wechat.issue_phone_code("13800138000"))
    wechat.expire_tokens()
    await wx.mp.get_phone_number(wechat.issue_phone_code("13900139000"))
    await wx.oa.create_qrcode("booth", permanent=False)
    wechat.fail(QR, 40001, times=2)
    with pytest.raises(InvalidCredential):
        await wx.oa.create_qrcode("booth", permanent=False)
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("bot.wechat"))
    assert "refreshing once" in ours and "138****8000" in ours
    secrets = [*wechat.tokens, session["session_key"], phone["purePhoneNumber"], "13900139000",
               "oa-test-secret", "mp-test-secret", "access_token="]
    assert not [s for s in secrets if s in ours]
