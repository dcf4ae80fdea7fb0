"""Tokens, the common envelope, failure injection and the call log (docs/wechat.md §0, §3.1, §3.2,
§5.1)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from bot.sandbox import Sandbox
from bot.sandbox.records import Refusal
from tests.conftest import base_settings

OA_QUERY = {"grant_type": "client_credential", "appid": "wx2c2769f8efd9abc2",
            "secret": "oa-test-secret"}
WECOM_QUERY = {"corpid": "wx5823bf96d3bd56c7", "corpsecret": "wecom-test-secret"}


@pytest.fixture
async def http(wechat: Sandbox) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=wechat.url) as session:
        yield session


async def get(http: aiohttp.ClientSession, path: str, **params: Any) -> dict[str, Any]:
    async with http.get(path, params=params) as response:
        assert response.status == 200
        return dict(await response.json())


async def user_info(http: aiohttp.ClientSession, token: str) -> int:
    body = await get(http, "/cgi-bin/user/info", access_token=token, openid="o" * 28)
    return int(body.get("errcode", 0))


async def test_token_rotates_and_the_previous_one_lives_five_minutes(
        wechat: Sandbox, http: aiohttp.ClientSession) -> None:
    first = await get(http, "/cgi-bin/token", **OA_QUERY)
    assert set(first) == {"access_token", "expires_in"} and first["expires_in"] == 7200
    second = await get(http, "/cgi-bin/token", **OA_QUERY)
    assert second["access_token"] != first["access_token"]
    assert await user_info(http, first["access_token"]) == 0
    wechat.advance(301)
    assert await user_info(http, first["access_token"]) == 40001
    assert await user_info(http, second["access_token"]) == 0
    wechat.advance(7200)
    assert await user_info(http, second["access_token"]) == 42001


async def test_token_errors(wechat: Sandbox, http: aiohttp.ClientSession) -> None:
    assert (await get(http, "/cgi-bin/token", **{**OA_QUERY, "appid": "wxnope"}))["errcode"] == (
        40013)
    assert (await get(http, "/cgi-bin/token", **{**OA_QUERY, "secret": "x"}))["errcode"] == 40001
    assert (await get(http, "/cgi-bin/token", **{**OA_QUERY, "grant_type": "x"}))[
        "errcode"] == 40002
    missing = await get(http, "/cgi-bin/user/info", openid="o" * 28)
    assert missing["errcode"] == 41001 and " rid: " in missing["errmsg"]
    assert await user_info(http, "garbage") == 40014


def test_unconfigured_platform_refuses() -> None:
    sandbox = Sandbox(base_settings(mp_appid=None, wecom_secret=None))
    with pytest.raises(Refusal, match="40013"):
        sandbox.fetch_token("wx4f4bc4dec97d474b", "mp-test-secret", "client_credential")
    with pytest.raises(Refusal, match="40001"):
        sandbox.fetch_wecom_token("wx5823bf96d3bd56c7", "wecom-test-secret")


async def test_daily_token_quota(wechat: Sandbox, http: aiohttp.ClientSession) -> None:
    wechat.token_daily_limit = 2
    await get(http, "/cgi-bin/token", **OA_QUERY)
    await get(http, "/cgi-bin/token", **OA_QUERY)
    refused = await get(http, "/cgi-bin/token", **OA_QUERY)
    assert refused["errcode"] == 45009 and "getStableAccessToken" in refused["errmsg"]
    wechat.advance(86400)
    assert "access_token" in await get(http, "/cgi-bin/token", **OA_QUERY)


async def test_stable_token(wechat: Sandbox, http: aiohttp.ClientSession) -> None:
    body = {k: v for k, v in OA_QUERY.items()}

    async def stable(**extra: Any) -> dict[str, Any]:
        async with http.post("/cgi-bin/stable_token", json={**body, **extra}) as response:
            return dict(await response.json())

    first, again = await stable(), await stable()
    assert first["access_token"] == again["access_token"] and "errcode" not in first
    classic = await get(http, "/cgi-bin/token", **OA_QUERY)
    assert classic["access_token"] != first["access_token"]
    assert await user_info(http, first["access_token"]) == 0  # isolated from cgi-bin/token
    wechat.advance(7200 - 299)
    renewed = await stable()
    assert renewed["access_token"] != first["access_token"]
    assert await user_info(http, first["access_token"]) == 0  # valid until its own expiry
    forced = await stable(force_refresh=True)
    assert await user_info(http, renewed["access_token"]) == 40001
    assert (await stable(force_refresh=True))["errcode"] == 45011  # 30 s apart
    assert await user_info(http, forced["access_token"]) == 0
    async with http.post("/cgi-bin/stable_token", data="appid=x") as response:
        assert (await response.json())["errcode"] == 47001


async def test_wecom_token_is_stable_per_secret(wechat: Sandbox,
                                                http: aiohttp.ClientSession) -> None:
    first, second = (await get(http, "/cgi-bin/gettoken", **WECOM_QUERY),
                     await get(http, "/cgi-bin/gettoken", **WECOM_QUERY))
    assert first["errcode"] == 0 and first["access_token"] == second["access_token"]
    assert wechat.expire_tokens() == 1
    refused = await get(http, "/cgi-bin/externalcontact/get", access_token=first["access_token"],
                        external_userid="wmx")
    assert refused["errcode"] == 42001 and "more info at" in refused["errmsg"]
    third = await get(http, "/cgi-bin/gettoken", **WECOM_QUERY)
    assert third["access_token"] != first["access_token"]
    bad = await get(http, "/cgi-bin/gettoken", **{**WECOM_QUERY, "corpsecret": "x"})
    assert bad["errcode"] == 40001


async def test_tokens_belong_to_their_platform(wechat: Sandbox,
                                               http: aiohttp.ClientSession) -> None:
    wecom = (await get(http, "/cgi-bin/gettoken", **WECOM_QUERY))["access_token"]
    mp = wechat.fetch_token("wx4f4bc4dec97d474b", "mp-test-secret", "client_credential").value
    assert await user_info(http, wecom) == 40014
    assert await user_info(http, mp) == 48001


async def test_failure_injection_and_call_log(wechat: Sandbox,
                                              http: aiohttp.ClientSession) -> None:
    wechat.fail("/cgi-bin/token", -1, times=2)
    assert (await get(http, "/cgi-bin/token", **OA_QUERY))["errcode"] == -1
    assert (await get(http, "/cgi-bin/token", **OA_QUERY))["errcode"] == -1
    token = (await get(http, "/cgi-bin/token", **OA_QUERY))["access_token"]
    wechat.fail("/cgi-bin/user/info", 45009, errmsg="custom")
    refused = await get(http, "/cgi-bin/user/info", access_token=token, openid="o" * 28)
    assert refused["errcode"] == 45009 and refused["errmsg"].startswith("custom rid: ")
    calls = wechat.calls_to("/cgi-bin/token")
    assert [c.errcode for c in calls] == [-1, -1, 0] and wechat.count("/cgi-bin/token") == 3
    assert calls[0].query == {**OA_QUERY, "secret": "***"}
    info = wechat.calls_to("/cgi-bin/user/info")[0]
    assert info.query == {"openid": "o" * 28} and info.method == "GET"


async def test_method_and_body_rules(wechat: Sandbox, http: aiohttp.ClientSession) -> None:
    token = wechat.fetch_token("wx2c2769f8efd9abc2", "oa-test-secret", "client_credential").value
    assert (await get(http, "/cgi-bin/qrcode/create", access_token=token))["errcode"] == 43002
    async with http.post("/cgi-bin/qrcode/create", params={"access_token": token},
                         data="action_name=QR_SCENE") as response:
        assert response.headers["Content-Type"] == "application/json; encoding=utf-8"
        assert (await response.json())["errcode"] == 47001
    async with http.post("/cgi-bin/qrcode/create", json={"access_token": token}) as response:
        assert (await response.json())["errcode"] == 41001  # the token goes in the query only
    assert wechat.calls[-1].json == {}
