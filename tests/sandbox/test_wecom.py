"""WeCom paths: contact ways, external contacts, welcome messages, app messages (§5)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from bot.sandbox import Sandbox

CUSTOMER = "woAJ2GCAAAXtWyujaWJHDDGi0mACH71w"


class WeCom:
    def __init__(self, session: aiohttp.ClientSession, token: str):
        self.session, self.token = session, token

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        async with self.session.post("/cgi-bin/" + path, params={"access_token": self.token},
                                     json=body) as response:
            return dict(await response.json())

    async def get(self, path: str, **params: Any) -> dict[str, Any]:
        async with self.session.get("/cgi-bin/" + path,
                                    params={"access_token": self.token, **params}) as resp:
            return dict(await resp.json())


@pytest.fixture
async def wecom(wechat: Sandbox) -> AsyncIterator[WeCom]:
    async with aiohttp.ClientSession(base_url=wechat.url) as session:
        token = wechat.fetch_wecom_token("wx5823bf96d3bd56c7", "wecom-test-secret").value
        yield WeCom(session, token)


async def test_add_contact_way(wechat: Sandbox, wecom: WeCom) -> None:
    way = await wecom.post("externalcontact/add_contact_way",
                           {"type": 1, "scene": 2, "state": "p7", "user": ["zhangsan"]})
    assert way["errcode"] == 0 and len(way["config_id"]) == 32
    async with wecom.session.get(way["qr_code"]) as response:
        assert response.status == 200 and response.content_type == "image/jpeg"
    button = await wecom.post("externalcontact/add_contact_way",
                              {"type": 1, "scene": 1, "user": ["zhangsan"]})
    assert "qr_code" not in button
    for body, errcode in [({"scene": 2, "user": ["a"]}, 41037),
                          ({"type": 1, "scene": 2, "user": ["a", "b"]}, 40058),
                          ({"type": 1, "scene": 2, "user": ["a"], "state": "s" * 31}, 40058),
                          ({"type": 3, "scene": 2, "user": ["a"]}, 40058)]:
        assert (await wecom.post("externalcontact/add_contact_way", body))["errcode"] == errcode
    wechat.members = {"zhangsan"}
    refused = await wecom.post("externalcontact/add_contact_way",
                               {"type": 2, "scene": 2, "user": ["zhangsan", "lisi"]})
    assert refused["errcode"] == 60011


async def test_external_contact_get(wechat: Sandbox, wecom: WeCom) -> None:
    assert (await wecom.get("externalcontact/get", external_userid=CUSTOMER))["errcode"] == 84061
    wechat.add_external_contact(CUSTOMER, name="王五", corp_name="某某制造",
                                unionid="oUnionUnionUnionUnionUnion01", state="p7")
    got = await wecom.get("externalcontact/get", external_userid=CUSTOMER)
    assert got["external_contact"]["name"] == "王五"
    assert got["external_contact"]["unionid"] == "oUnionUnionUnionUnionUnion01"
    assert got["follow_user"][0]["userid"] == "zhangsan"
    assert got["follow_user"][0]["state"] == "p7"


async def test_welcome_code_once_within_20_seconds(wechat: Sandbox, wecom: WeCom) -> None:
    body = {"text": {"content": "您好，我是您的专属顾问"}}
    code = wechat.welcome_code("zhangsan", CUSTOMER)
    assert await wecom.post("externalcontact/send_welcome_msg",
                            {"welcome_code": code, **body}) == {"errcode": 0, "errmsg": "ok"}
    again = await wecom.post("externalcontact/send_welcome_msg", {"welcome_code": code, **body})
    assert again["errcode"] == 41051
    assert wechat.welcome_messages[0]["external_userid"] == CUSTOMER
    late = wechat.welcome_code()
    wechat.advance(21)
    assert (await wecom.post("externalcontact/send_welcome_msg",
                             {"welcome_code": late, **body}))["errcode"] == 41051
    assert (await wecom.post("externalcontact/send_welcome_msg",
                             {"welcome_code": "nope", **body}))["errcode"] == 40058
    fresh = wechat.welcome_code()
    assert (await wecom.post("externalcontact/send_welcome_msg",
                             {"welcome_code": fresh}))["errcode"] == 44004


async def test_app_message(wechat: Sandbox, wecom: WeCom) -> None:
    body = {"touser": "zhangsan|LiSi", "msgtype": "text", "agentid": 1000002,
            "text": {"content": "新商机"}}
    sent = await wecom.post("message/send", body)
    assert sent["errcode"] == 0 and "invaliduser" not in sent and sent["msgid"]
    wechat.members = {"zhangsan"}
    partial = await wecom.post("message/send", body)
    assert partial["invaliduser"] == "lisi"
    assert wechat.app_messages[-1]["touser"] == ["zhangsan"]
    assert (await wecom.post("message/send", {**body, "touser": "nobody"}))["errcode"] == 81013
    assert (await wecom.post("message/send", {**body, "agentid": 1}))["errcode"] == 40056
