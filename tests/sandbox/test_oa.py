"""Official Account paths: QR codes, user/info, template messages, tags (docs/wechat.md §3)."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from PIL import Image

from bot.sandbox import Sandbox

FOLLOWER = "oFollowerFollowerFollower001"
TEMPLATE = "tpl-opportunity-0001"


@pytest.fixture
async def oa(wechat: Sandbox) -> AsyncIterator[OA]:
    async with aiohttp.ClientSession(base_url=wechat.url) as session:
        token = wechat.fetch_token("wx2c2769f8efd9abc2", "oa-test-secret", "client_credential")
        yield OA(session, token.value)


class OA:
    def __init__(self, session: aiohttp.ClientSession, token: str):
        self.session, self.token = session, token

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        async with self.session.post(path, params={"access_token": self.token},
                                     json=body) as response:
            return dict(await response.json())

    async def get(self, path: str, **params: Any) -> dict[str, Any]:
        async with self.session.get(path, params={"access_token": self.token, **params}) as resp:
            return dict(await resp.json())

    async def qrcode(self, action: str, scene: dict[str, Any] | None,
                     **extra: Any) -> dict[str, Any]:
        info = {} if scene is None else {"scene": scene}
        return await self.post("/cgi-bin/qrcode/create",
                               {"action_name": action, "action_info": info, **extra})


async def test_temporary_qrcode_and_its_image(wechat: Sandbox, oa: OA) -> None:
    code = await oa.qrcode("QR_STR_SCENE", {"scene_str": "partner:7"}, expire_seconds=3600)
    assert set(code) == {"ticket", "url", "expire_seconds"} and code["expire_seconds"] == 3600
    assert (await oa.qrcode("QR_SCENE", {"scene_id": 9}))["expire_seconds"] == 60
    async with oa.session.get("/cgi-bin/showqrcode", params={"ticket": code["ticket"]}) as resp:
        assert resp.status == 200 and resp.content_type == "image/jpeg"
        assert Image.open(io.BytesIO(await resp.read())).format == "JPEG"
    async with oa.session.get("/cgi-bin/showqrcode", params={"ticket": "nope"}) as resp:
        assert resp.status == 404
    wechat.advance(3601)
    async with oa.session.get("/cgi-bin/showqrcode", params={"ticket": code["ticket"]}) as resp:
        assert resp.status == 404


@pytest.mark.parametrize(("action", "scene", "extra", "errcode"), [
    ("QR_NOPE", {"scene_id": 1}, {}, 40052),
    ("QR_SCENE", {"scene_id": 0}, {}, 40053),
    ("QR_SCENE", {"scene_id": "1"}, {}, 40053),
    ("QR_LIMIT_SCENE", {"scene_id": 100_001}, {}, 40053),
    ("QR_LIMIT_STR_SCENE", {"scene_str": ""}, {}, 40053),
    ("QR_STR_SCENE", {"scene_str": "x" * 65}, {}, 40053),
    ("QR_SCENE", {"scene_id": 1}, {"expire_seconds": 2_592_001}, 40053),
])
async def test_qrcode_validation(oa: OA, action: str, scene: dict[str, Any],
                                 extra: dict[str, Any], errcode: int) -> None:
    assert (await oa.qrcode(action, scene, **extra))["errcode"] == errcode


async def test_permanent_codes_are_counted(wechat: Sandbox, oa: OA) -> None:
    wechat.permanent_qr_limit = 2
    first = await oa.qrcode("QR_LIMIT_SCENE", {"scene_id": 1})
    assert "expire_seconds" not in first
    assert (await oa.qrcode("QR_LIMIT_SCENE", {"scene_id": 1}))["ticket"] == first["ticket"]
    await oa.qrcode("QR_LIMIT_STR_SCENE", {"scene_str": "s"})
    assert (await oa.qrcode("QR_LIMIT_SCENE", {"scene_id": 2}))["errcode"] == 45029
    # without the "scene" wrapper WeChat still issues a code, for scene 0
    assert wechat.qrcodes[(await oa.qrcode("QR_SCENE", None))["ticket"]].scene == 0


async def test_user_info(wechat: Sandbox, oa: OA) -> None:
    assert await oa.get("/cgi-bin/user/info", openid=FOLLOWER) == {
        "subscribe": 0, "openid": FOLLOWER}
    wechat.add_follower(FOLLOWER, "oUnionUnionUnionUnionUnion01", scene="ADD_SCENE_QR_CODE",
                        qr_scene_str="partner:7")
    info = await oa.get("/cgi-bin/user/info", openid=FOLLOWER, lang="zh_CN")
    assert info["subscribe"] == 1 and info["unionid"] == "oUnionUnionUnionUnionUnion01"
    assert (info["subscribe_scene"], info["qr_scene"], info["qr_scene_str"]) == (
        "ADD_SCENE_QR_CODE", 0, "partner:7")
    assert "errcode" not in info
    assert (await oa.get("/cgi-bin/user/info", openid="short"))["errcode"] == 40003


def template(touser: str = FOLLOWER, **extra: Any) -> dict[str, Any]:
    return {"touser": touser, "template_id": TEMPLATE,
            "data": {"thing1": {"value": "采购意向"}}, **extra}


async def test_template_send_rules(wechat: Sandbox, oa: OA) -> None:
    assert (await oa.post("/cgi-bin/message/template/send", template()))["errcode"] == 43004
    wechat.add_follower(FOLLOWER)
    unknown = template(template_id="tpl-nope")
    assert (await oa.post("/cgi-bin/message/template/send", unknown))["errcode"] == 40037
    first = await oa.post("/cgi-bin/message/template/send", template())
    second = await oa.post("/cgi-bin/message/template/send", template())
    assert first["errcode"] == 0 and second["msgid"] == first["msgid"] + 1
    assert [m["msgid"] for m in wechat.template_messages] == [first["msgid"], second["msgid"]]
    assert wechat.template_messages[0]["data"] == {"thing1": {"value": "采购意向"}}


async def test_template_client_msg_id_and_quota(wechat: Sandbox, oa: OA) -> None:
    wechat.add_follower(FOLLOWER)
    wechat.template_daily_limit = 2
    # 01:00 in China today, so that the 601 s below stay within one quota day (WeChat's day is
    # China's); at 23:50 the quota reset under the test. Earlier: the token stays valid.
    wechat.advance(3600 - (wechat.clock() + 8 * 3600) % 86400)
    body = template(client_msg_id="opp-1")
    first = await oa.post("/cgi-bin/message/template/send", body)
    assert (await oa.post("/cgi-bin/message/template/send", body))["msgid"] == first["msgid"]
    assert len(wechat.template_messages) == 1
    wechat.advance(601)
    assert (await oa.post("/cgi-bin/message/template/send", body))["msgid"] != first["msgid"]
    assert (await oa.post("/cgi-bin/message/template/send", template()))["errcode"] == 45009


async def test_tags(wechat: Sandbox, oa: OA) -> None:
    created = await oa.post("/cgi-bin/tags/create", {"tag": {"name": "广东"}})
    tag_id = created["tag"]["id"]
    assert (await oa.post("/cgi-bin/tags/create", {"tag": {"name": "广东"}}))["errcode"] == 45157
    tagged = await oa.post("/cgi-bin/tags/members/batchtagging",
                           {"openid_list": [FOLLOWER], "tagid": tag_id})
    assert tagged == {"errcode": 0, "errmsg": "ok"}
    assert (await oa.get("/cgi-bin/tags/get"))["tags"] == [
        {"id": tag_id, "name": "广东", "count": 1}]
    assert (await oa.post("/cgi-bin/tags/members/batchtagging",
                          {"openid_list": [FOLLOWER], "tagid": 999}))["errcode"] == 45159
    wechat.add_follower(FOLLOWER)
    assert (await oa.get("/cgi-bin/user/info", openid=FOLLOWER))["tagid_list"] == [tag_id]
