"""From signals to sales, through the service and the sandbox: the booth story qualifies and
pushes exactly once; a scan alone, test data, key accounts; who owns the opportunity (first
touch, last touch, the partner's salesperson, the public pool); the read radar; and a rebuild
that gives every score and ledger row again.

Reads are timed by the server from the heartbeats it sees; as the read tests do
(tests/miniprogram_api/test_content.py), time passes by moving a read's last heartbeat back
(`earlier`) rather than by sleeping."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from bot import keys
from bot.sandbox import Sandbox
from bot.sandbox.records import new_openid
from domain import rules, scoring
from domain.merging import locked
from models import Opportunity, OutboundMessage, OutboundStatus, Prospect, ScoreEntry
from tests.bot.kit import service
from tests.bot.test_admin_codes import AUTH, issue
from tests.handlers.test_one_person import follow
from tests.miniprogram_api.test_content import earlier, open_read, settled, share_of, step
from tests.miniprogram_api.test_person import Person, consent, log_in

PHONE = "13912345678"  # 13800138000 is a test phone to the default rules
TEMPLATE = "tpl-opportunity-0001"
EASY = """\
attribution: {attribution}
thresholds: {{fit: 0, engagement: 40}}
profile: []
behavior:
  - {{id: scan, label: 扫码, on: scan, points: 10, cap: 100, per: code, window_hours: 24}}
  - {{id: demo_request, label: 预约演示, on: demo_request, points: 50, cap: 50}}
