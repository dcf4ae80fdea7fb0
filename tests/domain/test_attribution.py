"""What scans of codes do to prospects, end to end through the service and the sandbox: first touch
decides the owner, later codes add tags, partner codes set the partner, booth teams take turns
within their daily caps, WeCom welcomes once and enriches; and the statistics that result."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot import keys
from bot.sandbox import events
from bot.sandbox.records import new_openid
from domain.attribution import DEFAULT_CONTACT_WELCOME
from models import (
    Code,
    Identity,
    IdentityKind,
    Interaction,
    Opportunity,
    OutboundMessage,
    OutboundStatus,
    Partner,
    Prospect,
    Salesperson,
)
from tests.bot.kit import service
from tests.bot.test_admin_codes import AUTH, issue, people
from tests.handlers.test_scans import new_external_userid, prospect_of, scan, settled

WELCOME = "/cgi-bin/externalcontact/send_welcome_msg"


async def shown(client: Any, prospect_id: int) -> dict[str, Any]:
    response = await client.get(f"/admin/prospects/{prospect_id}", headers=AUTH)
    assert response.status == 200
    body: dict[str, Any] = await response.json()
    return body


# --- first touch ----------------------------------------------------------------------------

async def test_first_touch_decides_the_owner_later_codes_add_tags(client, wechat):
    ids = await people()
    wang = await issue(client, kind="salesperson", channel="oa", salesperson_id=ids["wang"],
                       tags=["名片:王芳"])
    li = await issue(client, kind="salesperson", channel="oa", salesperson_id=ids["li"],
                     tags=["名片:李强", "名片:王芳"])
    openid, _ = await scan(client, wechat, wang)  # a follow through wang's card
    await scan(client, wechat, li, openid)  # later, li's card (a SCAN: already following)
    first, second = await settled(2)
    assert (first.kind, first.code_id) == ("event.subscribe", wang["id"])
    assert (second.kind, second.code_id) == ("event.scan", li["id"])
    assert first.prospect_id == second.prospect_id
    body = await shown(client, first.prospect_id)
    assert body["owner"]["salesperson_id"] == ids["wang"]
    assert body["tags"] == ["名片:王芳", "名片:李强"]
    assert body["interactions"] == 2
    assert (await Prospect.get(id=first.prospect_id)).first_code_id == wang["id"]


async def test_a_later_code_sets_the_owner_when_it_is_unset(client, wechat):
    ids = await people()
    brochure = await issue(client, kind="material", channel="mp", material_id=ids["material"],
                           tags=["白皮书"])  # no salesperson: no owner
    card = await issue(client, kind="salesperson", channel="mp", salesperson_id=ids["li"])
    openid, _ = await scan(client, wechat, brochure)
    prospect = await prospect_of("mp", openid)
    assert prospect.owner_id is None and prospect.first_code_id == brochure["id"]
    await scan(client, wechat, card, openid)
    await settled(2)
    prospect = await prospect_of("mp", openid)
    assert prospect.owner_id == ids["li"]
    assert prospect.first_code_id == brochure["id"]  # first touch is still the brochure
    assert prospect.tags == ["白皮书"]


async def test_a_partner_code_sets_the_partner_once(client, wechat):
    ids = await people()
    other = await Partner.create(name="北京渠道", tags=["渠道:北京"])
    shanghai = await issue(client, kind="partner", channel="oa", partner_id=ids["partner"],
                           salesperson_id=ids["wang"])
    beijing = await issue(client, kind="partner", channel="oa", partner_id=other.id,
                          salesperson_id=ids["li"], tags=["活动"])
    openid, _ = await scan(client, wechat, shanghai)
    await scan(client, wechat, beijing, openid)
    await settled(2)
    prospect = await prospect_of("oa", openid)
    assert (prospect.partner_id, prospect.owner_id) == (ids["partner"], ids["wang"])
    assert prospect.tags == ["渠道:上海", "经销", "活动", "渠道:北京"]


async def test_the_same_scan_twice_changes_nothing_more(client, wechat):
    ids = await people()
    code = await issue(client, kind="salesperson", channel="mp", salesperson_id=ids["wang"],
                       tags=["名片"])
    openid, _ = await scan(client, wechat, code)
    await scan(client, wechat, code, openid)
    rows = await settled(2)
    assert [r.code_id for r in rows] == [code["id"]] * 2
    prospect = await prospect_of("mp", openid)
    assert (prospect.tags, prospect.owner_id) == (["名片"], ids["wang"])


async def test_a_repeated_scan_takes_no_lock_and_writes_nothing(client, wechat, monkeypatch):
    import domain.attribution

    ids = await people()
    code = await issue(client, kind="salesperson", channel="oa", salesperson_id=ids["wang"],
                       tags=["名片"])
    openid, _ = await scan(client, wechat, code)
    await settled(1)
    locked: list[object] = []
    real = domain.attribution.lock_rows

    def counting(*args: object, **kwargs: object) -> object:
        locked.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(domain.attribution, "lock_rows", counting)
    await scan(client, wechat, code, openid)
    rows = await settled(2)
    assert rows[1].code_id == code["id"] and locked == []
    prospect = await prospect_of("oa", openid)
    assert (prospect.tags, prospect.owner_id) == (["名片"], ids["wang"])


# --- a booth team takes turns ---------------------------------------------------------------

async def team(caps: dict[str, int], backup: bool = True) -> dict[str, int]:
    made = {}
    for number, (name, cap) in enumerate(caps.items(), start=1):
        made[name] = (await Salesperson.create(name=name, team="展台A", daily_cap=cap,
                                               wecom_userid=f"booth{number}")).id
    if backup:
        made["backup"] = (await Salesperson.create(name="值班经理", team="内勤")).id
    return made


async def booth(client: Any, members: dict[str, int], channel: str = "mp") -> dict[str, Any]:
    return await issue(client, kind="booth", channel=channel, campaign="2026 工博会",
                       team="展台A", backup_salesperson_id=members.get("backup"),
                       tags=["展会"])


@pytest.mark.parametrize("channel", ["mp", "oa"])
async def test_a_booth_team_takes_turns_within_daily_caps_then_the_backup(client, wechat,
                                                                          channel):
    members = await team({"甲": 2, "乙": 1})
    code = await booth(client, members, channel)
    owners = []
    for _ in range(5):
        actor, _ = await scan(client, wechat, code)
        await settled(len(owners) + 1)
        owners.append((await prospect_of(channel, actor)).owner_id)
    # 甲, 乙 in turns; 乙 is full after one, 甲 after two; then the backup member
    assert owners == [members["甲"], members["乙"], members["甲"], members["backup"],
                      members["backup"]]


async def test_without_a_backup_a_full_team_leaves_the_owner_unset(client, wechat):
    members = await team({"甲": 1}, backup=False)
    code = await booth(client, members)
    first, _ = await scan(client, wechat, code)
    second, _ = await scan(client, wechat, code)
    assert (await prospect_of("mp", first)).owner_id == members["甲"]
    later = await prospect_of("mp", second)
    assert later.owner_id is None and later.tags == ["展会"]  # still attributed and tagged


async def test_yesterdays_prospects_do_not_count_against_the_cap(client, wechat):
    members = await team({"甲": 1, "乙": 1})
    yesterday = datetime.now(UTC) - timedelta(days=1, hours=1)
    for _ in range(3):
        await Prospect.create(owner_id=members["甲"], owner_assigned_at=yesterday)
    code = await booth(client, members)
    owners = []
    for _ in range(3):
        actor, _ = await scan(client, wechat, code)
        owners.append((await prospect_of("mp", actor)).owner_id)
    assert owners == [members["乙"], members["甲"], members["backup"]]


async def test_an_inactive_member_gets_no_turn(client, wechat):
    members = await team({"甲": 5, "乙": 5})
    code = await booth(client, members)
    await Salesperson.filter(id=members["甲"]).update(active=False)
    owners = set()
    for _ in range(3):
        actor, _ = await scan(client, wechat, code)
        owners.add((await prospect_of("mp", actor)).owner_id)
    assert owners == {members["乙"]}


async def test_concurrent_scans_at_the_booth_respect_the_caps(client, wechat):
    members = await team({"甲": 2, "乙": 2})
    code = await booth(client, members)
    openids = [new_openid() for _ in range(7)]
    await asyncio.gather(*(scan(client, wechat, code, o) for o in openids))
    await settled(7)
    owners = [(await prospect_of("mp", o)).owner_id for o in openids]
    assert sorted(owners.count(members[m]) for m in ("甲", "乙", "backup")) == [2, 2, 3]


async def test_a_wecom_booth_owner_is_the_member_the_customer_added(client, wechat):
    """WeCom hands the customer to one member of a multi-member contact way: that member owns
    the prospect (not whoever's turn it would have been)."""
    members = await team({"甲": 5, "乙": 5})
    code = await booth(client, members, "wecom")
    way = wechat.contact_ways[code["config_id"]]
    assert way.users == ["booth1", "booth2"]
    external = new_external_userid()
    event = events.external_contact("add_external_contact", "booth2", external,
                                    state=way.state)
    assert (await wechat.push_wecom(str(client.make_url("/wechat/wecom")), event)).ok
    [row] = await settled(1)
    assert row.code_id == code["id"]
    assert (await prospect_of("wecom", external)).owner_id == members["乙"]


# --- WeCom: welcomed once, enriched ---------------------------------------------------------

async def test_the_wecom_welcome_is_sent_once_despite_retries_and_reprocessing(
        aiohttp_client, app_settings, wechat):
    client = await service(aiohttp_client, app_settings, recovery_after=0.0)
    ids = await people()
    code = await issue(client, kind="salesperson", channel="wecom", salesperson_id=ids["li"],
                       welcome="您好，我是李强，欢迎咨询。", tags=["名片"])
    external, _ = await scan(client, wechat, code, duplicates=2)  # WeChat sends it 3 times
    [row] = await settled(1)
    assert [c.errcode for c in wechat.calls_to(WELCOME)] == [0]
    [sent] = wechat.welcome_messages
    assert sent["text"]["content"] == "您好，我是李强，欢迎咨询。"
    # the worker processes the push again (a lost completion mark): no second welcome
    await Interaction.filter(id=row.id).update(processed_at=None)
    assert await client.app[keys.WORKER].recover() == 1
    [row] = await settled(1)
    assert row.code_id == code["id"] and row.attempts == 1
    assert [c.errcode for c in wechat.calls_to(WELCOME)] == [0]
    [message] = await OutboundMessage.filter(channel="wecom_welcome")
    assert message.status == OutboundStatus.SENT and message.recipient == external
    assert (await prospect_of("wecom", external)).tags == ["名片"]


async def test_a_refused_welcome_is_recorded_and_the_scan_still_counts(client, wechat):
    ids = await people()
    code = await issue(client, kind="salesperson", channel="wecom", salesperson_id=ids["wang"])
    wechat.fail(WELCOME, 41051)  # the customer already started chatting
    await scan(client, wechat, code)
    [row] = await settled(1)
    assert row.code_id == code["id"]
    [message] = await OutboundMessage.filter(channel="wecom_welcome")
    assert message.status == OutboundStatus.FAILED and "41051" in (message.last_error or "")
    assert message.payload == {"text": DEFAULT_CONTACT_WELCOME}


async def test_the_wecom_prospect_is_enriched_from_the_external_contact(client, wechat):
    ids = await people()
    code = await issue(client, kind="salesperson", channel="wecom", salesperson_id=ids["wang"])
    external, unionid = new_external_userid(), new_openid()
    wechat.add_external_contact(external, name="张伟", corp_name="华为技术有限公司",
                                position="采购总监", unionid=unionid, userid="wangfang")
    await scan(client, wechat, code, external)
    [row] = await settled(1)
    body = await shown(client, row.prospect_id)
    assert (body["name"], body["company"], body["title"]) == ("张伟", "华为技术有限公司",
                                                              "采购总监")
    assert {"kind": "unionid", "value": unionid} in body["identities"]
    assert {"kind": "external_userid", "value": external} in body["identities"]
    [call] = wechat.calls_to("/cgi-bin/externalcontact/get")
    assert call.query["external_userid"] == external


async def test_enrichment_keeps_what_the_prospect_told_us(client, wechat):
    ids = await people()
    code = await issue(client, kind="salesperson", channel="wecom", salesperson_id=ids["wang"])
    external = new_external_userid()
    prospects = client.app[keys.PROSPECTS]
    prospect_id = await prospects.resolve(IdentityKind.EXTERNAL_USERID, external)
    await Prospect.filter(id=prospect_id).update(name="张先生", company="自填公司")
    wechat.add_external_contact(external, name="张伟", corp_name="华为", position="总监",
                                userid="wangfang")
    await scan(client, wechat, code, external)
    await settled(1)
    prospect = await Prospect.get(id=prospect_id)
    assert (prospect.name, prospect.company, prospect.title) == ("张先生", "自填公司", "总监")


async def test_unavailable_details_do_not_fail_the_scan(client, wechat):
    ids = await people()
    code = await issue(client, kind="salesperson", channel="wecom", salesperson_id=ids["wang"])
    wechat.fail("/cgi-bin/externalcontact/get", 84061)
    external, _ = await scan(client, wechat, code)
    [row] = await settled(1)
    assert row.code_id == code["id"] and len(wechat.welcome_messages) == 1
    assert (await prospect_of("wecom", external)).name is None
    assert not await Identity.filter(kind=IdentityKind.UNIONID).exists()


# --- statistics -----------------------------------------------------------------------------

async def stats(client: Any, by: str) -> list[dict[str, Any]]:
    response = await client.get(f"/admin/stats?by={by}", headers=AUTH)
    assert response.status == 200
    body: list[dict[str, Any]] = await response.json()
    return body


def counts(scans: int, follows: int, prospects: int, opportunities: int) -> dict[str, int]:
    return {"scans": scans, "follows": follows, "prospects": prospects,
            "opportunities": opportunities}


def row(by: str, key: Any, scans: int, follows: int, prospects: int,
        opportunities: int) -> dict[str, Any]:
    return {by: key, **counts(scans, follows, prospects, opportunities)}


async def test_statistics_per_code_campaign_salesperson_and_partner(client, wechat):
    ids = await people()
    spring = await issue(client, kind="booth", channel="oa", campaign="春季展",
                         salesperson_id=ids["wang"])
    autumn = await issue(client, kind="partner", channel="oa", campaign="秋季展",
                         partner_id=ids["partner"], salesperson_id=ids["li"])
    brochure = await issue(client, kind="material", channel="mp", material_id=ids["material"])
    card = await issue(client, kind="salesperson", channel="wecom", salesperson_id=ids["li"])
    unused = await issue(client, kind="salesperson", channel="mp", salesperson_id=ids["wang"])

    first, _ = await scan(client, wechat, spring)  # follow: scan, follow, prospect
    second, _ = await scan(client, wechat, spring)  # follow: scan, follow, prospect
    await scan(client, wechat, autumn, second)  # SCAN by a follower: a scan only
    third, _ = await scan(client, wechat, autumn)  # follow: scan, follow, prospect
    reader, _ = await scan(client, wechat, brochure)  # login: scan, prospect
    await scan(client, wechat, brochure, reader)  # login again: a scan
    contact, _ = await scan(client, wechat, card)  # WeCom add: scan, prospect
    plain = new_openid()  # a follow without any code: counted nowhere
    assert (await wechat.push_oa(str(client.make_url("/wechat/oa")),
                                 events.subscribe(plain))).ok
    await settled(8)
    for who, channel, count in ((first, "oa", 2), (third, "oa", 1), (contact, "wecom", 1)):
        prospect = await prospect_of(channel, who)
        for _ in range(count):
            await Opportunity.create(prospect=prospect, salesperson_id=prospect.owner_id)

    by_code = await stats(client, "code")
    assert [{k: r[k] for k in ("code", "scans", "follows", "prospects", "opportunities")}
            for r in by_code] == [
        row("code", spring["id"], 2, 2, 2, 2),
        row("code", autumn["id"], 2, 1, 1, 1),
        row("code", brochure["id"], 2, 0, 1, 0),
        row("code", card["id"], 1, 0, 1, 1),
    ]
    assert [(r["kind"], r["channel"], r["campaign"]) for r in by_code] == [
        ("booth", "oa", "春季展"), ("partner", "oa", "秋季展"), ("material", "mp", None),
        ("salesperson", "wecom", None)]
    assert unused["id"] not in {r["code"] for r in by_code}
    assert await stats(client, "campaign") == [
        row("campaign", "春季展", 2, 2, 2, 2),
        row("campaign", "秋季展", 2, 1, 1, 1),
        row("campaign", None, 3, 0, 2, 1),
    ]
    # who got them: the owners (the brochure's reader got none; nor did the follow without a
    # code), whatever code brought them
    assert await stats(client, "salesperson") == [
        {"salesperson_id": ids["wang"], "salesperson": "王芳", **counts(3, 2, 2, 2)},
        {"salesperson_id": ids["li"], "salesperson": "李强", **counts(2, 1, 2, 2)},
        {"salesperson_id": None, "salesperson": "unassigned", **counts(2, 0, 2, 0)},
    ]
    assert await stats(client, "partner") == [
        row("partner", ids["partner"], 2, 1, 1, 1),
        row("partner", None, 5, 2, 4, 3),
    ]


async def test_statistics_of_nothing_and_a_bad_grouping(client):
    assert await stats(client, "code") == []
    assert await (await client.get("/admin/stats", headers=AUTH)).json() == []
    for by in ("material", "", "code;drop"):
        response = await client.get("/admin/stats", params={"by": by}, headers=AUTH)
        assert response.status == 400
        body = await response.json()
        assert body["error"]["code"] == "invalid_field" and "`by`" in body["error"]["message"]
    assert (await client.get("/admin/stats?by=code")).status == 401


async def test_statistics_of_more_codes_than_a_query_takes_parameters(client):
    """An account may hold 100,000 permanent codes: more than the 32,767 parameters a
    PostgreSQL (or SQLite) statement takes, so no statement may list them all."""
    from tortoise import connections

    conn = connections.get("default")
    now = "now()" if conn.capabilities.dialect == "postgres" else "datetime('now')"
    series = ("generate_series(1, 33000) AS s(g)" if conn.capabilities.dialect == "postgres"
              else "(WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s "
                   "WHERE g < 33000) SELECT g FROM s) AS s")
    await conn.execute_script(
        "INSERT INTO code (kind, channel, scene, campaign, tags, permanent, ready, created_at) "
        f"SELECT 'booth', 'oa', 'bulk' || g, 'expo', '[]', false, true, {now} FROM {series}")
    code = await Code.get(scene="bulk32999")
    await Interaction.create(source="oa", kind="event.scan", dedup_key="d1", payload={},
                             received_at=datetime.now(UTC), code_id=code.id)
    rows = await stats(client, "campaign")
    assert rows == [{"campaign": "expo", "scans": 1, "follows": 0, "prospects": 0,
                     "opportunities": 0}]
