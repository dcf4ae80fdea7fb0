"""What each API wrapper sends and returns, against the sandbox."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from bot.errors import InvalidArgument
from bot.sandbox import Sandbox
from bot.sandbox.records import new_openid
from bot.store import Store
from bot.wechat import WeChat, WeChatTransportError
from tests.conftest import base_settings

JPEG = b"\xff\xd8"


@pytest.fixture
async def wx(wechat: Sandbox, store: Store) -> AsyncIterator[WeChat]:
    async with aiohttp.ClientSession() as session:
        yield WeChat(wechat.settings_for(base_settings()), store, session)


# --- Official Account -----------------------------------------------------------------------------

@pytest.mark.parametrize(("scene", "permanent", "expire", "action", "inner"), [
    (123, False, 600, "QR_SCENE", {"scene_id": 123}),
    ("booth-1", False, None, "QR_STR_SCENE", {"scene_str": "booth-1"}),
    (7, True, None, "QR_LIMIT_SCENE", {"scene_id": 7}),
    ("展位", True, 600, "QR_LIMIT_STR_SCENE", {"scene_str": "展位"}),
])
async def test_create_qrcode(wx: WeChat, wechat: Sandbox, scene: str | int, permanent: bool,
                             expire: int | None, action: str, inner: dict[str, Any]) -> None:
    result = await wx.oa.create_qrcode(scene, permanent=permanent, expire_seconds=expire)
    sent = wechat.calls_to("/cgi-bin/qrcode/create")[0].json
    assert sent["action_name"] == action
    assert sent["action_info"] == {"scene": inner}
    assert sent.get("expire_seconds") == (None if permanent else expire)
    assert wechat.qrcodes[result["ticket"]].scene == scene
    assert ("expire_seconds" in result) is not permanent


async def test_qrcode_image(wx: WeChat, wechat: Sandbox) -> None:
    ticket = (await wx.oa.create_qrcode("booth", permanent=False))["ticket"]
    url = wx.oa.showqrcode_url(ticket)
    assert url.startswith(f"{wechat.url}/cgi-bin/showqrcode?ticket=")
    assert not set("+/=") & set(url.split("ticket=")[1])
    assert (await wx.oa.fetch_qrcode_image(ticket)).startswith(JPEG)
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        assert resp.status == 200  # the printed URL works as it is
    with pytest.raises(WeChatTransportError) as caught:
        await wx.oa.fetch_qrcode_image("gQunknown+ticket==")
    assert caught.value.http_status == 404


async def test_user_info(wx: WeChat, wechat: Sandbox) -> None:
    follower = wechat.add_follower(unionid="o" + "u" * 27, scene="ADD_SCENE_QR_CODE",
                                   qr_scene_str="booth-1")
    info = await wx.oa.user_info(follower.openid)
    assert info["subscribe"] == 1 and info["unionid"] == follower.unionid
    assert info["qr_scene_str"] == "booth-1"
    assert (await wx.oa.user_info(new_openid()))["subscribe"] == 0


async def test_send_template(wx: WeChat, wechat: Sandbox) -> None:
    openid = wechat.add_follower().openid
    template = str(base_settings().oa_opportunity_template_id)
    msgid = await wx.oa.send_template(
        openid, template, {"thing1": "巧克力", "time2": {"value": "2026年11月23日"}},
        miniprogram={"appid": "wx4f4bc4dec97d474b", "pagepath": "pages/index/index"},
        client_msg_id="opp-1")
    assert isinstance(msgid, int)
    sent = wechat.template_messages[-1]
    assert sent["msgid"] == msgid
    assert sent["data"] == {"thing1": {"value": "巧克力"}, "time2": {"value": "2026年11月23日"}}
    assert sent["client_msg_id"] == "opp-1" and sent["url"] is None
    with pytest.raises(InvalidArgument) as caught:
        await wx.oa.send_template(new_openid(), template, {"thing1": "x"})
    assert caught.value.errcode == 43004


async def test_tags(wx: WeChat, wechat: Sandbox) -> None:
    tag_id = await wx.oa.create_tag("广东")
    assert wechat.tags[tag_id] == "广东"
    openids = [new_openid() for _ in range(120)]
    await wx.oa.batch_tag(openids, tag_id)
    batches = wechat.calls_to("/cgi-bin/tags/members/batchtagging")
    assert [len(c.json["openid_list"]) for c in batches] == [50, 50, 20]
    assert all(tag_id in wechat.user_tags[o] for o in openids)


# --- mini program ---------------------------------------------------------------------------------

async def test_code_to_session(wx: WeChat, wechat: Sandbox) -> None:
    openid, unionid = new_openid(), new_openid()
    code = wechat.issue_login_code(openid, unionid)
    session = await wx.mp.code_to_session(code)
    assert session["openid"] == openid and session["unionid"] == unionid
    assert session["session_key"]
    call = wechat.calls_to("/sns/jscode2session")[0]
    assert call.query["grant_type"] == "authorization_code" and "access_token" not in call.query
    assert wechat.count("/cgi-bin/stable_token") == 0
    with pytest.raises(InvalidArgument) as caught:
        await wx.mp.code_to_session(code)
    assert caught.value.errcode == 40163


async def test_get_phone_number(wx: WeChat, wechat: Sandbox) -> None:
    info = await wx.mp.get_phone_number(wechat.issue_phone_code("13800138000"))
    assert info["purePhoneNumber"] == "13800138000"
    call = wechat.calls_to("/wxa/business/getuserphonenumber")[0]
    assert set(call.json) == {"code"} and "code" not in call.query


async def test_unlimited_code_options(wx: WeChat, wechat: Sandbox) -> None:
    image = await wx.mp.get_unlimited_code("c=9", "pages/draft/index", check_path=False,
                                           width=280, env_version="trial")
    assert image.startswith(JPEG)
    sent = wechat.calls_to("/wxa/getwxacodeunlimit")[0].json
    assert sent == {"scene": "c=9", "page": "pages/draft/index", "check_path": False,
                    "width": 280, "env_version": "trial"}


# --- WeCom ----------------------------------------------------------------------------------------

async def test_add_contact_way(wx: WeChat, wechat: Sandbox) -> None:
    way = await wx.wecom.add_contact_way(users=["zhangsan"], state="booth-1", remark="展会")
    assert set(way) == {"config_id", "qr_code"} and way["qr_code"]
    saved = wechat.contact_ways[way["config_id"]]
    assert (saved.type, saved.scene, saved.state, saved.skip_verify) == (1, 2, "booth-1", True)
    team = await wx.wecom.add_contact_way(users=["zhangsan", "lisi"], state="booth-2")
    assert wechat.contact_ways[team["config_id"]].type == 2
    with pytest.raises(InvalidArgument):
        await wx.wecom.add_contact_way(users=["zhangsan"], state="s" * 31)


async def test_get_external_contact(wx: WeChat, wechat: Sandbox) -> None:
    contact = wechat.add_external_contact(name="王五", state="booth-1")
    got = await wx.wecom.get_external_contact(contact.external_userid)
    assert got["external_contact"]["name"] == "王五"
    assert got["follow_user"][0]["state"] == "booth-1"
    with pytest.raises(InvalidArgument) as caught:
        await wx.wecom.get_external_contact("wm" + "x" * 30)
    assert caught.value.errcode == 84061


async def test_send_welcome_msg(wx: WeChat, wechat: Sandbox) -> None:
    code = wechat.welcome_code()
    link = {"msgtype": "link", "link": {"title": "白皮书", "url": "https://example.com/w"}}
    await wx.wecom.send_welcome_msg(code, "欢迎", [link])
    assert wechat.welcome_messages[-1]["text"] == {"content": "欢迎"}
    assert wechat.welcome_messages[-1]["attachments"] == [link]
    with pytest.raises(InvalidArgument) as caught:
        await wx.wecom.send_welcome_msg(code, "again")
    assert caught.value.errcode == 41051


async def test_send_app_message(wx: WeChat, wechat: Sandbox) -> None:
    result = await wx.wecom.send_app_message(["zhangsan", "Bad User!"], text="新商机")
    sent = wechat.app_messages[-1]["body"]
    assert sent["agentid"] == 1000002 and sent["touser"] == "zhangsan|Bad User!"
    assert sent["text"] == {"content": "新商机"}
    assert result["invaliduser"] == "bad user!"
    card = {"title": "新商机", "description": "张三 · 80 分", "url": "https://scrm.test/o/1"}
    await wx.wecom.send_app_message(["zhangsan"], textcard=card)
    assert wechat.app_messages[-1]["body"]["textcard"] == card
    with pytest.raises(ValueError):
        await wx.wecom.send_app_message(["zhangsan"])
