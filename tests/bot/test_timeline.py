"""GET /admin/prospects/{id}/timeline: everything a person did across their identities and
merged records, once each, newest first, each line in Chinese as a salesperson reads it; paged
with `limit` and `before`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from bot.sandbox import Sandbox, events
from bot.sandbox.records import new_openid
from models import Interaction, Prospect, ProspectMerge
from tests.bot.kit import eventually
from tests.bot.test_admin_codes import AUTH, error, issue, people
from tests.handlers.test_one_person import UNIONID, follow, the_one
from tests.miniprogram_api.test_content import (
    earlier,
    material,
    open_read,
    settled,
    share_of,
    step,
    view,
)
from tests.miniprogram_api.test_person import bind, consent, log_in

EXTERNAL = "wmTimelineTimelineTimeline0001"
TITLE = "2026 制造业白皮书"


async def timeline(client: Any, prospect_id: int, **params: Any) -> dict[str, Any]:
    response = await client.get(f"/admin/prospects/{prospect_id}/timeline", headers=AUTH,
                                params={k: str(v) for k, v in params.items()})
    body = await response.json()
    assert response.status == 200, body
    assert set(body) == {"items", "next"}
    return dict(body)


async def everything(client: Any, prospect_id: int, limit: int) -> list[dict[str, Any]]:
    """Every page, following `next` until it is null."""
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": limit}
    while True:
        page = await timeline(client, prospect_id, **params)
        assert len(page["items"]) <= limit
        items += page["items"]
        if page["next"] is None:
            return items
        assert page["items"] and page["next"] == page["items"][-1]["id"]
        params["before"] = page["next"]


async def oa_push(client: Any, wechat: Sandbox, event: dict[str, Any]) -> None:
    delivery = await wechat.push_oa(str(client.make_url("/wechat/oa")), event)
    assert delivery.ok


def texts(page: dict[str, Any]) -> list[str]:
    return [item["text"] for item in page["items"]]


async def test_one_persons_timeline_across_identities_and_merges(client, wechat):
    ids = await people()
    booth = await issue(client, kind="booth", channel="oa", campaign="2026 工博会",
                        salesperson_id=ids["wang"])
    doc = await material(client, TITLE)
    openid = new_openid()
    wechat.add_follower(openid, UNIONID, subscribed=False)  # user/info knows their UnionID

    # the OA: a follow without a code, an unfollow, then the booth's code
    await oa_push(client, wechat, events.subscribe(openid))
    person = await the_one([("oa_openid", openid), ("unionid", UNIONID)])
    await settled(client)
    await oa_push(client, wechat, events.unsubscribe(openid))
    await settled(client)
    await follow(client, wechat, booth, openid)
    await settled(client)
    # the mini-program, with the same UnionID: the same person
    me = await log_in(client, wechat, unionid=UNIONID)
    assert me.prospect_id == person
    await consent(client, me, name="张伟", title="市场总监", company_size="500-999")
    await bind(client, wechat, me)
    await settled(client)
    # WeCom: a contact whose UnionID WeChat gives: another record at first, then merged in
    wechat.add_external_contact(EXTERNAL, name="张伟", unionid=UNIONID, userid="wangfang")
    delivery = await wechat.push_wecom(
        str(client.make_url("/wechat/wecom")),
        events.external_contact("add_external_contact", "wangfang", EXTERNAL))
    assert delivery.ok
    assert await the_one([("external_userid", EXTERNAL), ("unionid", UNIONID)]) == person
    await settled(client)
    # a second mini-program record (no UnionID) with the same phone: merged in
    other = await log_in(client, wechat)
    assert other.prospect_id != person
    await consent(client, other)
    await bind(client, wechat, other)
    await settled(client)
    # a salesperson's share read for 45 seconds to three quarters
    token = await share_of(client, doc["id"], ids["wang"])
    own = (await view(client, me, doc["id"], token))["share"]
    read_id = await open_read(client, me, doc["id"], share=token)
    await earlier(read_id, hours=1)
    await step(client, me, read_id, progress=0.5)
    await earlier(read_id, seconds=15)
    await step(client, me, read_id, "close", progress=0.75)
    await settled(client)
    # someone else opening their share: they passed it on
    friend = await log_in(client, wechat)
    await view(client, friend, doc["id"], own)
    await open_read(client, friend, doc["id"], share=own)
    await settled(client)

    assert await Prospect.filter(merged_into_id=None).count() == 2  # the person, the friend
    merges = await ProspectMerge.all().order_by("id").values_list("merged_id", "reason")
    assert [reason for _, reason in merges] == ["same unionid", "same phone"]
    assert merges[1][0] == other.prospect_id
    expected = [
        ("mp.forward", f"转发《{TITLE}》给一位新读者"),
        ("mp.read", f"阅读《{TITLE}》 45秒 75%（王芳 分享）"),
        ("mp.phone", "绑定手机 138****8000"),
        ("mp.profile", "填写资料"),
        ("mp.login", "打开小程序"),
        ("event.change_external_contact.add_external_contact", "添加企业微信 王芳"),
        ("mp.phone", "绑定手机 138****8000"),
        ("mp.profile", "填写资料（职位：市场总监，规模：500-999）"),
        ("mp.login", "打开小程序"),
        ("event.subscribe", "扫码「2026 工博会」关注公众号"),
        ("event.unsubscribe", "取消关注公众号"),
        ("event.subscribe", "关注公众号"),
    ]
    page = await timeline(client, person)
    assert page["next"] is None
    assert [(item["kind"], item["text"]) for item in page["items"]] == expected
    stored = await Interaction.exclude(prospect_id=friend.prospect_id).order_by(
        "-id").values_list("id", flat=True)
    assert [item["id"] for item in page["items"]] == list(stored)  # each once, newest first
    moments = [datetime.fromisoformat(item["at"]) for item in page["items"]]
    assert moments == sorted(moments, reverse=True)
    for item in page["items"]:
        assert {"at", "kind", "text", "id", "source"} <= set(item)
        assert item["source"] == ("oa" if item["kind"].startswith("event.subscribe")
                                  or item["kind"] == "event.unsubscribe" else
                                  "wecom" if item["kind"].startswith("event.") else "mp")
    assert page["items"][9]["code_id"] == booth["id"]
    assert "13800138000" not in str(page)
    # every record's id, merged away or not, shows the one timeline; the friend's is their own
    for merged_id, _ in merges:
        assert await timeline(client, merged_id) == page
    assert texts(await timeline(client, friend.prospect_id)) == ["打开小程序"]

    # the consent withdrawn: the line says so, and the personal lines are erased
    response = await client.delete("/mp/profile", headers=me.headers)
    assert response.status == 204
    await settled(client)
    after = await timeline(client, person)
    assert texts(after)[0] == "撤回授权，个人资料已删除"
    assert after["items"][0]["kind"] == "mp.consent_withdrawn"
    assert texts(after)[1:] == [
        text if kind not in ("mp.phone", "mp.profile") else
        "绑定手机（已删除）" if kind == "mp.phone" else "填写资料（已删除）"
        for kind, text in expected]


async def _logins(client: Any, wechat: Sandbox, count: int) -> tuple[int, list[int]]:
    """A person who opened the mini-program `count` times, with a stranger's logins between."""
    openid, stranger = new_openid(), new_openid()
    prospect_id = 0
    for _ in range(count):
        prospect_id = (await log_in(client, wechat, openid)).prospect_id
        await log_in(client, wechat, stranger)
    await settled(client)
    mine = await Interaction.filter(prospect_id=prospect_id).order_by("-id").values_list(
        "id", flat=True)
    assert len(mine) == count
    return prospect_id, list(mine)


