"""One person, one prospect: a follower, a mini-program user and a WeCom contact sharing a
UnionID are one prospect, whichever comes first."""

from __future__ import annotations

from typing import Any

from bot import keys
from bot.sandbox import Sandbox, events
from bot.sandbox.records import new_openid
from models import Code, Identity, IdentityKind, Interaction, Prospect, ProspectMerge
from tests.bot.kit import eventually, service
from tests.bot.test_admin_codes import AUTH, issue, people

UNIONID = "oUnionUnionUnionUnionUnion01"


async def follow(client: Any, wechat: Sandbox, code: dict[str, Any], openid: str,
                 unionid: str | None = UNIONID) -> None:
    delivery = await wechat.push_oa(str(client.make_url("/wechat/oa")),
                                    events.scan_code(wechat, code["ticket"], openid, unionid))
    assert delivery.ok


async def login(client: Any, wechat: Sandbox, openid: str, unionid: str | None = UNIONID) -> int:
    response = await client.post("/mp/login", json={
        "code": wechat.issue_login_code(openid, unionid)})
    assert response.status == 200
    return int((await response.json())["prospect_id"])


async def the_one(identities: list[tuple[str, str]]) -> int:
    async def all_linked() -> int | None:
        found = {(await Identity.get_or_none(kind=kind, value=value)) for kind, value in
                 identities}
        if None in found:
            return None
        ids = {i.prospect_id for i in found}  # type: ignore[union-attr]
        return ids.pop() if len(ids) == 1 else None

    return int(await eventually(all_linked))


async def test_a_follower_who_logs_in_to_the_mini_program_is_one_prospect(client, wechat):
    ids = await people()
    booth = await issue(client, kind="booth", channel="oa", campaign="2026 展会",
                        salesperson_id=ids["wang"])
    openid, mini = new_openid(), new_openid()
    await follow(client, wechat, booth, openid)
    follower = await the_one([("oa_openid", openid), ("unionid", UNIONID)])
    assert await login(client, wechat, mini) == follower
    assert await the_one([("oa_openid", openid), ("mp_openid", mini), ("unionid", UNIONID)]) \
        == follower
    assert await Prospect.filter(merged_into_id=None).count() == 1
    assert await ProspectMerge.all().count() == 0  # found, never two to begin with
    prospect = await Prospect.get(id=follower)
    assert prospect.owner_id == ids["wang"] and prospect.first_code_id == booth["id"]  # type: ignore[attr-defined]


async def test_a_mini_program_user_who_follows_later_merges_into_one(client, wechat):
    ids = await people()
    booth = await issue(client, kind="booth", channel="oa", campaign="2026 展会",
                        salesperson_id=ids["wang"])
    mini, openid = new_openid(), new_openid()
    first = await login(client, wechat, mini)
    await follow(client, wechat, booth, openid)  # a new prospect, then its UnionID: the same
    survivor = await the_one([("oa_openid", openid), ("mp_openid", mini), ("unionid", UNIONID)])
    assert survivor == first  # seen first
    assert await Prospect.filter(merged_into_id=None).count() == 1
    merge = await ProspectMerge.get()
    assert (merge.survivor_id, merge.reason) == (first, "same unionid")  # type: ignore[attr-defined]
    prospect = await Prospect.get(id=first)
    assert prospect.owner_id == ids["wang"] and prospect.first_code_id == booth["id"]  # type: ignore[attr-defined]

    async def all_theirs() -> bool:
        rows = await Interaction.filter(processed_at__isnull=False).values_list(
            "prospect_id", flat=True)
        return len(rows) == 2 and set(rows) == {first}

    assert await eventually(all_theirs)
    shown = await (await client.get(f"/admin/prospects/{merge.merged_id}",  # type: ignore[attr-defined]
                                    headers=AUTH)).json()
    assert shown["id"] == first  # a merged-away id answers with its survivor
    assert shown["merged_from"][0]["prospect_id"] == merge.merged_id  # type: ignore[attr-defined]
    assert shown["merged_from"][0]["reason"] == "same unionid"
    kinds = sorted(i["kind"] for i in shown["identities"])
    assert kinds == ["mp_openid", "oa_openid", "unionid"]


async def test_a_follow_whose_unionid_wechat_cannot_give_yet_is_retried(client, wechat):
    ids = await people()
    booth = await issue(client, kind="booth", channel="oa", campaign="2026 展会",
                        salesperson_id=ids["wang"])
    mini, openid = new_openid(), new_openid()
    await login(client, wechat, mini)
    wechat.fail("/cgi-bin/user/info", -1, times=1)  # WeChat busy
    await follow(client, wechat, booth, openid)

    async def followed() -> Interaction | None:
        return await Interaction.filter(kind="event.subscribe").first()

    row = await eventually(followed)
    await client.app[keys.DISPATCHER].drain(timeout=5)
    row = await Interaction.get(id=row.id)
    assert row.processed_at is None  # the welcome went out; the follow is not complete
    assert await Prospect.filter(merged_into_id=None).count() == 2
    await Interaction.filter(id=row.id).update(received_at=row.received_at.replace(year=2020))
    assert await client.app[keys.WORKER].recover() == 1
    assert await the_one([("oa_openid", openid), ("mp_openid", mini), ("unionid", UNIONID)])
    assert await Prospect.filter(merged_into_id=None).count() == 1


