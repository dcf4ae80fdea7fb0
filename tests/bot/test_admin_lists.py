"""The admin lists as ops use them: `GET /admin/salespeople|partners|materials|codes|prospects`
answer `{"items": [...], "next": cursor | null}`, newest first, paged by a signed cursor,
filtered, each item naming what it refers to; a bad limit, cursor or parameter is a 400.

Prospects are made the way they really arrive: codes issued through the admin API and scanned
through the WeChat sandbox (mini-program logins, WeCom contacts enriched with a name and company).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.sandbox import Sandbox
from bot.sandbox.records import new_openid
from bot.settings import Secret
from domain.attribution import CHINA
from models import Prospect
from tests.bot.kit import service
from tests.bot.test_admin_codes import AUTH, issue
from tests.handlers.test_scans import new_external_userid, scan, settled

LISTS = ("salespeople", "partners", "materials", "codes", "prospects")
B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

SALESPERSON_FIELDS = {"id", "name", "team", "oa_openid", "wecom_userid", "daily_cap", "active",
                      "created_at"}
PARTNER_FIELDS = {"id", "name", "tags", "salesperson_id", "created_at"}
MATERIAL_FIELDS = {"id", "title", "kind", "url", "tags", "created_at"}
CODE_FIELDS = {"id", "kind", "channel", "scene", "campaign", "tags", "salesperson_id",
               "salesperson", "partner_id", "partner", "material_id", "material", "team",
               "backup_salesperson_id", "backup_salesperson", "serial", "batch", "permanent",
               "welcome", "expires_at", "created_at", "image"}
CHANNEL_FIELDS = {"oa": {"ticket", "url"}, "mp": {"page"}, "wecom": {"config_id", "qr_code"}}
PROSPECT_FIELDS = {"id", "name", "company", "title", "tags", "owner", "first_code", "created_at"}


# --- helpers ----------------------------------------------------------------------------------

async def answer(client: Any, path: str, params: dict[str, str] | None = None
                 ) -> tuple[int, Any, str]:
    """(status, JSON body, raw text) of an admin GET."""
    response = await client.get(path, params=params, headers=AUTH)
    raw = await response.read()
    text = raw.decode("utf-8")
    assert response.content_type == "application/json", text
    return response.status, json.loads(text), text


async def listed(client: Any, what: str, **params: str) -> dict[str, Any]:
    """One page of `GET /admin/{what}` (200 expected, the list shape checked)."""
    status, body, _ = await answer(client, f"/admin/{what}", params)
    assert status == 200, body
    assert set(body) == {"items", "next"}, body
    assert isinstance(body["items"], list)
    assert body["next"] is None or (isinstance(body["next"], str) and body["next"])
    return body


async def ids_of(client: Any, what: str, **params: str) -> list[int]:
    """The ids a filter finds (one page of up to 200, so `next` must be null)."""
    body = await listed(client, what, limit="200", **params)
    assert body["next"] is None
    return [item["id"] for item in body["items"]]


def refused(status: int, body: Any, code: str, name: str | None = None) -> None:
    """A 400 in the error envelope with `code`, naming `name` when given."""
    assert status == 400, body
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["code"] == code, body
    if name is not None:
        assert f"`{name}`" in body["error"]["message"], body


async def login_id(client: Any, openid: str) -> int:
    """The prospect of a mini-program OpenID, through the admin lookup by identity."""
    status, body, _ = await answer(client, "/admin/prospects",
                                   {"identity": f"mp_openid:{openid}"})
    assert status == 200 and len(body) == 1, body
    return int(body[0]["id"])


async def contact_id(client: Any, external: str) -> int:
    status, body, _ = await answer(client, "/admin/prospects",
                                   {"identity": f"external_userid:{external}"})
    assert status == 200 and len(body) == 1, body
    return int(body[0]["id"])


async def created(client: Any, what: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(f"/admin/{what}", json=body, headers=AUTH)
    shown = await response.json()
    assert response.status == 201, shown
    return dict(shown)


async def salesperson(client: Any, name: str, **more: Any) -> int:
    return int((await created(client, "salespeople", {"name": name, **more}))["id"])


class Scans:
    """Scans through the sandbox, counting them so that each one is waited for until settled."""

    def __init__(self, client: Any, wechat: Sandbox) -> None:
        self.client, self.wechat, self.count = client, wechat, 0

    async def login(self, code: dict[str, Any], openid: str | None = None) -> int:
        """A mini-program login with `code`'s scene; the prospect's id."""
        openid = openid or new_openid()
        await scan(self.client, self.wechat, code, openid)
        self.count += 1
        await settled(self.count)
        return await login_id(self.client, openid)

    async def contact(self, code: dict[str, Any], name: str, company: str) -> int:
        """A WeCom customer adding the member of `code`; WeCom knows their name and company."""
        external = new_external_userid()
        self.wechat.add_external_contact(external, name=name, corp_name=company,
                                         position="采购经理")
        await scan(self.client, self.wechat, code, external)
        self.count += 1
        await settled(self.count)
        return await contact_id(self.client, external)


async def make(client: Any, wechat: Sandbox, what: str, count: int) -> list[int]:
    """`count` items of list `what`, made through the public API in order; their ids."""
    if what == "salespeople":
        return [await salesperson(client, f"销售{i}", team="华东") for i in range(count)]
    if what == "partners":
        return [int((await created(client, "partners", {"name": f"渠道{i}", "tags": ["经销"]}))
                    ["id"]) for i in range(count)]
    if what == "materials":
        return [int((await created(client, "materials", {
            "title": f"白皮书{i}", "kind": "whitepaper", "url": f"https://example.com/{i}.pdf",
            "tags": ["资料"]}))["id"]) for i in range(count)]
    material = await created(client, "materials", {"title": "智能制造白皮书", "kind": "whitepaper"})
    if what == "codes":
        batch = await issue(client, kind="material", channel="mp", material_id=material["id"],
                            count=count, tags=["宣传册"])
        return [c["id"] for c in sorted(batch["codes"], key=lambda c: c["id"])]
    code = await issue(client, kind="material", channel="mp", material_id=material["id"])
    scans = Scans(client, wechat)
    return [await scans.login(code) for _ in range(count)]


# --- shape and order --------------------------------------------------------------------------

async def test_every_list_answers_items_newest_first_naming_what_they_refer_to(client, wechat):
    wang = await salesperson(client, "王芳", team="华东", wecom_userid="wangfang",
                             oa_openid="oWANGxxxxxxxxxxxxxxxxxxxxxxx", daily_cap=20)
    li = await salesperson(client, "李强", team="华东", wecom_userid="liqiang")
    zhao = await salesperson(client, "赵敏", active=False)
    partner = await created(client, "partners", {"name": "上海渠道", "tags": ["渠道:上海"]})
    other = await created(client, "partners", {"name": "北京渠道"})
    paper = await created(client, "materials", {"title": "智能制造白皮书", "kind": "whitepaper",
                                                "url": "https://example.com/w.pdf",
                                                "tags": ["白皮书"]})
    video = await created(client, "materials", {"title": "产品视频", "kind": "video"})
    booth = await issue(client, kind="booth", channel="oa", campaign="春季展", team="华东",
                        backup_salesperson_id=zhao, tags=["展会"], welcome="欢迎光临展台")
    card = await issue(client, kind="partner", channel="mp", campaign="秋季展",
                       partner_id=partner["id"], salesperson_id=li, tags=["渠道客户"])
    brochure = await issue(client, kind="material", channel="wecom", material_id=paper["id"],
                           salesperson_id=wang)

    people = (await listed(client, "salespeople"))
    assert people["next"] is None
    assert [p["id"] for p in people["items"]] == [zhao, li, wang]
    assert all(set(p) == SALESPERSON_FIELDS for p in people["items"])
    assert {k: v for k, v in people["items"][2].items() if k != "created_at"} == {
        "id": wang, "name": "王芳", "team": "华东", "oa_openid": "oWANGxxxxxxxxxxxxxxxxxxxxxxx",
        "wecom_userid": "wangfang", "daily_cap": 20, "active": True}
    assert (people["items"][0]["active"], people["items"][0]["daily_cap"]) == (False, 50)

    partners = await listed(client, "partners")
    assert partners["next"] is None
    assert [(p["id"], p["name"], p["tags"]) for p in partners["items"]] == [
        (other["id"], "北京渠道", []), (partner["id"], "上海渠道", ["渠道:上海"])]
    assert all(set(p) == PARTNER_FIELDS for p in partners["items"])

    materials = await listed(client, "materials")
    assert materials["next"] is None
    assert [(m["id"], m["title"], m["kind"], m["url"], m["tags"]) for m in materials["items"]] == [
        (video["id"], "产品视频", "video", None, []),
        (paper["id"], "智能制造白皮书", "whitepaper", "https://example.com/w.pdf", ["白皮书"])]
    assert all(set(m) == MATERIAL_FIELDS for m in materials["items"])

    codes = await listed(client, "codes")
    assert codes["next"] is None
    assert [c["id"] for c in codes["items"]] == [brochure["id"], card["id"], booth["id"]]
    for item in codes["items"]:
        assert set(item) == CODE_FIELDS | CHANNEL_FIELDS[item["channel"]], item
    third, second, first = codes["items"]
    assert (first["kind"], first["channel"], first["campaign"], first["team"]) == (
        "booth", "oa", "春季展", "华东")
    assert (first["backup_salesperson_id"], first["backup_salesperson"]) == (zhao, "赵敏")
    assert (first["salesperson_id"], first["salesperson"], first["welcome"]) == (
        None, None, "欢迎光临展台")
    assert first["scene"] == booth["scene"] and first["ticket"] == booth["ticket"]
    assert (second["partner_id"], second["partner"]) == (partner["id"], "上海渠道")
    assert (second["salesperson_id"], second["salesperson"]) == (li, "李强")
    assert (second["campaign"], second["tags"], second["page"]) == (
        "秋季展", ["渠道客户"], card["page"])
    assert (third["material_id"], third["material"]) == (paper["id"], "智能制造白皮书")
    assert (third["salesperson_id"], third["salesperson"]) == (wang, "王芳")
    assert third["config_id"] == brochure["config_id"]
    assert third["image"] == f"/admin/codes/{brochure['id']}/image.png"

    scans = Scans(client, wechat)
    first_prospect = await scans.login(card)
    second_prospect = await scans.contact(brochure, "张伟", "华为技术有限公司")
    prospects = await listed(client, "prospects")
    assert prospects["next"] is None
    assert [p["id"] for p in prospects["items"]] == [second_prospect, first_prospect]
    assert all(set(p) == PROSPECT_FIELDS for p in prospects["items"])
    newer, older = prospects["items"]
    assert older["owner"] == {"salesperson_id": li, "salesperson": "李强",
                              "partner_id": partner["id"], "partner": "上海渠道"}
    assert older["first_code"] == {"id": card["id"], "kind": "partner", "channel": "mp",
                                   "campaign": "秋季展"}
    assert older["tags"] == ["渠道客户", "渠道:上海"]
    assert newer["owner"] == {"salesperson_id": wang, "salesperson": "王芳",
                              "partner_id": None, "partner": None}
    assert newer["first_code"] == {"id": brochure["id"], "kind": "material", "channel": "wecom",
                                   "campaign": None}
    assert (newer["name"], newer["company"], newer["title"]) == ("张伟", "华为技术有限公司",
                                                                 "采购经理")
    for item in prospects["items"]:
        assert datetime.fromisoformat(item["created_at"]).tzinfo is not None


async def test_empty_lists(client):
    for what in LISTS:
        assert await listed(client, what) == {"items": [], "next": None}


@pytest.mark.parametrize("what", LISTS)
async def test_answers_are_utf8_as_written(client, wechat, what):
    wang = await salesperson(client, "王芳", team="华东", wecom_userid="wangfang")
    await created(client, "partners", {"name": "上海渠道", "tags": ["渠道:上海"]})
    paper = await created(client, "materials", {"title": "智能制造白皮书", "kind": "whitepaper",
                                                "tags": ["白皮书"]})
    code = await issue(client, kind="material", channel="wecom", material_id=paper["id"],
                       salesperson_id=wang, campaign="工博会", tags=["资料:白皮书"])
    await Scans(client, wechat).contact(code, "张伟", "华为技术有限公司")
    response = await client.get(f"/admin/{what}", headers=AUTH)
    assert response.status == 200
    assert response.charset in (None, "utf-8")
    raw = await response.read()
    text = raw.decode("utf-8")
    assert "\\u" not in text
    expected = {"salespeople": "王芳", "partners": "上海渠道", "materials": "智能制造白皮书",
                "codes": "资料:白皮书", "prospects": "华为技术有限公司"}[what]
    assert expected.encode("utf-8") in raw


# --- paging -----------------------------------------------------------------------------------

@pytest.mark.parametrize("what", LISTS)
async def test_paging_through_seven_items_three_at_a_time(client, wechat, what):
    made = await make(client, wechat, what, 7)
    assert len(set(made)) == 7
    seen: list[int] = []
    sizes: list[int] = []
    cursor: str | None = None
    for _ in range(3):
        params = {"limit": "3"} if cursor is None else {"limit": "3", "cursor": cursor}
        body = await listed(client, what, **params)
        sizes.append(len(body["items"]))
        seen += [item["id"] for item in body["items"]]
        cursor = body["next"]
        if cursor is None:
            break
    assert sizes == [3, 3, 1] and cursor is None
    assert seen == sorted(made, reverse=True)  # newest first, each exactly once


async def test_a_page_does_not_shift_when_rows_are_added(client, wechat):
    made = await make(client, wechat, "salespeople", 5)
    first = await listed(client, "salespeople", limit="2")
    assert [p["id"] for p in first["items"]] == [made[4], made[3]]
    newcomer = await salesperson(client, "新人")
    second = await listed(client, "salespeople", limit="2", cursor=first["next"])
    assert [p["id"] for p in second["items"]] == [made[2], made[1]]
    third = await listed(client, "salespeople", limit="2", cursor=second["next"])
    assert [p["id"] for p in third["items"]] == [made[0]] and third["next"] is None
    assert (await ids_of(client, "salespeople"))[0] == newcomer


async def test_paging_keeps_the_filter(client, wechat):
    material = await created(client, "materials", {"title": "白皮书", "kind": "whitepaper"})
    batch = await issue(client, kind="material", channel="mp", material_id=material["id"],
                        count=5)
    await issue(client, kind="material", channel="mp", material_id=material["id"], count=3)
    seen: list[int] = []
    body = await listed(client, "codes", batch=batch["batch"], limit="2")
    seen += [c["id"] for c in body["items"]]
    while body["next"] is not None:
        body = await listed(client, "codes", batch=batch["batch"], limit="2",
                            cursor=body["next"])
        seen += [c["id"] for c in body["items"]]
    assert seen == sorted((c["id"] for c in batch["codes"]), reverse=True)


@pytest.mark.parametrize("limit", ["1", "200"])
async def test_the_limit_bounds_are_accepted(client, wechat, limit):
    made = await make(client, wechat, "partners", 2)
    body = await listed(client, "partners", limit=limit)
    if limit == "1":
        assert [p["id"] for p in body["items"]] == [made[1]] and body["next"] is not None
    else:
        assert [p["id"] for p in body["items"]] == [made[1], made[0]] and body["next"] is None


@pytest.mark.parametrize("what", LISTS)
@pytest.mark.parametrize("limit", ["0", "201", "-1", "abc", "9" * 30, "3.0", "+3", " 3", "١"])
async def test_a_bad_limit_is_400(client, what, limit):
    status, body, _ = await answer(client, f"/admin/{what}", {"limit": limit})
    refused(status, body, "invalid_field", "limit")


async def seven_salespeople_and_a_cursor(client: Any, wechat: Sandbox) -> tuple[list[int], str]:
    made = await make(client, wechat, "salespeople", 7)
    body = await listed(client, "salespeople", limit="3")
    assert body["next"] is not None
    return made, body["next"]


async def test_a_cursor_with_any_one_character_changed_is_400(client, wechat):
    made, cursor = await seven_salespeople_and_a_cursor(client, wechat)
    # the genuine cursor works
    assert [p["id"] for p in (await listed(client, "salespeople", limit="3",
                                           cursor=cursor))["items"]] == made[3::-1][:3]
    for position, char in enumerate(cursor):
        # another character of the URL-safe alphabet, differing in the top bit of its six: the
        # bytes the cursor stands for change whatever the position
        changed = B64[B64.index(char) ^ 32]
        tampered = cursor[:position] + changed + cursor[position + 1:]
        status, body, _ = await answer(client, "/admin/salespeople",
                                       {"limit": "3", "cursor": tampered})
        refused(status, body, "invalid_cursor")


async def test_a_cursor_with_its_last_character_changed_is_400(client, wechat):
    """Every other character in the last position, including those that differ only in the bits
    base64 leaves over (the cursor of row 5 is 14 bytes: its 19th character carries 2 spare
    bits): each is a cursor this service never gave out."""
    _, cursor = await seven_salespeople_and_a_cursor(client, wechat)
    assert len(cursor) % 4 != 0  # a last character with spare bits
    accepted = []
    for char in B64:
        if char == cursor[-1]:
            continue
        status, body, _ = await answer(client, "/admin/salespeople",
                                       {"limit": "3", "cursor": cursor[:-1] + char})
        if status != 400 or body["error"]["code"] != "invalid_cursor":
            accepted.append((cursor[:-1] + char, status))
    assert accepted == [], f"{cursor} was given out; these were taken too"


@pytest.mark.parametrize("what", LISTS)
async def test_garbage_cursors_are_400(client, wechat, what):
    forged_id = "MQ"  # base64 of "1": a bare id, unsigned
    for garbage in ("garbage", "!!!!", "é", "MTIzNDU2Nzg5", forged_id, "Ng.", "a" * 65,
                    "NS5hYmNkZWZnaGlqa2w", "LjEyMzQ1Njc4OTAxMg", "-" * 20, "===="):
        status, body, _ = await answer(client, f"/admin/{what}", {"cursor": garbage})
        refused(status, body, "invalid_cursor")
        status, body, _ = await answer(client, f"/admin/{what}",
                                       {"cursor": garbage, "limit": "3"})
        refused(status, body, "invalid_cursor")


async def test_a_cursor_signed_with_another_secret_key_is_400(aiohttp_client, app_settings,
                                                              client, wechat):
    made, ours = await seven_salespeople_and_a_cursor(client, wechat)
    other = await service(aiohttp_client, app_settings,
                          secret_key=Secret("another-secret-key-0123456789abcdef"))
    response = await other.get("/admin/salespeople", params={"limit": "3"}, headers=AUTH)
    assert response.status == 200
    theirs = (await response.json())["next"]
    assert theirs and theirs != ours  # the same row, signed with another key
    status, body, _ = await answer(client, "/admin/salespeople", {"limit": "3", "cursor": theirs})
    refused(status, body, "invalid_cursor")
    response = await other.get("/admin/salespeople", params={"limit": "3", "cursor": ours},
                               headers=AUTH)
    refused(response.status, await response.json(), "invalid_cursor")
    # each accepts its own
    assert [p["id"] for p in (await listed(client, "salespeople", limit="3",
                                           cursor=ours))["items"]] == made[3::-1][:3]


# --- unknown parameters -----------------------------------------------------------------------

@pytest.mark.parametrize("what,unknown", [
    ("salespeople", "bogus"), ("salespeople", "teams"), ("salespeople", "owner_id"),
    ("partners", "bogus"), ("partners", "tag"),
    ("materials", "bogus"), ("materials", "kinds"),
    ("codes", "bogus"), ("codes", "scene"), ("codes", "salesperson_id"),
    ("prospects", "bogus"), ("prospects", "owner"), ("prospects", "tags"),
    ("prospects", "created_since"), ("opportunities", "bogus"),
])
async def test_an_unknown_query_parameter_is_400_naming_it(client, what, unknown):
    for params in ({unknown: "1"}, {unknown: "x", "limit": "3"}):
        status, body, _ = await answer(client, f"/admin/{what}", params)
        refused(status, body, "unknown_field", unknown)


async def test_an_unknown_parameter_is_named_as_written(client):
    status, body, text = await answer(client, "/admin/prospects", {"标签": "展会"})
    refused(status, body, "unknown_field", "标签")
    assert "\\u" not in text and "标签" in text


async def test_the_identity_lookup_keeps_its_plain_list_answer(client, wechat):
    material = await created(client, "materials", {"title": "白皮书", "kind": "whitepaper"})
    code = await issue(client, kind="material", channel="mp", material_id=material["id"])
    openid = new_openid()
    prospect = await Scans(client, wechat).login(code, openid)
    status, body, _ = await answer(client, "/admin/prospects",
                                   {"identity": f"mp_openid:{openid}"})
    assert status == 200 and isinstance(body, list)
    assert [p["id"] for p in body] == [prospect]
    status, body, _ = await answer(client, "/admin/prospects", {"identity": "mp_openid:nobody"})
    assert (status, body) == (200, [])


# --- prospect filters -------------------------------------------------------------------------

async def prospect_world(client: Any, wechat: Sandbox) -> dict[str, Any]:
    """Prospects brought by four codes, through the sandbox:
    p1 booth(春季展, 王芳) then the partner code · p2 the partner code (秋季展, 李强) ·
    p3 the material code (nobody's) · p4, p5 王芳's WeCom card (names and companies from WeCom) ·
    p6 booth only."""
    wang = await salesperson(client, "王芳", team="华东", wecom_userid="wangfang")
    li = await salesperson(client, "李强", team="华东", wecom_userid="liqiang")
    partner = await created(client, "partners", {"name": "上海渠道", "tags": ["渠道:上海"]})
    material = await created(client, "materials", {"title": "智能制造白皮书", "kind": "whitepaper"})
    booth = await issue(client, kind="booth", channel="mp", campaign="春季展",
                        salesperson_id=wang, tags=["展会:上海"])
    partner_code = await issue(client, kind="partner", channel="mp", campaign="秋季展",
                               partner_id=partner["id"], salesperson_id=li, tags=["展会"])
    brochure = await issue(client, kind="material", channel="mp", material_id=material["id"],
                           tags=["白皮书"])
    card = await issue(client, kind="salesperson", channel="wecom", salesperson_id=wang,
                       tags=["名片"])
    scans = Scans(client, wechat)
    p1_openid = new_openid()
    p1 = await scans.login(booth, p1_openid)
    p2 = await scans.login(partner_code)
    assert await scans.login(partner_code, p1_openid) == p1  # p1 again: partner and tags
    p3 = await scans.login(brochure)
    p4 = await scans.contact(card, "Alice Zhang", "Globex 上海")
    p5 = await scans.contact(card, "张伟", "ACME Robotics 华为")
    p6 = await scans.login(booth)
    return {"wang": wang, "li": li, "partner": partner["id"], "booth": booth["id"],
            "partner_code": partner_code["id"], "brochure": brochure["id"], "card": card["id"],
            "p1": p1, "p2": p2, "p3": p3, "p4": p4, "p5": p5, "p6": p6}


async def test_prospect_filters(client, wechat):
    w = await prospect_world(client, wechat)
    p1, p2, p3, p4, p5, p6 = (w[f"p{i}"] for i in range(1, 7))
    assert len({p1, p2, p3, p4, p5, p6}) == 6
    assert await ids_of(client, "prospects") == [p6, p5, p4, p3, p2, p1]

    async def found(**params: Any) -> list[int]:
        return await ids_of(client, "prospects", **{k: str(v) for k, v in params.items()})

    # the owner (who got them), or nobody
    assert await found(owner_id=w["wang"]) == [p6, p5, p4, p1]
    assert await found(owner_id=w["li"]) == [p2]
    assert await found(owner_id=999999) == []
    assert await found(unassigned="true") == [p3]
    assert await found(unassigned="false") == [p6, p5, p4, p2, p1]
    assert await found(unassigned="TRUE") == [p3]
    # the first code, and its campaign: p1's later scan of the partner code changes neither
    assert await found(campaign="春季展") == [p6, p1]
    assert await found(campaign="秋季展") == [p2]
    assert await found(campaign="冬季展") == []
    assert await found(code_id=w["booth"]) == [p6, p1]
    assert await found(code_id=w["partner_code"]) == [p2]
    assert await found(code_id=w["card"]) == [p5, p4]
    assert await found(code_id=w["brochure"]) == [p3]
    # the partner, set by any code
    assert await found(partner_id=w["partner"]) == [p2, p1]
    # a tag, exactly: 展会 is a prefix of 展会:上海, and neither of 展
    assert await found(tag="展会") == [p2, p1]
    assert await found(tag="展会:上海") == [p6, p1]
    assert await found(tag="展") == []
    assert await found(tag="渠道:上海") == [p2, p1]
    assert await found(tag="名片") == [p5, p4]
    assert await found(tag="名") == []
    # name or company, case-insensitively
    assert await found(q="alice") == [p4]
    assert await found(q="ZHANG") == [p4]
    assert await found(q="acme") == [p5]
    assert await found(q="robotics") == [p5]
    assert await found(q="globex") == [p4]
    assert await found(q="上海") == [p4]
    assert await found(q="张伟") == [p5]
    assert await found(q="华为") == [p5]
    assert await found(q="nobody") == []
    assert await found(q="%") == []
    assert await found(q="_") == []
    # together: every filter applies
    assert await found(owner_id=w["wang"], tag="展会") == [p1]
    assert await found(campaign="春季展", partner_id=w["partner"]) == [p1]
    assert await found(owner_id=w["wang"], q="acme") == [p5]
    assert await found(unassigned="true", tag="展会") == []
    assert await found(code_id=w["card"], q="alice", tag="名片") == [p4]


async def test_prospect_items_name_their_owner_partner_and_first_code(client, wechat):
    w = await prospect_world(client, wechat)
    items = {p["id"]: p for p in (await listed(client, "prospects"))["items"]}
    assert items[w["p1"]]["owner"] == {"salesperson_id": w["wang"], "salesperson": "王芳",
                                       "partner_id": w["partner"], "partner": "上海渠道"}
    assert items[w["p1"]]["first_code"] == {"id": w["booth"], "kind": "booth", "channel": "mp",
                                            "campaign": "春季展"}
    assert items[w["p1"]]["tags"] == ["展会:上海", "展会", "渠道:上海"]
    assert items[w["p2"]]["owner"] == {"salesperson_id": w["li"], "salesperson": "李强",
                                       "partner_id": w["partner"], "partner": "上海渠道"}
    assert items[w["p3"]]["owner"] == {"salesperson_id": None, "salesperson": None,
                                       "partner_id": None, "partner": None}
    assert items[w["p3"]]["first_code"] == {"id": w["brochure"], "kind": "material",
                                            "channel": "mp", "campaign": None}
    assert (items[w["p4"]]["name"], items[w["p4"]]["company"]) == ("Alice Zhang", "Globex 上海")
    assert items[w["p4"]]["first_code"]["kind"] == "salesperson"


@pytest.mark.parametrize("params,name", [
    ({"owner_id": "abc"}, "owner_id"), ({"owner_id": "0"}, "owner_id"),
    ({"owner_id": "-1"}, "owner_id"), ({"code_id": "1.5"}, "code_id"),
    ({"partner_id": "x"}, "partner_id"), ({"unassigned": "yes"}, "unassigned"),
    ({"unassigned": "1"}, "unassigned"), ({"created_after": "yesterday"}, "created_after"),
    ({"created_after": "2026-13-01"}, "created_after"),
    ({"created_before": "2026-02-30"}, "created_before"), ({"created_before": ""},
                                                           "created_before"),
    ({"tag": "x" * 33}, "tag"), ({"q": "x" * 65}, "q"), ({"campaign": "a\x01b"}, "campaign"),
])
async def test_a_bad_prospect_filter_is_400_naming_it(client, params, name):
    status, body, _ = await answer(client, "/admin/prospects", params)
    refused(status, body, "invalid_field", name)


async def test_prospects_created_after_and_before_in_china_time(client, wechat):
    """Created around midnight in China (UTC+8): a date or a time without an offset is China
    time; with an offset (or Z) it is that moment."""
    material = await created(client, "materials", {"title": "白皮书", "kind": "whitepaper"})
    code = await issue(client, kind="material", channel="mp", material_id=material["id"])
    scans = Scans(client, wechat)
    late, early, morning = [await scans.login(code) for _ in range(3)]
    # no route sets when a prospect was created: arranged in the database
    at = {late: datetime(2026, 3, 1, 15, 30, 0, 250000, tzinfo=UTC),  # 03-01 23:30 in China
          early: datetime(2026, 3, 1, 16, 30, 0, 250000, tzinfo=UTC),  # 03-02 00:30 in China
          morning: datetime(2026, 3, 2, 1, 0, 0, 250000, tzinfo=UTC)}  # 03-02 09:00 in China
    for prospect_id, when in at.items():
        await Prospect.filter(id=prospect_id).update(created_at=when)

    async def found(**params: str) -> list[int]:
        return await ids_of(client, "prospects", **params)

    everyone = [morning, early, late]
    assert await found() == everyone
    # dates: China days
    assert await found(created_after="2026-03-02") == [morning, early]
    assert await found(created_before="2026-03-02") == [late]
    assert await found(created_after="2026-03-01", created_before="2026-03-02") == [late]
    assert await found(created_after="2026-03-03") == []
    assert await found(created_before="2026-03-01") == []
    assert await found(created_after="2026-03-01") == everyone
    # times without an offset: China time
    assert await found(created_after="2026-03-02T00:00:00") == [morning, early]
    assert await found(created_after="2026-03-02T08:59:59") == [morning]
    assert await found(created_before="2026-03-02T00:30:00.250000") == [late]
    assert await found(created_after="2026-03-02T00:30:00.250000") == [morning, early]
    # with an offset, or Z: that moment
    assert await found(created_after="2026-03-02T00:00:00+00:00") == [morning]
    assert await found(created_after="2026-03-02T00:00:00Z") == [morning]
    assert await found(created_before="2026-03-01T16:00:00Z") == [late]
    assert await found(created_after="2026-03-01T16:00:00+00:00") == [morning, early]
    assert await found(created_after="2026-03-02T00:30:00.250000+08:00") == [morning, early]
    assert await found(created_before="2026-03-02T00:30:00.250000+08:00") == [late]
    assert await found(created_after="2026-03-01T11:30:00.250000-05:00") == [morning, early]
    assert await found(created_before="2026-03-01T11:30:00.250000-05:00") == [late]
    assert await found(created_after="2026-03-01T20:00:00-05:00") == [morning]
    assert await found(created_after="2026-03-01T15:30:00.250000+00:00",
                       created_before="2026-03-01T16:30:00.250000+00:00") == [late]


async def test_prospects_created_after_and_before_as_they_arrived(client, wechat):
    """The same bounds on prospects stored just now, each bound written three ways."""
    material = await created(client, "materials", {"title": "白皮书", "kind": "whitepaper"})
    code = await issue(client, kind="material", channel="mp", material_id=material["id"])
    scans = Scans(client, wechat)
    made = [await scans.login(code) for _ in range(3)]
    items = (await listed(client, "prospects"))["items"]
    stamps = {p["id"]: datetime.fromisoformat(p["created_at"]) for p in items}
    newest, middle, oldest = made[2], made[1], made[0]
    assert stamps[oldest] <= stamps[middle] <= stamps[newest]
    bound = stamps[middle]
    assert stamps[oldest] < bound < stamps[newest]  # each stored after the last settled
    for written in (bound.astimezone(UTC).isoformat(),
                    bound.astimezone(CHINA).isoformat(),
                    bound.astimezone(CHINA).replace(tzinfo=None).isoformat(),  # China time
                    bound.astimezone(UTC).isoformat().replace("+00:00", "Z")):
        assert await ids_of(client, "prospects", created_after=written) == [
            newest, middle], written
        assert await ids_of(client, "prospects", created_before=written) == [oldest], written
    china_day = bound.astimezone(CHINA).date()
    assert await ids_of(client, "prospects", created_after=china_day.isoformat()) == [
        newest, middle, oldest]
    assert await ids_of(client, "prospects", created_before=china_day.isoformat()) == []
    next_day = (china_day + timedelta(days=1)).isoformat()
    assert await ids_of(client, "prospects", created_before=next_day) == [newest, middle, oldest]
    assert await ids_of(client, "prospects", created_after=next_day) == []


# --- code, salespeople and material filters ---------------------------------------------------

async def test_code_filters(client, wechat):
    wang = await salesperson(client, "王芳", team="华东", wecom_userid="wangfang")
    li = await salesperson(client, "李强", team="华东", wecom_userid="liqiang")
    partner = await created(client, "partners", {"name": "上海渠道"})
    material = await created(client, "materials", {"title": "智能制造白皮书", "kind": "whitepaper"})
    booth = await issue(client, kind="booth", channel="oa", campaign="春季展", team="华东",
                        backup_salesperson_id=li)
    partner_code = await issue(client, kind="partner", channel="mp", campaign="秋季展",
                               partner_id=partner["id"], salesperson_id=li)
    batch = await issue(client, kind="material", channel="mp", material_id=material["id"],
                        count=3, campaign="春季展", tags=["宣传册"])
    other_batch = await issue(client, kind="material", channel="mp",
                              material_id=material["id"], count=2)
    card = await issue(client, kind="salesperson", channel="wecom", salesperson_id=wang)
    in_batch = sorted((c["id"] for c in batch["codes"]), reverse=True)
    in_other = sorted((c["id"] for c in other_batch["codes"]), reverse=True)
    assert batch["count"] == 3 and batch["batch"] != other_batch["batch"]

    async def found(**params: str) -> list[int]:
        return await ids_of(client, "codes", **params)

    assert await found() == [card["id"], *in_other, *in_batch, partner_code["id"], booth["id"]]
    assert await found(kind="material") == [*in_other, *in_batch]
    assert await found(kind="booth") == [booth["id"]]
    assert await found(kind="salesperson") == [card["id"]]
    assert await found(channel="oa") == [booth["id"]]
    assert await found(channel="wecom") == [card["id"]]
    assert await found(channel="mp") == [*in_other, *in_batch, partner_code["id"]]
    assert await found(campaign="春季展") == [*in_batch, booth["id"]]
    assert await found(campaign="秋季展") == [partner_code["id"]]
    assert await found(campaign="春季") == []
    assert await found(batch=batch["batch"]) == in_batch
    assert await found(batch=other_batch["batch"]) == in_other
    assert await found(batch="nosuchbatch") == []
    assert await found(kind="material", campaign="春季展") == in_batch
    assert await found(kind="booth", channel="mp") == []

    body = await listed(client, "codes", batch=batch["batch"])
    assert [c["serial"] for c in body["items"]] == [3, 2, 1]
    for item in body["items"]:
        assert (item["material_id"], item["material"], item["batch"], item["tags"]) == (
            material["id"], "智能制造白皮书", batch["batch"], ["宣传册"])
    [booth_item] = (await listed(client, "codes", kind="booth"))["items"]
    assert (booth_item["backup_salesperson_id"], booth_item["backup_salesperson"]) == (li, "李强")
    [partner_item] = (await listed(client, "codes", campaign="秋季展"))["items"]
    assert (partner_item["partner"], partner_item["salesperson"]) == ("上海渠道", "李强")


@pytest.mark.parametrize("params,name", [
    ({"kind": "poster"}, "kind"), ({"channel": "fax"}, "channel"), ({"kind": ""}, "kind"),
    ({"batch": "x" * 33}, "batch"), ({"campaign": "x" * 129}, "campaign"),
])
async def test_a_bad_code_filter_is_400_naming_it(client, params, name):
    status, body, _ = await answer(client, "/admin/codes", params)
    refused(status, body, "invalid_field", name)


async def test_salespeople_filters(client):
    wang = await salesperson(client, "王芳", team="华东")
    li = await salesperson(client, "李强", team="华东", active=False)
    zhao = await salesperson(client, "赵敏", team="华北")
    qian = await salesperson(client, "钱多", active=False)

    async def found(**params: str) -> list[int]:
        return await ids_of(client, "salespeople", **params)

    assert await found() == [qian, zhao, li, wang]
    assert await found(team="华东") == [li, wang]
    assert await found(team="华北") == [zhao]
    assert await found(team="华南") == []
    assert await found(active="true") == [zhao, wang]
    assert await found(active="false") == [qian, li]
    assert await found(team="华东", active="true") == [wang]
    assert await found(team="华东", active="false") == [li]
    for bad in ({"active": "yes"}, {"active": "1"}, {"team": "x" * 65}):
        status, body, _ = await answer(client, "/admin/salespeople", bad)
        refused(status, body, "invalid_field", next(iter(bad)))


async def test_material_filters(client):
    paper = await created(client, "materials", {"title": "白皮书", "kind": "whitepaper"})
    video = await created(client, "materials", {"title": "视频", "kind": "video"})
    other = await created(client, "materials", {"title": "另一本白皮书", "kind": "whitepaper"})
    assert await ids_of(client, "materials", kind="whitepaper") == [other["id"], paper["id"]]
    assert await ids_of(client, "materials", kind="video") == [video["id"]]
    assert await ids_of(client, "materials", kind="case") == []
    for bad in ("podcast", "", "VIDEO"):
        status, body, _ = await answer(client, "/admin/materials", {"kind": bad})
        refused(status, body, "invalid_field", "kind")


# --- statistics by code -----------------------------------------------------------------------

async def test_statistics_by_code_name_kind_channel_campaign_and_serial(client, wechat):
    material = await created(client, "materials", {"title": "白皮书", "kind": "whitepaper"})
    batch = await issue(client, kind="material", channel="mp", material_id=material["id"],
                        count=3, campaign="工博会")
    codes = sorted(batch["codes"], key=lambda c: c["serial"])
    scans = Scans(client, wechat)
    await scans.login(codes[0])
    await scans.login(codes[2])
    await scans.login(codes[2])
    response = await client.get("/admin/stats", params={"by": "code"}, headers=AUTH)
    assert response.status == 200
    rows = await response.json()
    assert [{k: r[k] for k in ("code", "kind", "channel", "campaign", "serial", "scans",
                               "prospects")} for r in rows] == [
        {"code": codes[0]["id"], "kind": "material", "channel": "mp", "campaign": "工博会",
         "serial": 1, "scans": 1, "prospects": 1},
        {"code": codes[2]["id"], "kind": "material", "channel": "mp", "campaign": "工博会",
         "serial": 3, "scans": 2, "prospects": 2},
    ]