@pytest.mark.parametrize("limit", [1, 2, 3, 7, 8, 200])
async def test_paging_shows_every_item_once(client, wechat, limit):
    prospect_id, mine = await _logins(client, wechat, 7)
    items = await everything(client, prospect_id, limit)
    assert [item["id"] for item in items] == mine
    assert all(item["text"] == "打开小程序" for item in items)


async def test_before_and_the_default_limit(client, wechat):
    prospect_id, mine = await _logins(client, wechat, 4)
    page = await timeline(client, prospect_id)
    assert [item["id"] for item in page["items"]] == mine and page["next"] is None
    page = await timeline(client, prospect_id, limit=2)
    assert [item["id"] for item in page["items"]] == mine[:2] and page["next"] == mine[1]
    page = await timeline(client, prospect_id, before=mine[1])
    assert [item["id"] for item in page["items"]] == mine[2:] and page["next"] is None
    page = await timeline(client, prospect_id, before=mine[0] + 1000)
    assert [item["id"] for item in page["items"]] == mine
    page = await timeline(client, prospect_id, before=mine[-1])
    assert page == {"items": [], "next": None}
    page = await timeline(client, prospect_id, limit=2, before=mine[2])
    assert [item["id"] for item in page["items"]] == mine[3:] and page["next"] is None


