"""Mini-program paths: login codes, phone codes, unlimited codes (docs/wechat.md §4)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from bot.sandbox import Sandbox

LOGIN = {"appid": "wx4f4bc4dec97d474b", "secret": "mp-test-secret",
         "grant_type": "authorization_code"}


@pytest.fixture
async def http(wechat: Sandbox) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=wechat.url) as session:
        yield session


async def login(http: aiohttp.ClientSession, code: str, **extra: str) -> dict[str, Any]:
    async with http.get("/sns/jscode2session", params={**LOGIN, "js_code": code, **extra}) as r:
        return dict(await r.json())


def mp_token(wechat: Sandbox) -> str:
    return wechat.fetch_token("wx4f4bc4dec97d474b", "mp-test-secret", "client_credential").value


async def test_login_codes_are_single_use(wechat: Sandbox, http: aiohttp.ClientSession) -> None:
    code = wechat.issue_login_code(unionid="oUnionUnionUnionUnionUnion01")
    session = await login(http, code)
    assert set(session) == {"openid", "session_key", "unionid"}
    assert re.fullmatch(r"[A-Za-z0-9_-]{28}", session["openid"])
    assert (await login(http, code))["errcode"] == 40163
    assert (await login(http, "unknown"))["errcode"] == 40029
    assert (await login(http, wechat.issue_login_code(), secret="x"))["errcode"] == 40125
    assert "unionid" not in await login(http, wechat.issue_login_code())
    late = wechat.issue_login_code()
    wechat.advance(301)
    assert (await login(http, late))["errcode"] == 40029


async def test_login_minute_limit(wechat: Sandbox, http: aiohttp.ClientSession) -> None:
    wechat.login_minute_limit = 2
    openid = "oMiniMiniMiniMiniMiniMini001"
    for _ in range(2):
        assert (await login(http, wechat.issue_login_code(openid)))["openid"] == openid
    blocked = wechat.issue_login_code(openid)
    assert (await login(http, blocked))["errcode"] == 45011
    wechat.advance(61)
    assert (await login(http, blocked))["openid"] == openid  # the refused code was not spent


async def test_phone_codes(wechat: Sandbox, http: aiohttp.ClientSession) -> None:
    code = wechat.issue_phone_code("13800000001")
    path, params = "/wxa/business/getuserphonenumber", {"access_token": mp_token(wechat)}
    async with http.post(path, params=params, json={"code": code}) as response:
        info = (await response.json())["phone_info"]
    assert (info["phoneNumber"], info["purePhoneNumber"], info["countryCode"]) == (
        "13800000001", "13800000001", "86")
    assert info["watermark"]["appid"] == "wx4f4bc4dec97d474b"
    for body in ({"code": code}, {"code": "nope"}, {}):
        async with http.post(path, params=params, json=body) as response:
            assert (await response.json())["errcode"] == 40029
    oa = wechat.fetch_token("wx2c2769f8efd9abc2", "oa-test-secret", "client_credential").value
    async with http.post(path, params={"access_token": oa}, json={"code": code}) as response:
        assert (await response.json())["errcode"] == 48001


@pytest.mark.parametrize(("body", "errcode"), [
    ({"scene": "a=1&b=2", "page": "pages/index/index"}, 0),
    ({"scene": "p7", "page": "pages/unpublished", "check_path": False}, 0),
    ({"scene": "x" * 32}, 0),
    ({"scene": "x" * 33}, 40169),
    ({"scene": ""}, 40169),
    ({}, 40169),
    ({"scene": "合作"}, 40129),
    ({"scene": "a%20b"}, 40129),
    ({"scene": "a", "page": "pages/unpublished"}, 41030),
    ({"scene": "a", "page": "/pages/index/index"}, 41030),
])
async def test_wxacode(wechat: Sandbox, http: aiohttp.ClientSession, body: dict[str, Any],
                       errcode: int) -> None:
    async with http.post("/wxa/getwxacodeunlimit", params={"access_token": mp_token(wechat)},
                         json=body) as response:
        if errcode == 0:
            assert response.headers["Content-Type"] == "image/jpeg"
            assert (await response.read())[:2] == b"\xff\xd8"
            assert wechat.wxacodes[-1]["scene"] == body["scene"]
        else:
            assert response.headers["Content-Type"] == "application/json; encoding=utf-8"
            assert (await response.json())["errcode"] == errcode


async def test_wxacode_form_body(wechat: Sandbox, http: aiohttp.ClientSession) -> None:
    async with http.post("/wxa/getwxacodeunlimit", params={"access_token": mp_token(wechat)},
                         data={"scene": "a"}) as response:
        assert (await response.json())["errcode"] == 40169