"""


async def salesperson(client: Any, wechat: Sandbox, name: str, **extra: Any) -> dict[str, Any]:
    """A salesperson whose OA openid follows the OA (so that template messages reach them)."""
    openid = new_openid()
    wechat.add_follower(openid)
    response = await client.post("/admin/salespeople", headers=AUTH,
                                 json={"name": name, "oa_openid": openid, **extra})
    body = await response.json()
    assert response.status == 201, body
    return dict(body)


async def whitepapers(client: Any, count: int = 3) -> list[int]:
    found = []
    for n in range(count):
        response = await client.post("/admin/materials", headers=AUTH, json={
            "title": f"2026 制造业白皮书 第{n + 1}册", "kind": "whitepaper",
            "url": f"https://example.com/wp{n}.pdf"})
        assert response.status == 201
        found.append((await response.json())["id"])
    return found


async def read_through(client: Any, person: Person, material_id: int,
                       share: str | None = None) -> None:
    """Opens a material and reads it to the end: about 30 seconds as the server counts them."""
    extra = {"share": share} if share else {}
    read_id = await open_read(client, person, material_id, **extra)
    await earlier(read_id, seconds=15)
    await step(client, person, read_id, progress=0.5)
    await earlier(read_id, seconds=15)
    await step(client, person, read_id, "close", progress=1.0)
    await settled(client)


async def visit(client: Any, wechat: Sandbox, code: dict[str, Any], unionid: str, *,
                profile: dict[str, Any] | None = None, phone: str | None = None) -> Person:
    """A visitor following the OA through `code`, then in the mini-program (same UnionID)
    with `profile` (and consent) and `phone`."""
    await follow(client, wechat, code, new_openid(), unionid)
    await settled(client)
    person = await log_in(client, wechat, new_openid(), unionid)
    if profile is not None:
        await consent(client, person, **profile)
    if phone is not None:
        response = await client.post("/mp/phone", headers=person.headers,
                                     json={"code": wechat.issue_phone_code(phone)})
        assert response.status == 200, await response.text()
    await settled(client)
    return person


async def booth_story(client: Any, wechat: Sandbox, unionid: str = "oUnionBoothStory000000000001",
                      **profile: Any) -> tuple[dict[str, Any], dict[str, Any], Person]:
    """The default story: a salesperson's booth code, a visitor with a director's title, a
    company of 500-999, a phone, and three whitepapers read to the end."""
    wang = await salesperson(client, wechat, "王芳")
    booth = await issue(client, kind="booth", channel="oa", campaign="2026 工博会",
                        salesperson_id=wang["id"])
    person = await visit(client, wechat, booth, unionid, phone=PHONE, profile={
        "title": "市场总监", "company_size": "500-999", **profile})
    for material_id in await whitepapers(client):
        await read_through(client, person, material_id)
    return wang, booth, person


async def survivor(person: Person) -> Prospect:
    prospect = await Prospect.get(id=person.prospect_id)
    if prospect.merged_into_id is not None:  # type: ignore[attr-defined]
        prospect = await Prospect.get(id=prospect.merged_into_id)  # type: ignore[attr-defined]
    return prospect


async def send(client: Any) -> int:
    return int(await client.app[keys.SENDER].send_due())


@pytest.fixture
def serve(aiohttp_client: Any, app_settings: Any, store: Any, tmp_path: Path) -> Any:
    """The service with the rules of a file written to tmp (`store`: Redis starts empty)."""

    async def with_rules(text: str) -> Any:
        path = tmp_path / "rules.yaml"
        path.write_text(text, encoding="utf-8")
        rules.load(path)  # valid
        return await service(aiohttp_client, app_settings, scoring_rules=str(path))

    return with_rules


def easy(attribution: str = "first_touch") -> str:
    return EASY.format(attribution=attribution)


async def demo_request(client: Any, person: Person) -> None:
    response = await client.post("/mp/actions", headers=person.headers,
                                 json={"kind": "demo_request"})
    assert response.status == 201, await response.text()
    await settled(client)


# --- the booth story ---------------------------------------------------------------------------

async def test_the_booth_story_qualifies_and_pushes_exactly_once(client, wechat):
    wang, booth, person = await booth_story(client, wechat)
    prospect = await survivor(person)
    assert (prospect.profile_score, prospect.behavior_score, prospect.quadrant) == (
        24, 55, "opportunity")
    [opportunity] = await Opportunity.all()
    assert opportunity.prospect_id == prospect.id  # type: ignore[attr-defined]
    assert opportunity.salesperson_id == wang["id"]  # type: ignore[attr-defined]
    assert (opportunity.status, opportunity.attribution) == ("open", "first_touch")
    assert [(t["code_id"], t["code_kind"], t["kind"], t["salesperson_id"])
            for t in opportunity.touches] == [(booth["id"], "booth", "event.subscribe",
                                               wang["id"])]
    assert opportunity.breakdown["quadrant"] == "opportunity"
    assert opportunity.qualified_by is not None and opportunity.reached_at is None

    assert await send(client) == 1
    [message] = wechat.template_messages
    assert (message["touser"], message["template_id"]) == (wang["oa_openid"], TEMPLATE)
    data = message["data"]
    assert set(data) == {"thing1", "thing2", "time3", "thing4"}
    for key in ("thing1", "thing2", "thing4"):
        assert 0 < len(data[key]["value"]) <= 20, data
    assert data["thing1"]["value"] == f"访客{prospect.id}"  # no name given
    assert data["thing2"]["value"] == f"新商机 评分{opportunity.score}"
    assert data["thing4"]["value"].startswith("读完白皮书 · ")  # why: the rules that gave most
    assert message["url"].startswith("http://scrm.test/o/")
    assert wechat.app_messages == []
    await opportunity.refresh_from_db()
    assert opportunity.reached_at is not None

    assert await send(client) == 0  # nothing more to send
    assert len(wechat.template_messages) == 1
    # reading on: no second opportunity, nothing more queued
    for material_id in await whitepapers(client, 2):
        await read_through(client, person, material_id)
    assert await Opportunity.all().count() == 1
    assert await send(client) == 0 and len(wechat.template_messages) == 1


async def test_a_visitor_who_only_scans_does_not_qualify(client, wechat):
    wang = await salesperson(client, wechat, "王芳")
    booth = await issue(client, kind="booth", channel="oa", campaign="2026 工博会",
                        salesperson_id=wang["id"])
    await follow(client, wechat, booth, new_openid(), "oUnionOnlyScans0000000000001")
    await settled(client)
    [prospect] = await Prospect.all()
    assert (prospect.profile_score, prospect.behavior_score, prospect.quadrant) == (
        0, 10, "pool")
    assert sorted(await ScoreEntry.filter(prospect_id=prospect.id).values_list(
        "rule", flat=True)) == ["booth_scan", "follow"]
    assert not await Opportunity.exists()
    assert await send(client) == 0 and wechat.template_messages == []


# --- cleaning and key accounts -----------------------------------------------------------------

async def test_test_data_never_becomes_an_opportunity(client, wechat):
    _, _, person = await booth_story(client, wechat, company="测试公司")
    prospect = await survivor(person)
    assert prospect.quadrant == "opportunity"  # it scores, but it is not a lead
    assert not await Opportunity.exists()
    assert await send(client) == 0 and wechat.template_messages == []


async def test_an_invalid_phone_never_becomes_an_opportunity(client, wechat):
    wang = await salesperson(client, wechat, "王芳")
    booth = await issue(client, kind="booth", channel="oa", campaign="2026 工博会",
                        salesperson_id=wang["id"])
    person = await visit(client, wechat, booth, "oUnionTestPhone0000000000001",
                         profile={"title": "市场总监", "company_size": "500-999"},
                         phone="13800138000")
    for material_id in await whitepapers(client):
        await read_through(client, person, material_id)
    assert (await survivor(person)).quadrant == "opportunity"
    assert not await Opportunity.exists()


async def test_a_key_account_goes_to_sales_at_once(serve, wechat):
    client = await serve(rules.DEFAULTS.read_text(encoding="utf-8").replace(
        "key_accounts: []", "key_accounts: [华东精密]"))
    wang = await salesperson(client, wechat, "王芳")
    booth = await issue(client, kind="booth", channel="oa", campaign="2026 工博会",
                        salesperson_id=wang["id"])
    person = await visit(client, wechat, booth, "oUnionKeyAccount000000000001",
                         profile={"company": "华东精密股份"})
    prospect = await survivor(person)
    assert prospect.quadrant == "pool"  # a single scan: far from qualifying by score
    [opportunity] = await Opportunity.all()
    assert (opportunity.salesperson_id, opportunity.status, opportunity.attribution) == (  # type: ignore[attr-defined]
        wang["id"], "open", "key_account")
    assert opportunity.reason == "key account 华东精密"
    assert await send(client) == 1
    [message] = wechat.template_messages
    assert message["touser"] == wang["oa_openid"]
    assert message["data"]["thing4"]["value"] == "重点客户 华东精密"


# --- who owns it -------------------------------------------------------------------------------

async def test_last_touch_gives_it_to_the_latest_codes_salesperson(serve, wechat):
    client = await serve(easy("last_touch"))
    wang = await salesperson(client, wechat, "王芳")
    li = await salesperson(client, wechat, "李强")
    booth = await issue(client, kind="booth", channel="oa", campaign="2026 工博会",
                        salesperson_id=wang["id"])
    card = await issue(client, kind="salesperson", channel="oa", salesperson_id=li["id"])
    unionid = "oUnionLastTouch0000000000001"
    openid = new_openid()
    await follow(client, wechat, booth, openid, unionid)
    await settled(client)
    await follow(client, wechat, card, openid, unionid)  # a follower scanning again
    await settled(client)
    assert not await Opportunity.exists()  # 20 points: not yet
    await demo_request(client, await log_in(client, wechat, new_openid(), unionid))
    [opportunity] = await Opportunity.all()
    assert (await Prospect.get(id=opportunity.prospect_id)).owner_id == wang["id"]  # type: ignore[attr-defined]
    assert (opportunity.salesperson_id, opportunity.status, opportunity.attribution) == (  # type: ignore[attr-defined]
        li["id"], "open", "last_touch")
    assert [t["code_id"] for t in opportunity.touches] == [booth["id"], card["id"]]
    assert await send(client) == 1
    assert [m["touser"] for m in wechat.template_messages] == [li["oa_openid"]]


async def test_a_partners_prospect_goes_to_the_partners_salesperson(serve, wechat):
    client = await serve(easy())
    zhao = await salesperson(client, wechat, "赵六")
    response = await client.post("/admin/partners", headers=AUTH, json={
        "name": "上海渠道", "salesperson_id": zhao["id"]})
    assert response.status == 201
    partner = await response.json()
    code = await issue(client, kind="partner", channel="oa", partner_id=partner["id"])
    person = await visit(client, wechat, code, "oUnionPartner00000000000001")
    assert (await survivor(person)).owner_id is None  # type: ignore[attr-defined]
    await demo_request(client, person)
    [opportunity] = await Opportunity.all()
    assert (opportunity.salesperson_id, opportunity.status, opportunity.attribution) == (  # type: ignore[attr-defined]
        zhao["id"], "open", "partner")
    assert opportunity.touches[0]["partner_id"] == partner["id"]
    assert await send(client) == 1
    assert [m["touser"] for m in wechat.template_messages] == [zhao["oa_openid"]]


async def test_without_an_owner_it_goes_to_the_public_pool(serve, wechat):
    client = await serve(easy())
    await salesperson(client, wechat, "王芳")  # there are salespeople, none of them this code's
    material = (await whitepapers(client, 1))[0]
    code = await issue(client, kind="material", channel="oa", material_id=material)
    person = await visit(client, wechat, code, "oUnionPublicPool000000000001")
    await demo_request(client, person)
    [opportunity] = await Opportunity.all()
    assert (opportunity.salesperson_id, opportunity.status, opportunity.attribution) == (  # type: ignore[attr-defined]
        None, "pool", "pool")
    assert not await OutboundMessage.exists()  # nothing queued
    assert await send(client) == 0 and wechat.template_messages == []
    await demo_request(client, person)  # a pool opportunity is still open: not a second one
    assert await Opportunity.all().count() == 1


async def test_a_pool_opportunity_goes_to_an_owner_once_there_is_one(serve, wechat):
    client = await serve(easy())
    material = (await whitepapers(client, 1))[0]
    code = await issue(client, kind="material", channel="oa", material_id=material)
    person = await visit(client, wechat, code, "oUnionPoolThenOwner000000001")
    await demo_request(client, person)
    [opportunity] = await Opportunity.all()
    assert opportunity.status == "pool"
    li = await salesperson(client, wechat, "李雷")
    card = await issue(client, kind="salesperson", channel="mp", salesperson_id=li["id"])
    response = await client.post("/mp/login", json={  # the visitor scans 李雷's card
        "code": wechat.issue_login_code(person.openid), "scene": card["scene"]})
    assert response.status == 200
    await settled(client)
    await opportunity.refresh_from_db()
    assert (opportunity.salesperson_id, opportunity.status) == (li["id"], "open")  # type: ignore[attr-defined]
    assert await send(client) == 1
    [sent] = wechat.template_messages
    assert sent["touser"] == li["oa_openid"]
    assert await Opportunity.all().count() == 1


async def test_after_a_closed_opportunity_a_new_one_needs_a_new_qualification(serve, wechat):
    client = await serve(easy().replace("cap: 50}", "cap: 100}"))
    wang = await salesperson(client, wechat, "王芳")
    booth = await issue(client, kind="booth", channel="oa", campaign="2026 工博会",
                        salesperson_id=wang["id"])
    person = await visit(client, wechat, booth, "oUnionRequalify0000000000001")
    await demo_request(client, person)
    [first] = await Opportunity.all()
    await Opportunity.filter(id=first.id).update(status="won")
    await demo_request(client, person)  # still qualifying, never left: no new opportunity
    assert await Opportunity.all().count() == 1
    # the person falls out of the quadrant (their points decay), then qualifies again
    prospect = await survivor(person)
    await Prospect.filter(id=prospect.id).update(quadrant="pool")
    await demo_request(client, person)
    assert [o.status for o in await Opportunity.all().order_by("id")] == ["won", "open"]


async def test_withdrawn_consent_stops_a_push_not_yet_sent_and_keeps_no_name(client, wechat):
    wang, booth, person = await booth_story(client, wechat, name="张伟", company="华东精密")
    [message] = await OutboundMessage.all()
    assert "张伟" in str(message.payload)
    response = await client.delete("/mp/profile", headers=person.headers)
    assert response.status == 204
    await message.refresh_from_db()
    assert message.status == OutboundStatus.FAILED
    assert message.last_error == "consent withdrawn: not sent"
    assert message.payload == {"erased": True}
    assert await send(client) == 0 and wechat.template_messages == []


# --- the read radar ----------------------------------------------------------------------------

async def test_a_read_through_a_share_tells_the_salesperson_once_an_hour(client, wechat):
    wang = await salesperson(client, wechat, "王芳")
    [material, other] = await whitepapers(client, 2)
    token = await share_of(client, material, wang["id"])
    reader = await log_in(client, wechat)
    await consent(client, reader, name="张伟", company="华东精密")
    viewed = await client.get(f"/mp/materials/{material}", params={"share": token},
                              headers=reader.headers)
    assert viewed.status == 200
    await read_through(client, reader, material, token)
    assert await send(client) == 1
    [message] = wechat.template_messages
    assert (message["touser"], message["template_id"]) == (wang["oa_openid"], TEMPLATE)
    assert message["data"]["thing1"]["value"] == "张伟（华东精密）"
    assert message["data"]["thing2"]["value"] == "阅读《2026 制造业白皮书 第1册》"
    assert message["data"]["thing4"]["value"].endswith("进度100%")
    # the same material again within the hour: nothing new
    await read_through(client, reader, material, token)
    assert await send(client) == 0 and len(wechat.template_messages) == 1
    # a read without the share tells nobody; another shared material does
    await read_through(client, reader, other)
    assert await send(client) == 0
    await read_through(client, reader, other, await share_of(client, other, wang["id"]))
    assert await send(client) == 1 and len(wechat.template_messages) == 2
    assert not await Opportunity.exists()


# --- rebuild -----------------------------------------------------------------------------------

async def snapshot() -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Every ledger row, and the score of every person (merged-away records keep none)."""
    entries = sorted(await ScoreEntry.all().values_list(
        "prospect_id", "rule", "kind", "points", "interaction_id"))
    scores = sorted(await Prospect.filter(merged_into_id=None).values_list(
        "id", "profile_score", "behavior_score", "quadrant"))
    return entries, scores


