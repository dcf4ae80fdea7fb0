"""The admin API: bearer auth, creating people and materials, looking at stored prospects."""

from __future__ import annotations

from typing import Any

import pytest

from bot import keys
from bot.sandbox import events
from models import Identity, IdentityKind, Interaction, Material, Partner, Prospect, Salesperson
from tests.bot.kit import OPENID, eventually, service
from tests.conftest import ADMIN_TOKEN

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
PHONE = "13800138000"


def error(body: dict[str, Any]) -> str:
    assert set(body) == {"error"} and body["error"]["message"]
    return str(body["error"]["code"])


ROUTES = [("POST", "/admin/salespeople"), ("POST", "/admin/partners"),
          ("POST", "/admin/materials"), ("GET", "/admin/prospects?identity=oa_openid:x"),
          ("GET", "/admin/prospects/1"), ("GET", "/admin/opportunities")]


# --- authentication -----------------------------------------------------------------------------

@pytest.mark.parametrize("method,path", ROUTES)
async def test_missing_or_wrong_token_is_401(client, method, path):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": ADMIN_TOKEN},
                    {"Authorization": f"Basic {ADMIN_TOKEN}"}, {"Authorization": "Bearer "},
                    {"Authorization": f"Bearer {ADMIN_TOKEN}x"},
                    {"Authorization": f"Bearer {ADMIN_TOKEN[:-1]}"}):
        response = await client.request(method, path, headers=headers, json={"name": "x"})
        assert response.status == 401, headers
        assert error(await response.json()) == "unauthorized"
    assert await Salesperson.all().count() == 0 and await Partner.all().count() == 0


async def test_the_right_token_passes_whatever_the_scheme_case(client):
    for scheme in ("Bearer", "bearer", "BEARER"):
        response = await client.get("/admin/prospects?identity=oa_openid:x",
                                    headers={"Authorization": f"{scheme} {ADMIN_TOKEN}"})
        assert response.status == 200


@pytest.mark.parametrize("method,path", ROUTES)
async def test_without_an_admin_token_every_call_is_refused(aiohttp_client, app_settings,
                                                            method, path):
    client = await service(aiohttp_client, app_settings, admin_token=None)
    for headers in ({}, AUTH, {"Authorization": "Bearer "}, {"Authorization": "Bearer None"}):
        response = await client.request(method, path, headers=headers, json={"name": "x"})
        assert response.status == 401
        assert "SCRM_ADMIN_TOKEN" in (await response.json())["error"]["message"]
    assert await Salesperson.all().count() == 0


# --- creating -----------------------------------------------------------------------------------

async def test_create_salesperson(client):
    response = await client.post("/admin/salespeople", headers=AUTH, json={
        "name": " 王伟 ", "oa_openid": "oSALESxxxxxxxxxxxxxxxxxxxxxx", "team": "east"})
    assert response.status == 201
    body = await response.json()
    person = await Salesperson.get(id=body["id"])
    assert (person.name, person.team, person.oa_openid, person.wecom_userid) == (
        "王伟", "east", "oSALESxxxxxxxxxxxxxxxxxxxxxx", None)
    assert body["name"] == "王伟" and body["team"] == "east"


async def test_create_partner_and_material(client):
    response = await client.post("/admin/partners", headers=AUTH,
                                 json={"name": "渠道A", "tags": ["vip", "vip", " east "]})
    assert response.status == 201
    partner = await Partner.get(id=(await response.json())["id"])
    assert partner.tags == ["vip", "east"]
    response = await client.post("/admin/materials", headers=AUTH, json={
        "title": "白皮书", "kind": "whitepaper", "url": "https://example.com/w.pdf",
        "tags": ["cloud"]})
    assert response.status == 201
    body = await response.json()
    material = await Material.get(id=body["id"])
    assert (material.title, material.kind, material.url, material.tags) == (
        "白皮书", "whitepaper", "https://example.com/w.pdf", ["cloud"])
    assert body["kind"] == "whitepaper"


@pytest.mark.parametrize("path,body,code", [
    ("/admin/salespeople", {}, "missing_field"),
    ("/admin/salespeople", {"name": ""}, "invalid_field"),
    ("/admin/salespeople", {"name": "   "}, "invalid_field"),
    ("/admin/salespeople", {"name": 5}, "invalid_field"),
    ("/admin/salespeople", {"name": "x" * 65}, "invalid_field"),
    ("/admin/salespeople", {"name": "a", "team": ["x"]}, "invalid_field"),
    ("/admin/partners", {"name": None}, "missing_field"),
    ("/admin/partners", {"name": "p", "tags": "vip"}, "invalid_field"),
    ("/admin/partners", {"name": "p", "tags": ["ok", ""]}, "invalid_field"),
    ("/admin/partners", {"name": "p", "tags": [1]}, "invalid_field"),
    ("/admin/materials", {"title": "t"}, "invalid_field"),
    ("/admin/materials", {"title": "t", "kind": "podcast"}, "invalid_field"),
    ("/admin/materials", {"kind": "article"}, "missing_field"),
    ("/admin/materials", {"title": "t", "kind": "article", "url": 7}, "invalid_field"),
])
async def test_validation_errors_are_400(client, path, body, code):
    response = await client.post(path, headers=AUTH, json=body)
    assert response.status == 400
    assert error(await response.json()) == code
    assert await Salesperson.all().count() == 0
    assert await Partner.all().count() == 0 and await Material.all().count() == 0