async def test_an_empty_timeline(client, wechat):
    prospect = await Prospect.create()  # known by a code's scan nobody has processed yet
    assert await timeline(client, prospect.id) == {"items": [], "next": None}


async def test_paging_past_interaction_ids_of_32_bits(client, wechat):
    """Interaction ids are 64-bit: a long-lived service hands out ids past 2**31 - 1, and the
    `next` it gives must work as `before`."""
    me = await log_in(client, wechat)
    await settled(client)
    now = datetime.now(UTC)
    late = await Interaction.create(id=2**31 + 7, source="mp", kind="mp.login",
                                    dedup_key="login:late", actor=me.openid, payload={},
                                    received_at=now, processed_at=now,
                                    prospect_id=me.prospect_id)
    first = await timeline(client, me.prospect_id, limit=1)
    assert [item["id"] for item in first["items"]] == [late.id] and first["next"] == late.id
    response = await client.get(f"/admin/prospects/{me.prospect_id}/timeline", headers=AUTH,
                                params={"limit": "1", "before": str(first["next"])})
    assert response.status == 200, await response.text()
    second = await response.json()
    assert len(second["items"]) == 1 and second["items"][0]["id"] < late.id
    assert second["next"] is None


async def test_an_unknown_prospect_is_404(client, wechat):
    for prospect_id in ("999999", "99999999999999"):
        response = await client.get(f"/admin/prospects/{prospect_id}/timeline", headers=AUTH)
        assert response.status == 404
        error(await response.json())


@pytest.mark.parametrize("params", [
    {"limit": "0"}, {"limit": "201"}, {"limit": "-1"}, {"limit": "abc"}, {"limit": ""},
    {"limit": "1.5"}, {"limit": "٣"}, {"limit": "+3"}, {"limit": "1e2"},
    {"before": "abc"}, {"before": "0"}, {"before": "-1"}, {"before": ""}, {"before": "1.5"},
    {"before": "٣"}, {"before": "0x10"},
    {"cursor": "abc"}, {"page": "2"},
])
async def test_bad_paging_parameters_are_400(client, wechat, params):
    me = await log_in(client, wechat)
    response = await client.get(f"/admin/prospects/{me.prospect_id}/timeline", headers=AUTH,
                                params=params)
    assert response.status == 400
    code, _ = error(await response.json())
    assert code == ("unknown_field" if {"cursor", "page"} & set(params) else "invalid_field")


async def test_bad_prospect_ids_and_no_token(client, wechat):
    me = await log_in(client, wechat)
    for raw in ("abc", "0", "-1", "1.0"):
        response = await client.get(f"/admin/prospects/{raw}/timeline", headers=AUTH)
        assert response.status == 400, raw
        error(await response.json())
    for headers in ({}, {"Authorization": "Bearer nope"}, me.headers):
        response = await client.get(f"/admin/prospects/{me.prospect_id}/timeline",
                                    headers=headers)
        assert response.status == 401


async def test_messages_menus_and_phones_in_them(client, wechat):
    """Every message and menu click is the person's (not only text), and a phone number in a
    message is shown masked."""
    openid = new_openid()
    await oa_push(client, wechat, events.subscribe(openid))
    await oa_push(client, wechat, events.text(openid, "我的手机 13800138000 请回电", msg_id=71))
    await oa_push(client, wechat, {"MsgType": "image", "FromUserName": openid, "MsgId": 72,
                                   "PicUrl": "http://example.com/p.jpg", "MediaId": "m1"})
    await oa_push(client, wechat, {"MsgType": "event", "Event": "CLICK",
                                   "FromUserName": openid, "EventKey": "资料"})

    async def all_theirs() -> int | None:
        rows = await Interaction.filter(prospect_id__isnull=False).count()
        return (await Prospect.get()).id if rows == 4 else None

    prospect_id = await eventually(all_theirs)
    shown = texts(await timeline(client, prospect_id))
    assert shown == ["点击菜单「资料」", "发送了一张图片", "发送消息：我的手机 138****8000 请回电",
                     "关注公众号"]
