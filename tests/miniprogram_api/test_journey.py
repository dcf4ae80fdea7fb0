"""A booth visitor's whole journey is one prospect whose timeline shows all of it: the OA booth
code, the mini-program login (same UnionID), consent and profile, the phone, a salesperson's
shared whitepaper read to the end — and a second record with the same phone merged in."""

from __future__ import annotations

from typing import Any

from bot import keys
from bot.sandbox import Sandbox
from bot.sandbox.records import new_openid
from models import Prospect, ProspectMerge, Read
from tests.bot.kit import eventually
from tests.bot.test_admin_codes import AUTH, issue, people
from tests.handlers.test_one_person import UNIONID, follow, login

PHONE = "13800138000"


async def session(client: Any, wechat: Sandbox, openid: str,
                  unionid: str | None = UNIONID) -> dict[str, str]:
    response = await client.post("/mp/login", json={
        "code": wechat.issue_login_code(openid, unionid)})
    assert response.status == 200
    return {"Authorization": f"Bearer {(await response.json())['token']}"}


async def test_the_booth_visitor_is_one_prospect_with_a_timeline(client, wechat):
    ids = await people()
    booth = await issue(client, kind="booth", channel="oa", campaign="2026 展会",
                        salesperson_id=ids["wang"])
    whitepaper = await (await client.post("/admin/materials", headers=AUTH, json={
        "title": "2026 制造业白皮书", "kind": "whitepaper", "tags": ["白皮书:制造"]})).json()
    openid, mini = new_openid(), new_openid()

    await follow(client, wechat, booth, openid)
    me = await session(client, wechat, mini)
    # the phone needs the consent first
    response = await client.post("/mp/phone", headers=me,
                                 json={"code": wechat.issue_phone_code(PHONE)})
    assert response.status == 409
    assert (await response.json())["error"]["code"] == "consent_required"
    profile = await client.post("/mp/profile", headers=me, json={
        "consent_version": "2026-01", "name": "张伟", "company": "华东精密",
        "title": "市场总监", "company_size": "500-999", "email": "zw@example.com"})
    assert profile.status == 200
    shown = await profile.json()
    assert shown["title"] == "市场总监" and shown["consent_version"] == "2026-01"
    bound = await client.post("/mp/phone", headers=me,
                              json={"code": wechat.issue_phone_code(PHONE)})
    assert bound.status == 200 and await bound.json() == {"phone": "138****8000"}

    share = await client.post("/admin/shares", headers=AUTH, json={
        "material_id": whitepaper["id"], "salesperson_id": ids["wang"]})
    assert share.status == 201
    token = (await share.json())["share"]
    viewed = await client.get(f"/mp/materials/{whitepaper['id']}", params={"share": token},
                              headers=me)
    assert viewed.status == 200
    material = await viewed.json()
    assert material["shared_by"]["kind"] == "salesperson"
    assert material["card"]["name"] == "王芳" and material["share"] != token
    opened = await client.post("/mp/reads", headers=me, json={
        "material_id": whitepaper["id"], "action": "open", "share": token})
    assert opened.status == 200
    read_id = (await opened.json())["read_id"]
    await Read.filter(id=read_id).update(  # 3 minutes 20 seconds of heartbeats, as the server saw
        seconds=200.0)
    closed = await client.post("/mp/reads", headers=me, json={
        "action": "close", "read_id": read_id, "progress": 1.0})
    assert closed.status == 200

    [prospect] = await Prospect.filter(merged_into_id=None)

    async def read_finished() -> bool:
        await client.app[keys.DISPATCHER].drain(timeout=5)
        shown = await (await client.get(f"/admin/prospects/{prospect.id}",
                                        headers=AUTH)).json()
        return "白皮书:制造" in shown["tags"]

    assert await eventually(read_finished)
    detail = await (await client.get(f"/admin/prospects/{prospect.id}", headers=AUTH)).json()
    assert {i["kind"] for i in detail["identities"]} == {"oa_openid", "mp_openid", "unionid",
                                                           "phone"}
    assert detail["name"] == "张伟" and detail["title"] == "市场总监"
    timeline = await (await client.get(f"/admin/prospects/{prospect.id}/timeline",
                                       headers=AUTH)).json()
    texts = [item["text"] for item in timeline["items"]]
    assert texts[0].startswith("阅读《2026 制造业白皮书》 3分") and "100%（王芳 分享）" in texts[0]
    assert "绑定手机 138****8000" in texts
    assert any(t.startswith("填写资料（职位：市场总监") for t in texts)
    assert "打开小程序" in texts and texts[-1] == "扫码「2026 展会」关注公众号"

    # someone else's record with the same phone: one person
    other = await session(client, wechat, new_openid(), unionid=None)
    await client.post("/mp/profile", headers=other, json={"consent_version": "2026-01"})
    again = await client.post("/mp/phone", headers=other,
                              json={"code": wechat.issue_phone_code(PHONE)})
    assert again.status == 200
    assert await Prospect.filter(merged_into_id=None).count() == 1
    # (the follow's UnionID may also have merged a record, if the login came first)
    assert await ProspectMerge.filter(reason="same phone").count() == 1
    assert await login(client, wechat, mini) == prospect.id
