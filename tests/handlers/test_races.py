"""What a review of one prospect per person found: writes racing merges, withdrawals racing
binds, signals the worker replays late, reads closed while the store fails, heartbeats of one
read in one batch. Each failed before its fix."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import domain.attribution
import handlers.mp
import handlers.wecom
from bot import keys
from bot.beats import Beat
from bot.privacy import Sealer
from bot.signals import Signal
from bot.store import MemoryStore
from domain import content, merging
from domain.identity import Prospects
from models import Code, Identity, IdentityKind, Interaction, Material, Prospect, Read, Salesperson
from tests.bot.kit import eventually
from tests.miniprogram_api.test_content import material, open_read, reads
from tests.miniprogram_api.test_person import FULL_PROFILE, PHONE, bind, consent, log_in


@pytest.fixture
def prospects() -> Prospects:
    return Prospects(Sealer("test-secret-key-0123456789abcdef"))


def merge_after_load(monkeypatch: Any, module: Any, survivor: int, merged: int) -> None:
    """The next `load` of `merged` in `module` is followed by its merge into `survivor`, as a
    merge by another request could be."""
    real = module.load

    async def load(prospect_id: int) -> Prospect:
        found = await real(prospect_id)
        if found.id == merged:
            await merging.merge(survivor, merged, "meanwhile")
        return found

    monkeypatch.setattr(module, "load", load)


async def test_tags_added_during_a_merge_reach_the_survivor(db, prospects, monkeypatch):
    first = await prospects.resolve(IdentityKind.OA_OPENID, "oA")
    second = await prospects.resolve(IdentityKind.MP_OPENID, "mB")
    merge_after_load(monkeypatch, domain.attribution, first, second)
    assert await domain.attribution.add_tags(second, ["白皮书"]) == first
    assert (await Prospect.get(id=first)).tags == ["白皮书"]


async def test_an_owner_set_during_a_merge_reaches_the_survivor(db, prospects):
    first = await prospects.resolve(IdentityKind.OA_OPENID, "oA")
    second = await prospects.resolve(IdentityKind.MP_OPENID, "mB")
    wang = await Salesperson.create(name="王芳", team="T")
    code = await Code.create(kind="booth", channel="oa", scene="s1", campaign="c", team="T")
    attribution = domain.attribution.Attribution(MemoryStore())
    real = attribution.turns

    async def turns(team: str) -> domain.attribution.Turns:  # the turn is chosen, then a merge
        found = await real(team)
        await merging.merge(first, second, "meanwhile")
        return found

    attribution.turns = turns  # type: ignore[method-assign]
    assert await attribution.deal([domain.attribution.Touch(code, [], second)]) == [wang.id]
    assert (await Prospect.get(id=first)).owner_id == wang.id  # type: ignore[attr-defined]
    assert (await Prospect.get(id=second)).owner_id is None  # type: ignore[attr-defined]


async def test_wecom_details_fetched_during_a_merge_reach_the_survivor(db, prospects,
                                                                      monkeypatch):
    first = await prospects.resolve(IdentityKind.OA_OPENID, "oA")
    second = await prospects.resolve(IdentityKind.EXTERNAL_USERID, "wmB")

    class WeChat:
        class wecom:  # noqa: N801 - the shape of bot.wechat.WeChat
            @staticmethod
            async def get_external_contact(userid: str) -> dict[str, Any]:
                await merging.merge(first, second, "meanwhile")
                return {"external_contact": {"name": "张伟", "corp_name": "华东精密"}}

    signal = Signal(source="wecom", kind="x", dedup_key="d", actor="wmB", scene=None, fields={})
    assert await handlers.wecom.enrich(signal, second, prospects, WeChat) == first  # type: ignore[arg-type]
    survivor = await Prospect.get(id=first)
    assert (survivor.name, survivor.company) == ("张伟", "华东精密")


async def test_a_withdrawal_racing_merges_leaves_nothing_personal(client, wechat):
    for _ in range(3):
        older = await log_in(client, wechat)
        me = await log_in(client, wechat)
        await consent(client, me, **FULL_PROFILE)
        await bind(client, wechat, me)
        withdrawn, _ = await asyncio.gather(
            client.delete("/mp/profile", headers=me.headers),
            merging.merge(older.prospect_id, me.prospect_id, "same unionid"))
        assert withdrawn.status == 204
        everyone = await merging.family(older.prospect_id)
        for prospect in await Prospect.filter(id__in=everyone):
            assert (prospect.name, prospect.email, prospect.consent_version) == (None,) * 3
        assert not await Identity.filter(prospect_id__in=everyone,
                                         kind=IdentityKind.PHONE).exists()


async def test_a_phone_bound_while_consent_is_withdrawn_is_not_kept(client, wechat):
    me = await log_in(client, wechat)
    await consent(client, me, name="张伟")
    prospects = client.app[keys.PROSPECTS]
    real, gate = prospects.link, asyncio.Event()

    async def held_link(*args: Any, **kwargs: Any) -> int:
        await gate.wait()  # the handler has checked the consent already
        return int(await real(*args, **kwargs))

    prospects.link = held_link
    binding = asyncio.create_task(client.post(
        "/mp/phone", headers=me.headers, json={"code": wechat.issue_phone_code(PHONE)}))
    await eventually(lambda: Interaction.filter(kind="mp.phone").exists())
    assert (await client.delete("/mp/profile", headers=me.headers)).status == 204
    gate.set()
    assert (await binding).status == 200
    assert not await Identity.filter(kind=IdentityKind.PHONE).exists()


def fail_once(monkeypatch: Any, module: Any, name: str) -> None:
    """The next call of `module.name` fails as an unreachable database would."""
    real, failed = getattr(module, name), []

    def flaky(*args: Any, **kwargs: Any) -> Any:
        if not failed:
            failed.append(True)
            raise ConnectionRefusedError("the database is briefly unreachable")
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, flaky)


async def replay(client: Any, kind: str) -> None:
    """What the worker does with a signal left unprocessed: try it again."""
    for row in await Interaction.filter(kind=kind, processed_at=None):
        await Interaction.filter(id=row.id).update(received_at=row.received_at.replace(year=2020))
    await client.app[keys.WORKER].recover()


async def test_a_late_profile_never_overwrites_a_newer_one(client, wechat, monkeypatch):
    me = await log_in(client, wechat)
    fail_once(monkeypatch, handlers.mp, "locked")
    first = await client.post("/mp/profile", headers=me.headers, json={
        "consent_version": "v1", "title": "销售经理", "company": "旧公司"})
    assert first.status == 503  # stored, left for the worker
    second = await client.post("/mp/profile", headers=me.headers, json={
        "consent_version": "v2", "title": "市场总监", "company": "新公司"})
    assert second.status == 200
    await replay(client, "mp.profile")
    prospect = await Prospect.get(id=me.prospect_id)
    assert (prospect.title, prospect.company, prospect.consent_version) == (
        "市场总监", "新公司", "v2")


async def test_a_late_profile_never_brings_a_withdrawn_consent_back(client, wechat, monkeypatch):
    me = await log_in(client, wechat)
    fail_once(monkeypatch, handlers.mp, "locked")
    assert (await client.post("/mp/profile", headers=me.headers,
                              json=FULL_PROFILE)).status == 503
    assert (await client.delete("/mp/profile", headers=me.headers)).status == 204
    await replay(client, "mp.profile")
    prospect = await Prospect.get(id=me.prospect_id)
    assert (prospect.consent_version, prospect.name) == (None, None)
    phone = await client.post("/mp/phone", headers=me.headers,
                              json={"code": wechat.issue_phone_code(PHONE)})
    assert phone.status == 409


async def test_a_finished_read_survives_a_failure_to_store_it(client, wechat, monkeypatch):
    me = await log_in(client, wechat)
    doc = await material(client)
    read_id = await open_read(client, me, doc["id"])
    writer = client.app[keys.INTERACTIONS]
    real, failed = writer.save, []

    async def flaky(row: Any) -> Any:
        if row.kind == "mp.read" and not failed:
            failed.append(True)
            raise ConnectionRefusedError("the database is briefly unreachable")
        return await real(row)

    monkeypatch.setattr(writer, "save", flaky)
    assert (await reads(client, me, action="close", read_id=read_id,
                        progress=1.0)).status == 503
    assert (await reads(client, me, action="close", read_id=read_id,
                        progress=1.0)).status == 200
    await client.app[keys.DISPATCHER].drain(timeout=5)
    assert (await Read.get(id=read_id)).closed_at is not None
    assert await Interaction.filter(kind="mp.read").count() == 1


async def test_beats_of_one_read_in_one_batch_count_as_one(client, wechat):
    me = await log_in(client, wechat)
    doc = await material(client)
    read_id = await open_read(client, me, doc["id"])
    start = datetime.now(UTC) - timedelta(minutes=1)
    await Read.filter(id=read_id).update(seen_at=start)
    beats = client.app[keys.BEATS]
    answers = await asyncio.gather(
        beats.beat(Beat(read_id, me.prospect_id, 0.9, start + timedelta(seconds=20))),
        beats.beat(Beat(read_id, me.prospect_id, 0.2, start + timedelta(seconds=10))),
        beats.beat(Beat(read_id, 999_999, 0.99, start + timedelta(seconds=25))))
    assert answers == [True, True, False]  # not someone else's read
    read = await Read.get(id=read_id)
    assert (round(read.seconds), read.progress) == (20, 0.9)


async def test_a_merged_reader_keeps_one_share_of_a_material(db, prospects):
    first = await prospects.resolve(IdentityKind.OA_OPENID, "oA")
    second = await prospects.resolve(IdentityKind.MP_OPENID, "mB")
    doc = await Material.create(title="白皮书", kind="whitepaper")
    theirs = await content.reader_share(doc.id, second, None)
    await merging.merge(first, second, "same unionid")
    assert (await content.reader_share(doc.id, first, None)).id == theirs.id
