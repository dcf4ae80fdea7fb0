"""domain.merging: two records of one person become one, losing nothing, even concurrently."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from bot.privacy import Sealer
from domain.identity import Prospects
from domain.merging import current, family, merge
from models import (
    Code,
    Identity,
    IdentityKind,
    Interaction,
    Material,
    Opportunity,
    OutboundMessage,
    OutboundStatus,
    Partner,
    Prospect,
    ProspectMerge,
    Read,
    Salesperson,
    ScoreEntry,
    Share,
)


@pytest.fixture
def prospects() -> Prospects:
    return Prospects(Sealer("test-secret-key-0123456789abcdef"))


async def person(prospects: Prospects, openid: str, *, interactions: int = 2,
                 **fields: object) -> int:
    prospect_id = await prospects.resolve(IdentityKind.OA_OPENID, openid)
    if fields:
        await Prospect.filter(id=prospect_id).update(**fields)
    for n in range(interactions):
        await Interaction.create(source="oa", kind="message.text", dedup_key=f"{openid}:{n}",
                                 actor=openid, payload={}, received_at=datetime.now(UTC),
                                 prospect_id=prospect_id)
    return prospect_id


async def test_the_first_seen_survives_and_everything_moves(db, prospects):
    wang = await Salesperson.create(name="王芳")
    li = await Salesperson.create(name="李强")
    partner = await Partner.create(name="渠道")
    code = await Code.create(kind="booth", channel="oa", scene="s1", campaign="展会")
    material = await Material.create(title="白皮书", kind="whitepaper")
    first = await person(prospects, "o1", tags=["展会"], name="张伟", owner_id=None)
    second = await person(prospects, "o2", tags=["白皮书", "展会"], name="张先生",
                          company="华东精密", owner_id=li.id, first_code_id=code.id,
                          partner_id=partner.id)
    await Identity.create(prospect_id=second, kind="unionid", value="u1")
    await Opportunity.create(prospect_id=second, salesperson=wang)
    share = await Share.create(key="p:x", material=material, prospect_id=second)
    await Read.create(prospect_id=second, material=material, share=share,
                      opened_at=datetime.now(UTC), seen_at=datetime.now(UTC))

    assert await merge(second, first, "same unionid") == first
    survivor = await Prospect.get(id=first)
    assert survivor.tags == ["展会", "白皮书"]
    assert (survivor.name, survivor.company) == ("张伟", "华东精密")  # blanks filled, nothing lost
    assert (survivor.owner_id, survivor.first_code_id, survivor.partner_id) == (  # type: ignore[attr-defined]
        li.id, code.id, partner.id)  # the first seen had none: the other's fill them
    assert await Identity.filter(prospect_id=first).count() == 3
    assert await Interaction.filter(prospect_id=first).count() == 4
    assert await Opportunity.filter(prospect_id=first).count() == 1
    assert await Read.filter(prospect_id=first).count() == 1
    assert await Share.filter(prospect_id=first).count() == 1
    tombstone = await Prospect.get(id=second)
    assert tombstone.merged_into_id == first and tombstone.name is None  # type: ignore[attr-defined]
    record = await ProspectMerge.get()
    assert (record.survivor_id, record.merged_id, record.reason) == (  # type: ignore[attr-defined]
        first, second, "same unionid")
    assert record.moved["identity"] == 2 and record.moved["interaction"] == 2
    assert "company" in record.moved["fields"]
    assert await current(second) == first and await family(second) == [first, second]


async def test_the_earliest_first_touch_keeps_its_owner(db, prospects):
    wang = await Salesperson.create(name="王芳")
    li = await Salesperson.create(name="李强")
    early = await person(prospects, "o1", owner_id=wang.id)
    late = await person(prospects, "o2", owner_id=li.id)
    await Prospect.filter(id=late).update(created_at=datetime.now(UTC) - timedelta(days=3))
    assert await merge(early, late, "same phone") == late  # created first, whatever its id
    assert (await Prospect.get(id=late)).owner_id == li.id  # type: ignore[attr-defined]


async def test_merges_chain_to_one_survivor(db, prospects):
    a, b, c = [await person(prospects, f"o{n}") for n in range(3)]
    assert await merge(b, c, "same unionid") == b
    assert await merge(a, b, "same phone") == a
    # c's tombstone was re-pointed: one step reaches the survivor
    assert (await Prospect.get(id=c)).merged_into_id == a  # type: ignore[attr-defined]
    assert await ProspectMerge.filter(survivor_id=a).count() == 2
    assert await merge(c, a, "again") == a and await ProspectMerge.all().count() == 2


async def test_concurrent_overlapping_merges_lose_nothing(db, prospects):
    ids = [await person(prospects, f"o{n}", interactions=3) for n in range(6)]
    pairs = [(ids[i], ids[j]) for i in range(6) for j in range(i + 1, 6)]
    results = await asyncio.gather(*(merge(a, b, "test") for a, b in pairs))
    survivor = ids[0]  # each answer was the survivor of its moment; all lead to the first now
    assert {await current(result) for result in results} == {survivor}
    assert await Prospect.filter(merged_into_id=None).count() == 1
    assert await Interaction.filter(prospect_id=survivor).count() == 18
    assert await Identity.filter(prospect_id=survivor).count() == 6
    assert await ProspectMerge.filter(survivor_id=survivor).count() == 5
    assert sorted(await family(ids[3])) == sorted(ids)


async def test_concurrent_links_of_one_person_make_one_prospect(db, prospects):
    """An OA follower and a mini-program user are found to share a UnionID by several requests
    at once: one prospect remains."""
    oa = await person(prospects, "o1")
    mp = await prospects.resolve(IdentityKind.MP_OPENID, "m1")
    wecom = await prospects.resolve(IdentityKind.EXTERNAL_USERID, "wm1")
    results = await asyncio.gather(*(prospects.link(who, IdentityKind.UNIONID, "u1")
                                     for who in (oa, mp, wecom, mp, oa)))
    assert {await current(result) for result in results} == {oa}
    assert await Prospect.filter(merged_into_id=None).count() == 1
    for kind, value in (("oa_openid", "o1"), ("mp_openid", "m1"), ("external_userid", "wm1"),
                        ("unionid", "u1")):
        assert await Prospects(prospects.sealer).find(kind, value) == oa


async def test_two_open_opportunities_become_one_and_the_duplicates_push_is_not_sent(
        db, prospects):
    first = await person(prospects, "oFirst")
    second = await person(prospects, "oSecond")
    wang = await Salesperson.create(name="王芳")
    li = await Salesperson.create(name="李雷")
    kept = await Opportunity.create(prospect_id=first, salesperson=wang, status="open")
    duplicate = await Opportunity.create(prospect_id=second, salesperson=li, status="open")
    pending = await OutboundMessage.create(purpose=f"opportunity:{duplicate.id}",
                                           channel="oa_template", recipient="oLi",
                                           payload={}, opportunity_id=duplicate.id)
    await ScoreEntry.create(prospect_id=second, rule="follow", kind="behavior", points=5,
                            at=datetime.now(UTC))
    survivor = await merge(first, second, "same unionid")
    assert survivor == first
    await kept.refresh_from_db()
    await duplicate.refresh_from_db()
    await pending.refresh_from_db()
    assert (kept.status, duplicate.status) == ("open", "merged")
    assert duplicate.prospect_id == first  # type: ignore[attr-defined]  # moved, kept on record
    assert pending.status == OutboundStatus.FAILED and "merged" in (pending.last_error or "")
    assert not await ScoreEntry.exists()  # redone by the rescore that follows a merge
    record = await ProspectMerge.get(survivor_id=first)
    assert record.moved["duplicate_opportunities"] == [duplicate.id]


async def test_an_open_opportunity_of_the_merged_record_alone_stays_open(db, prospects):
    first = await person(prospects, "oFirstAlone")
    second = await person(prospects, "oSecondAlone")
    wang = await Salesperson.create(name="王芳")
    only = await Opportunity.create(prospect_id=second, salesperson=wang, status="open")
    assert await merge(first, second, "same phone") == first
    await only.refresh_from_db()
    assert (only.status, only.prospect_id) == ("open", first)  # type: ignore[attr-defined]
