"""The /sandbox/ control API, `run_sandbox` and `settings_for`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.sandbox import Sandbox, create_sandbox_app, run_sandbox
from bot.settings import Settings
from tests.conftest import base_settings


@pytest.fixture
async def http(wechat: Sandbox) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=wechat.url) as session:
        yield session


async def post(http: aiohttp.ClientSession, path: str, body: Any,
               status: int = 200) -> dict[str, Any]:
    async with http.post(path, json=body) as response:
        assert response.status == status, await response.text()
        return dict(await response.json())


async def test_codes_and_people(wechat: Sandbox, http: aiohttp.ClientSession) -> None:
    issued = await post(http, "/sandbox/login_code", {"unionid": "oUnionUnionUnionUnionUnion01"})
    assert wechat.mini_users[issued["openid"]] == "oUnionUnionUnionUnionUnion01"
    assert (await post(http, "/sandbox/phone_code", {"phone": "13800000001"}))["code"]
    follower = await post(http, "/sandbox/follower", {"openid": "o" * 28})
    assert wechat.is_follower(follower["openid"])
    contact = await post(http, "/sandbox/external_contact", {"name": "王五", "state": "p7"})
    assert contact["follow_user"][0]["state"] == "p7"
    assert (await post(http, "/sandbox/welcome_code", {}))["welcome_code"] in wechat.welcome_codes


async def test_bad_input_is_400(http: aiohttp.ClientSession) -> None:
    assert "phone" in (await post(http, "/sandbox/phone_code", {}, 400))["error"]
    assert (await post(http, "/sandbox/fail", {"path": "/x", "errcode": "1"}, 400))["error"]
    assert (await post(http, "/sandbox/push/oa", [], 400))["error"]
    assert (await post(http, "/sandbox/push/oa", {"callback": "http://x", "event": {}}, 400))
    async with http.post("/sandbox/fail", data="not json") as response:
        assert response.status == 400


async def test_fail_expire_calls_messages(wechat: Sandbox, http: aiohttp.ClientSession) -> None:
    assert (await post(http, "/sandbox/fail", {"path": "/cgi-bin/token", "errcode": -1,
                                               "times": 2}))["pending"] == 2
    async with http.get("/cgi-bin/token") as response:
        assert (await response.json())["errcode"] == -1
    async with http.get("/sandbox/calls", params={"path": "/cgi-bin/token"}) as response:
        assert [c["errcode"] for c in (await response.json())["calls"]] == [-1]
    wechat.fetch_wecom_token("wx5823bf96d3bd56c7", "wecom-test-secret")
    assert (await post(http, "/sandbox/expire_tokens", {}))["expired"] == 1
    async with http.get("/sandbox/messages") as response:
        assert await response.json() == {"template": [], "app": [], "welcome": [], "wxacode": []}


async def test_push_through_the_control_api(wechat: Sandbox, http: aiohttp.ClientSession) -> None:
    seen: list[dict[str, str]] = []

    async def callback(request: web.Request) -> web.Response:
        seen.append(dict(request.query))
        return web.Response(text="success")

    app = web.Application()
    app.router.add_post("/wx", callback)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        url = str(server.make_url("/wx"))
        pushed = await post(http, "/sandbox/push/oa", {
            "callback": url, "mode": "plain", "duplicates": 1,
            "event": {"FromUserName": "o" * 28, "Event": "subscribe"}})
        assert pushed["ok"] and [a["status"] for a in pushed["attempts"]] == [200, 200]
        assert wechat.is_follower("o" * 28) and "encrypt_type" not in seen[0]
        pushed = await post(http, "/sandbox/push/wecom", {"callback": url, "event": {
            "ChangeType": "add_external_contact", "UserID": "zhangsan",
            "ExternalUserID": "wmCustomer"}})
        assert pushed["ok"] and pushed["fields"]["WelcomeCode"] in wechat.welcome_codes
    finally:
        await server.close()


async def test_run_sandbox_serves_until_cancelled(capsys: pytest.CaptureFixture[str]) -> None:
    sandbox = Sandbox(base_settings())
    task = asyncio.create_task(run_sandbox(sandbox.settings, "127.0.0.1", 0, sandbox=sandbox))
    for _ in range(100):
        if sandbox.url:
            break
        await asyncio.sleep(0.01)
    assert sandbox.url and sandbox.url in capsys.readouterr().out
    settings = sandbox.settings_for(base_settings())
    assert settings.wechat_api_base == settings.wecom_api_base == sandbox.url
    async with aiohttp.ClientSession() as session, session.get(
            f"{settings.wecom_api_base}/cgi-bin/gettoken",
            params={"corpid": "wx5823bf96d3bd56c7", "corpsecret": "wecom-test-secret"}) as resp:
        assert (await resp.json())["errcode"] == 0
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_the_index_lists_every_control_route(wechat: Sandbox,
                                                   http: aiohttp.ClientSession) -> None:
    async with http.get("/sandbox/") as response:
        assert response.status == 200
        index = await response.json()
    listed = {(r["method"], r["path"]) for r in index["routes"]}
    served = {(r.method, r.resource.canonical) for r in create_sandbox_app(wechat).router.routes()
              if r.resource is not None and r.resource.canonical.startswith("/sandbox/")
              and r.method != "HEAD"}
    assert listed == served - {("GET", "/sandbox/"),
                               ("GET", "/sandbox/contact_way/{config_id}.jpg")}
    assert all(r["does"] for r in index["routes"])
    assert index["accounts"]["oa"] == "appid wx2c2769f8efd9abc2"


async def test_a_bare_sandbox_says_which_settings_it_lacks(
        capsys: pytest.CaptureFixture[str]) -> None:
    sandbox = Sandbox(Settings())
    task = asyncio.create_task(run_sandbox(sandbox.settings, "127.0.0.1", 0, sandbox=sandbox))
    for _ in range(100):
        if sandbox.url:
            break
        await asyncio.sleep(0.01)
    out = capsys.readouterr().out
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert "oa: none: set SCRM_OA_APPID and SCRM_OA_SECRET (else OA calls get 40013" in out
    assert "mini program: none: set SCRM_MP_APPID and SCRM_MP_SECRET" in out
    assert f"control routes: {sandbox.url}/sandbox/" in out