async def test_a_follower_without_a_unionid_stays_apart(client, wechat):
    ids = await people()
    booth = await issue(client, kind="booth", channel="oa", campaign="2026 展会",
                        salesperson_id=ids["wang"])
    openid = new_openid()
    await follow(client, wechat, booth, openid, unionid=None)
    await login(client, wechat, new_openid())
    await eventually(lambda: Interaction.filter(processed_at__isnull=False).count())
    await client.app[keys.DISPATCHER].drain(timeout=5)
    assert await Prospect.filter(merged_into_id=None).count() == 2
    assert await Identity.filter(kind=IdentityKind.UNIONID).count() == 1  # the mini-program's


async def test_a_follow_counts_at_once_while_its_unionid_waits(client, wechat):
    """WeChat busy for user/info: the welcome goes out and the follow is attributed and counted
    at once; only the UnionID waits for the worker's retry."""
    ids = await people()
    booth = await issue(client, kind="booth", channel="oa", campaign="2026 展会",
                        salesperson_id=ids["wang"])
    wechat.fail("/cgi-bin/user/info", -1, times=20)
    await follow(client, wechat, booth, new_openid())

    async def attributed() -> Interaction | None:
        await client.app[keys.DISPATCHER].drain(timeout=5)
        return await Interaction.filter(kind="event.subscribe", prospect_id__isnull=False,
                                        code_id=booth["id"]).first()

    row = await eventually(attributed)
    assert row.processed_at is None  # the UnionID is still owed
    stats = await (await client.get("/admin/stats?by=campaign", headers=AUTH)).json()
    assert stats[0]["follows"] == 1 and stats[0]["prospects"] == 1


async def test_an_account_without_user_info_still_completes_the_follow(client, wechat):
    ids = await people()
    booth = await issue(client, kind="booth", channel="oa", campaign="2026 展会",
                        salesperson_id=ids["wang"])
    wechat.fail("/cgi-bin/user/info", 48001, times=5)  # api unauthorized: for good
    await follow(client, wechat, booth, new_openid())

    async def done() -> bool:
        await client.app[keys.DISPATCHER].drain(timeout=5)
        return await Interaction.filter(kind="event.subscribe",
                                        processed_at__isnull=False).exists()

    assert await eventually(done)
    assert not await Identity.filter(kind=IdentityKind.UNIONID).exists()
    assert wechat.count("/cgi-bin/user/info") == 1


async def test_a_follower_from_before_who_scans_is_made_one_with_their_mini_program_self(
        client, wechat):
    """A follower who followed before the service knew them (no UnionID fetched) scans a booth
    code: the scan is a SCAN event, not a follow, and their UnionID is fetched after the reply
    all the same — once."""
    ids = await people()
    booth = await issue(client, kind="booth", channel="oa", campaign="2026 展会",
                        salesperson_id=ids["wang"])
    openid, mini = new_openid(), new_openid()
    first = await login(client, wechat, mini)
    wechat.add_follower(openid, UNIONID)  # following already
    await follow(client, wechat, booth, openid)  # a SCAN for a follower
    assert await Interaction.filter(kind="event.scan").count() == 1
    survivor = await the_one([("oa_openid", openid), ("mp_openid", mini), ("unionid", UNIONID)])
    assert survivor == first and await Prospect.filter(merged_into_id=None).count() == 1
    await eventually(lambda: Interaction.filter(processed_at__isnull=False).count())
    await client.app[keys.DISPATCHER].drain(timeout=5)
    calls = wechat.count("/cgi-bin/user/info")
    wechat.advance(2)  # a later scan (one in the same second would be WeChat's retry)
    await follow(client, wechat, booth, openid)  # again: the UnionID is known, not fetched

    async def both_processed() -> bool:
        return await Interaction.filter(kind="event.scan",
                                        processed_at__isnull=False).count() == 2

    await eventually(both_processed)
    await client.app[keys.DISPATCHER].drain(timeout=5)
    assert wechat.count("/cgi-bin/user/info") == calls == 1


async def test_without_an_oa_secret_a_follow_completes_without_a_unionid(
        aiohttp_client, app_settings, store, wechat):
    """No SCRM_OA_SECRET: no UnionIDs (serve says so at startup) — a follow is attributed and
    completes, rather than failing after the reply and being retried forever."""
    client = await service(aiohttp_client, app_settings, oa_secret=None)
    ids = await people()
    await Code.create(kind="booth", channel="oa", scene="BoothNoSecret", campaign="2026 展会",
                      salesperson_id=ids["wang"])  # issued before the secret went missing
    openid = new_openid()
    delivery = await wechat.push_oa(str(client.make_url("/wechat/oa")),
                                    events.subscribe(openid, scene="BoothNoSecret"))
    assert delivery.ok

    async def finished() -> bool:
        return await Interaction.filter(kind="event.subscribe",
                                        processed_at__isnull=False).exists()

    await eventually(finished)
    await client.app[keys.DISPATCHER].drain(timeout=5)
    prospect = await Prospect.get(identities__kind=IdentityKind.OA_OPENID,
                                  identities__value=openid)
    assert prospect.owner_id == ids["wang"]  # type: ignore[attr-defined]
    assert not await Identity.filter(kind=IdentityKind.UNIONID).exists()
    assert wechat.count("/cgi-bin/user/info") == 0