async def test_a_rebuild_gives_every_score_and_ledger_row_again(client, wechat):
    wang, _, _ = await booth_story(client, wechat)
    card = await issue(client, kind="salesperson", channel="oa", salesperson_id=wang["id"])
    await follow(client, wechat, card, new_openid(), "oUnionRebuildOther000000001")
    await settled(client)
    people = await Prospect.filter(merged_into_id=None).count()
    assert await Prospect.all().count() == people  # nobody merged away: every prospect
    before = await snapshot()
    assert len(before[0]) == 8 + 2 and len(before[1]) == people == 2  # the story's and a scan's
    in_force = client.app[keys.RULES]
    assert await scoring.rebuild(in_force) == people
    assert await snapshot() == before

    await ScoreEntry.all().delete()
    await Prospect.all().update(profile_score=0, behavior_score=0, quadrant=None)
    assert await snapshot() != before
    seen: list[int] = []
    assert await scoring.rebuild(in_force, chunk=1, progress=seen.append) == people
    assert await snapshot() == before
    assert seen == [1] * people
    assert await Opportunity.all().count() == 1  # a rebuild creates and pushes nothing
    assert await send(client) == 1 and len(wechat.template_messages) == 1


async def test_a_rebuild_waits_for_a_person_being_scored(client, wechat):
    wang = await salesperson(client, wechat, "王芳")
    booth = await issue(client, kind="booth", channel="oa", campaign="2026 工博会",
                        salesperson_id=wang["id"])
    await follow(client, wechat, booth, new_openid(), "oUnionRebuildRace00000000001")
    await settled(client)
    [prospect] = await Prospect.all()
    in_force = client.app[keys.RULES]
    scored, release = asyncio.Event(), asyncio.Event()

    async def a_signal_being_scored() -> None:
        async with locked(prospect.id):
            await scoring.score_one(in_force, prospect.id)
            scored.set()
            await release.wait()

    signal = asyncio.create_task(a_signal_being_scored())
    await scored.wait()
    rebuilding = asyncio.create_task(scoring.rebuild(in_force))
    await asyncio.sleep(0.3)  # the rebuild reaches the person meanwhile
    release.set()
    await signal
    assert await rebuilding == 1
    assert sorted(await ScoreEntry.all().values_list("rule", flat=True)) == ["booth_scan",
                                                                             "follow"]