@pytest.mark.parametrize("body", [b"{", b"not json", b"[1, 2]", b'"name"', b"\xff\xfe", b"null"])
async def test_malformed_json_is_a_400_envelope(client, body):
    response = await client.post("/admin/salespeople", headers=AUTH, data=body)
    assert response.status == 400
    assert error(await response.json()) == "malformed_json"


# --- looking up prospects -----------------------------------------------------------------------

async def test_lookup_by_identity(client, wechat):
    response = await client.get("/admin/prospects?identity=oa_openid:" + OPENID, headers=AUTH)
    assert response.status == 200 and await response.json() == []

    delivery = await wechat.push_oa(str(client.make_url("/wechat/oa")),
                                    events.subscribe(OPENID, scene="booth1"))
    assert delivery.ok
    await eventually(lambda: Interaction.filter(prospect_id__isnull=False).exists())
    response = await client.get("/admin/prospects", params={"identity": f"oa_openid:{OPENID}"},
                                headers=AUTH)
    found = await response.json()
    assert len(found) == 1
    assert found[0]["identities"] == [{"kind": "oa_openid", "value": OPENID}]
    assert found[0]["interactions"] == 1
    response = await client.get("/admin/prospects", params={"identity": "unionid:nobody"},
                                headers=AUTH)
    assert await response.json() == []


@pytest.mark.parametrize("identity", ["", "oa_openid", "oa_openid:", ":x", "email:a@b",
                                      "OA_OPENID:x"])
async def test_malformed_identity_is_400(client, identity):
    response = await client.get("/admin/prospects", params={"identity": identity}, headers=AUTH)
    assert response.status == 400
    assert error(await response.json()) == "invalid_identity"


async def test_prospect_detail(client):
    person = await Salesperson.create(name="王伟")
    partner = await Partner.create(name="渠道A")
    prospect = await Prospect.create(name="李四", company="腾讯", tags=["cloud"], owner=person,
                                     partner=partner, profile_score=20, behavior_score=15)
    await Identity.create(prospect=prospect, kind=IdentityKind.OA_OPENID, value=OPENID)
    await Identity.create(prospect=prospect, kind=IdentityKind.UNIONID, value="ounion")
    for i in range(3):
        await Interaction.create(source="oa", kind="message.text", dedup_key=f"msg:{i}",
                                 payload={}, received_at=prospect.created_at, prospect=prospect)
    await Interaction.create(source="oa", kind="message.text", dedup_key="msg:other",
                             payload={}, received_at=prospect.created_at)
    response = await client.get(f"/admin/prospects/{prospect.id}", headers=AUTH)
    assert response.status == 200
    body = await response.json()
    assert body["id"] == prospect.id and body["name"] == "李四"
    assert body["identities"] == [{"kind": "oa_openid", "value": OPENID},
                                  {"kind": "unionid", "value": "ounion"}]
    assert body["tags"] == ["cloud"]
    assert body["owner"] == {"salesperson_id": person.id, "salesperson": "王伟",
                             "partner_id": partner.id, "partner": "渠道A"}
    assert body["score"] == {"profile": 20, "behavior": 15, "total": 35, "quadrant": None}
    assert body["interactions"] == 3


@pytest.mark.parametrize("raw,status", [("999999", 404), ("0", 400), ("-1", 400), ("abc", 400),
                                        ("99999999999999999999", 404), ("1" * 21, 400),
                                        ("1.5", 400)])
async def test_unknown_or_bad_prospect_ids(client, raw, status):
    response = await client.get(f"/admin/prospects/{raw}", headers=AUTH)
    assert response.status == status
    error(await response.json())


async def test_phones_are_masked_in_answers_and_never_stored_in_clear(client):
    prospects = client.app[keys.PROSPECTS]
    prospect_id = await prospects.resolve(IdentityKind.PHONE, PHONE)
    await prospects.link(prospect_id, IdentityKind.OA_OPENID, OPENID)
    stored = await Identity.get(kind=IdentityKind.PHONE)
    assert PHONE not in stored.value and PHONE not in (stored.sealed or "")
    assert "138****8000" not in stored.value

    detail = await client.get(f"/admin/prospects/{prospect_id}", headers=AUTH)
    text = await detail.text()
    assert PHONE not in text
    assert {"kind": "phone", "value": "138****8000"} in (await detail.json())["identities"]

    for identity in (f"phone:{PHONE}", "phone:+86 138-0013-8000", f"oa_openid:{OPENID}"):
        response = await client.get("/admin/prospects", params={"identity": identity},
                                    headers=AUTH)
        text = await response.text()
        assert PHONE not in text
        assert [p["id"] for p in await response.json()] == [prospect_id], identity
