"""Content in the mini-program: a salesperson's shares (/admin/shares), a material as a reader
sees it (whose card, who shared it, a share of one's own), the chain of readers passing it on,
and reads timed by the server from the heartbeats it sees."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot import keys
from models import Interaction, Prospect, Read, Share
from tests.bot.kit import eventually
from tests.bot.test_admin_codes import AUTH, error, people
from tests.miniprogram_api.test_person import Person, log_in

TAGS = ["白皮书:制造", "智能工厂"]


async def material(client: Any, title: str = "2026 制造业白皮书",
                   tags: list[str] | None = None) -> dict[str, Any]:
    response = await client.post("/admin/materials", headers=AUTH, json={
        "title": title, "kind": "whitepaper", "url": "https://example.com/wp.pdf",
        "tags": TAGS if tags is None else tags})
    assert response.status == 201
    return dict(await response.json())


async def share_of(client: Any, material_id: int, salesperson_id: int) -> str:
    response = await client.post("/admin/shares", headers=AUTH, json={
        "material_id": material_id, "salesperson_id": salesperson_id})
    body = await response.json()
    assert response.status == 201, body
    return str(body["share"])


async def view(client: Any, person: Person, material_id: int,
               share: str | None = None) -> dict[str, Any]:
    params = {"share": share} if share is not None else {}
    response = await client.get(f"/mp/materials/{material_id}", params=params,
                                headers=person.headers)
    body = await response.json()
    assert response.status == 200, body
    return dict(body)


async def reads(client: Any, person: Person, **body: Any) -> Any:
    return await client.post("/mp/reads", headers=person.headers, json=body)


async def open_read(client: Any, person: Person, material_id: int, **extra: Any) -> int:
    response = await reads(client, person, material_id=material_id, action="open", **extra)
    body = await response.json()
    assert response.status == 200, body
    return int(body["read_id"])


async def step(client: Any, person: Person, read_id: int, action: str = "heartbeat",
               **extra: Any) -> None:
    response = await reads(client, person, action=action, read_id=read_id, **extra)
    assert response.status == 200, await response.text()
    assert await response.json() == {"read_id": read_id}


async def earlier(read_id: int, **delta: float) -> None:
    """Time passing for a read: its last heartbeat heard `delta` ago."""
    await Read.filter(id=read_id).update(seen_at=datetime.now(UTC) - timedelta(**delta))


async def settled(client: Any) -> None:
    """Background processing done and every processed mark written."""
    await client.app[keys.DISPATCHER].drain(timeout=5)

    async def marked() -> bool:
        return not await Interaction.filter(processed_at=None).exists()

    await eventually(marked)


def share_id(client: Any, token: str) -> int | None:
    return client.app[keys.SHARES].read(token)


# --- POST /admin/shares -------------------------------------------------------------------------

async def test_a_salespersons_share(client, wechat):
    ids = await people()
    doc = await material(client)
    response = await client.post("/admin/shares", headers=AUTH, json={
        "material_id": doc["id"], "salesperson_id": ids["wang"]})
    assert response.status == 201
    body = await response.json()
    token = body["share"]
    assert body["page"] == f"pages/material/index?id={doc['id']}&share={token}"
    assert body["material"]["id"] == doc["id"] and body["salesperson"]["id"] == ids["wang"]
    [share] = await Share.all()
    assert share_id(client, token) == share.id
    assert (share.material_id, share.salesperson_id, share.prospect_id) == (  # type: ignore[attr-defined]
        doc["id"], ids["wang"], None)
    again = await client.post("/admin/shares", headers=AUTH, json={
        "material_id": doc["id"], "salesperson_id": ids["wang"]})
    assert again.status == 201
    assert (await again.json())["share"] == token  # the same share each time
    assert await Share.all().count() == 1
    other = await share_of(client, doc["id"], ids["li"])
    assert other != token and await Share.all().count() == 2


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"material_id": 999999, "salesperson_id": "wang"}, 404, "unknown_material"),
    ({"material_id": "doc", "salesperson_id": 999999}, 404, "unknown_salesperson"),
    ({"salesperson_id": "wang"}, 400, "missing_field"),
    ({"material_id": "doc"}, 400, "missing_field"),
    ({}, 400, "missing_field"),
    ({"material_id": None, "salesperson_id": "wang"}, 400, "missing_field"),
    ({"material_id": "1", "salesperson_id": "wang"}, 400, "invalid_field"),
    ({"material_id": "doc", "salesperson_id": 1.5}, 400, "invalid_field"),
    ({"material_id": True, "salesperson_id": "wang"}, 400, "invalid_field"),
    ({"material_id": "doc", "salesperson_id": [1]}, 400, "invalid_field"),
    ({"material_id": 0, "salesperson_id": "wang"}, 400, "invalid_field"),
    ({"material_id": -1, "salesperson_id": "wang"}, 400, "invalid_field"),
    ({"material_id": "doc", "salesperson_id": "wang", "prospect_id": 1}, 400, "unknown_field"),
])
async def test_bad_shares_are_refused(client, wechat, body, status, code):
    ids = await people()
    doc = await material(client)
    named = {"doc": doc["id"], "wang": ids["wang"]}
    sent = {k: named.get(v, v) if isinstance(v, str) else v for k, v in body.items()}
    response = await client.post("/admin/shares", headers=AUTH, json=sent)
    assert response.status == status
    assert error(await response.json())[0] == code
    assert await Share.all().count() == 0


async def test_shares_need_the_admin_token_and_json(client, wechat):
    ids = await people()
    doc = await material(client)
    body = {"material_id": doc["id"], "salesperson_id": ids["wang"]}
    assert (await client.post("/admin/shares", json=body)).status == 401
    assert (await client.post("/admin/shares", json=body,
                              headers={"Authorization": "Bearer nope"})).status == 401
    response = await client.post("/admin/shares", headers=AUTH, data=b"{material_id")
    assert response.status == 400
    assert error(await response.json())[0] == "malformed_json"
    assert await Share.all().count() == 0


# --- GET /mp/materials/{id} ---------------------------------------------------------------------

async def test_a_material_through_a_salespersons_share(client, wechat):
    ids = await people()
    doc = await material(client)
    token = await share_of(client, doc["id"], ids["wang"])
    reader = await log_in(client, wechat)
    shown = await view(client, reader, doc["id"], token)
    assert set(shown) == {"id", "title", "kind", "url", "tags", "shared_by", "card", "share"}
    assert (shown["id"], shown["title"], shown["kind"], shown["url"], shown["tags"]) == (
        doc["id"], "2026 制造业白皮书", "whitepaper", "https://example.com/wp.pdf", TAGS)
    assert shown["shared_by"]["kind"] == "salesperson"
    assert shown["shared_by"]["name"] == "王芳"
    assert shown["shared_by"]["salesperson_id"] == ids["wang"]
    assert shown["card"]["name"] == "王芳" and shown["card"]["salesperson_id"] == ids["wang"]
    assert shown["card"]["wecom_userid"] == "wangfang" and shown["card"]["team"] == "华东"
    own = shown["share"]
    assert own != token
    mine = await Share.get(id=share_id(client, own))
    assert mine.prospect_id == reader.prospect_id  # type: ignore[attr-defined]
    assert mine.parent_id == share_id(client, token)
    assert mine.salesperson_id is None  # type: ignore[attr-defined]
    assert (await view(client, reader, doc["id"], token))["share"] == own  # one share each


async def test_a_material_without_a_share(client, wechat):
    doc = await material(client)
    reader = await log_in(client, wechat)
    shown = await view(client, reader, doc["id"])
    assert shown["shared_by"] is None and shown["card"] is None
    assert shown["title"] == "2026 制造业白皮书" and shown["tags"] == TAGS
    mine = await Share.get(id=share_id(client, shown["share"]))
    assert mine.parent_id is None
    assert mine.prospect_id == reader.prospect_id  # type: ignore[attr-defined]


def _tampered(token: str) -> list[str]:
    swapped = ("B" if token[-1] != "B" else "C")
    return [token[:-1] + swapped, token[1:], token + "A", token.upper(), "A" * 20, "x",
            "not a token!", "é" * 10, "A" * 65]


async def test_a_forged_or_tampered_share_is_ignored(client, wechat):
    ids = await people()
    doc = await material(client)
    token = await share_of(client, doc["id"], ids["wang"])
    reader = await log_in(client, wechat)
    for forged in _tampered(token):
        if forged == token:
            continue
        shown = await view(client, reader, doc["id"], forged)
        assert shown["shared_by"] is None and shown["card"] is None, forged
        assert shown["title"] == "2026 制造业白皮书"
    mine = await Share.get(id=share_id(client, shown["share"]))
    assert mine.parent_id is None  # nothing was taken from a forged token
    assert await Share.all().count() == 2


async def test_another_materials_share_is_ignored(client, wechat):
    ids = await people()
    doc, other = await material(client), await material(client, "案例集", ["案例"])
    foreign = await share_of(client, other["id"], ids["wang"])
    reader = await log_in(client, wechat)
    shown = await view(client, reader, doc["id"], foreign)
    assert shown["shared_by"] is None and shown["card"] is None
    assert (await Share.get(id=share_id(client, shown["share"]))).parent_id is None
    read_id = await open_read(client, reader, doc["id"], share=foreign)
    assert (await Read.get(id=read_id)).share_id is None  # type: ignore[attr-defined]


async def test_an_unknown_material_is_404(client, wechat):
    reader = await log_in(client, wechat)
    for path, status, code in (("/mp/materials/999999", 404, "unknown_material"),
                               ("/mp/materials/99999999999999", 404, None),
                               ("/mp/materials/abc", 400, None),
                               ("/mp/materials/0", 400, None)):
        response = await client.get(path, headers=reader.headers)
        assert response.status == status, path
        name, _ = error(await response.json())
        assert code is None or name == code
    doc = await material(client)
    response = await client.get(f"/mp/materials/{doc['id']}", params={"sharing": "x"},
                                headers=reader.headers)
    assert response.status == 400
    assert error(await response.json())[0] == "unknown_field"
    assert await Share.all().count() == 0


async def test_a_readers_share_passes_it_on_under_the_salespersons_card(client, wechat):
    ids = await people()
    doc = await material(client)
    token = await share_of(client, doc["id"], ids["wang"])
    a = await log_in(client, wechat)
    b = await log_in(client, wechat)
    c = await log_in(client, wechat)
    from_a = (await view(client, a, doc["id"], token))["share"]
    seen_by_b = await view(client, b, doc["id"], from_a)
    assert seen_by_b["shared_by"] == {"kind": "prospect", "name": None, "hops": 1}
    assert seen_by_b["card"]["name"] == "王芳"  # the root salesperson's card
    assert seen_by_b["card"]["salesperson_id"] == ids["wang"]
    from_b = seen_by_b["share"]
    assert from_b not in (token, from_a)
    seen_by_c = await view(client, c, doc["id"], from_b)
    assert seen_by_c["shared_by"]["kind"] == "prospect" and seen_by_c["shared_by"]["name"] is None
    assert seen_by_c["card"]["name"] == "王芳"
    # the chain is recorded: 王芳 → A → B → C
    root, sa, sb, sc = [await Share.get(id=share_id(client, t))
                        for t in (token, from_a, from_b, seen_by_c["share"])]
    assert (sa.parent_id, sb.parent_id, sc.parent_id) == (root.id, sa.id, sb.id)
    assert (sa.prospect_id, sb.prospect_id, sc.prospect_id) == (  # type: ignore[attr-defined]
        a.prospect_id, b.prospect_id, c.prospect_id)


async def test_the_chain_reaches_the_read_and_the_forward(client, wechat):
    ids = await people()
    doc = await material(client)
    token = await share_of(client, doc["id"], ids["wang"])
    a = await log_in(client, wechat)
    b = await log_in(client, wechat)
    from_a = (await view(client, a, doc["id"], token))["share"]
    await view(client, b, doc["id"], from_a)
    read_id = await open_read(client, b, doc["id"], share=from_a)
    await step(client, b, read_id, "close", progress=0.5)
    await settled(client)

    root_id, a_share = share_id(client, token), share_id(client, from_a)
    [row] = await Interaction.filter(kind="mp.read")
    assert row.prospect_id == b.prospect_id  # type: ignore[attr-defined]
    assert row.payload["chain"] == [a_share, root_id]
    assert row.payload["share_id"] == a_share
    assert row.payload["salesperson_id"] == ids["wang"]
    assert row.payload["shared_by_prospect_id"] == a.prospect_id
    assert row.payload["material_id"] == doc["id"] and row.payload["read_id"] == read_id
    assert row.payload["progress"] == 0.5
    [forward] = await Interaction.filter(kind="mp.forward")
    assert forward.prospect_id == a.prospect_id  # type: ignore[attr-defined]
    assert forward.payload["to_prospect_id"] == b.prospect_id
    assert forward.payload["share_id"] == a_share
    assert forward.payload["material_id"] == doc["id"]
    # B opening A's share again is no second forward; A opening their own share is none
    await open_read(client, b, doc["id"], share=from_a)
    await open_read(client, a, doc["id"], share=from_a)
    await open_read(client, a, doc["id"], share=token)
    await settled(client)
    assert await Interaction.filter(kind="mp.forward").count() == 1


async def test_a_salespersons_share_read_names_no_forward(client, wechat):
    ids = await people()
    doc = await material(client)
    token = await share_of(client, doc["id"], ids["wang"])
    reader = await log_in(client, wechat)
    read_id = await open_read(client, reader, doc["id"], share=token)
    await step(client, reader, read_id, "close", progress=1.0)
    await settled(client)
    [row] = await Interaction.filter(kind="mp.read")
    assert row.payload["chain"] == [share_id(client, token)]
    assert row.payload["salesperson_id"] == ids["wang"]
    assert row.payload["shared_by_prospect_id"] is None
    assert not await Interaction.filter(kind="mp.forward").exists()


# --- POST /mp/reads -----------------------------------------------------------------------------

async def test_a_read_opened_beaten_and_closed(client, wechat):
    doc = await material(client)
    reader = await log_in(client, wechat)
    read_id = await open_read(client, reader, doc["id"], progress=0.1)
    row = await Read.get(id=read_id)
    assert row.prospect_id == reader.prospect_id  # type: ignore[attr-defined]
    assert (row.seconds, row.progress, row.closed_at) == (0.0, 0.1, None)

    await earlier(read_id, seconds=10)
    await step(client, reader, read_id, progress=0.4)
    row = await Read.get(id=read_id)
    assert 10.0 <= row.seconds < 11.0 and row.progress == 0.4
    await earlier(read_id, seconds=20)
    await step(client, reader, read_id, "close", progress=0.9)
    row = await Read.get(id=read_id)
    assert 30.0 <= row.seconds < 32.0 and row.progress == 0.9 and row.closed_at is not None
    await settled(client)
    [finished] = await Interaction.filter(kind="mp.read")
    assert finished.prospect_id == reader.prospect_id  # type: ignore[attr-defined]
    assert finished.payload["seconds"] == round(row.seconds, 1)
    assert finished.payload["progress"] == 0.9
    assert finished.payload["material_id"] == doc["id"]
    assert finished.payload["share_id"] is None and finished.payload["chain"] == []


async def test_no_call_counts_more_than_30_seconds(client, wechat):
    doc = await material(client)
    reader = await log_in(client, wechat)
    read_id = await open_read(client, reader, doc["id"])
    total = 0.0
    for gap in ({"hours": 1}, {"seconds": 31}, {"days": 3}, {"minutes": 4}):
        await earlier(read_id, **gap)
        await step(client, reader, read_id)
        seconds = (await Read.get(id=read_id)).seconds
        assert seconds - total == pytest.approx(30.0), gap
        total = seconds
    await earlier(read_id, hours=2)
    await step(client, reader, read_id, "close")
    assert (await Read.get(id=read_id)).seconds == pytest.approx(150.0)


async def test_a_replayed_heartbeat_counts_once(client, wechat):
    doc = await material(client)
    reader = await log_in(client, wechat)
    read_id = await open_read(client, reader, doc["id"])
    await earlier(read_id, seconds=25)
    await step(client, reader, read_id, progress=0.3)
    once = (await Read.get(id=read_id)).seconds
    assert 25.0 <= once <= 30.0
    for _ in range(3):  # the same call, replayed at once
        await step(client, reader, read_id, progress=0.3)
    again = await Read.get(id=read_id)
    assert again.seconds - once < 1.0  # the moments between the replays, no more
    assert again.progress == 0.3


async def test_replays_arriving_together_count_once(client, wechat):
    doc = await material(client)
    reader = await log_in(client, wechat)
    read_id = await open_read(client, reader, doc["id"])
    await earlier(read_id, hours=1)
    answers = await asyncio.gather(*(reads(client, reader, action="heartbeat", read_id=read_id,
                                           progress=0.4) for _ in range(5)))
    assert [answer.status for answer in answers] == [200] * 5
    row = await Read.get(id=read_id)
    assert 30.0 <= row.seconds < 31.0 and row.progress == 0.4
    closes = await asyncio.gather(*(reads(client, reader, action="close", read_id=read_id)
                                    for _ in range(4)))
    assert [answer.status for answer in closes] == [200] * 4
    await settled(client)
    assert await Interaction.filter(kind="mp.read").count() == 1


async def test_progress_only_rises(client, wechat):
    doc = await material(client)
    reader = await log_in(client, wechat)
    read_id = await open_read(client, reader, doc["id"], progress=0.2)
    for sent, kept in ((0.6, 0.6), (0.3, 0.6), (None, 0.6), (0, 0.6), (1, 1.0), (0.5, 1.0)):
        extra = {} if sent is None else {"progress": sent}
        await step(client, reader, read_id, **extra)
        assert (await Read.get(id=read_id)).progress == kept, sent
    await step(client, reader, read_id, "close", progress=0.1)
    assert (await Read.get(id=read_id)).progress == 1.0
    await settled(client)
    assert (await Interaction.get(kind="mp.read")).payload["progress"] == 1.0


@pytest.mark.parametrize("progress", [-0.1, 1.01, 2, -1, "0.5", "half", True, False, [0.5],
                                      {"v": 0.5}])
async def test_progress_out_of_range_or_not_a_number_is_400(client, wechat, progress):
    doc = await material(client)
    reader = await log_in(client, wechat)
    read_id = await open_read(client, reader, doc["id"], progress=0.2)
    for body in ({"action": "heartbeat", "read_id": read_id, "progress": progress},
                 {"action": "close", "read_id": read_id, "progress": progress},
                 {"action": "open", "material_id": doc["id"], "progress": progress}):
        response = await reads(client, reader, **body)
        assert response.status == 400, body
        name, message = error(await response.json())
        assert name == "invalid_field" and "progress" in message
    row = await Read.get(id=read_id)
    assert row.progress == 0.2 and row.closed_at is None
    assert await Read.all().count() == 1


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e999"])
async def test_progress_that_is_not_a_finite_number_is_400(client, wechat, literal):
    doc = await material(client)
    reader = await log_in(client, wechat)
    read_id = await open_read(client, reader, doc["id"])
    raw = b'{"action": "heartbeat", "read_id": %d, "progress": %s}' % (read_id, literal)
    response = await client.post("/mp/reads", headers=reader.headers, data=raw)
    assert response.status == 400
    assert error(await response.json())[0] == "invalid_field"
    assert (await Read.get(id=read_id)).progress == 0.0


async def test_bad_read_bodies_are_400(client, wechat):
    doc = await material(client)
    reader = await log_in(client, wechat)
    read_id = await open_read(client, reader, doc["id"])
    for body, code in (
            ({}, "invalid_field"),
            ({"action": "pause", "read_id": read_id}, "invalid_field"),
            ({"action": 1, "read_id": read_id}, "invalid_field"),
            ({"action": "open"}, "missing_field"),
            ({"action": "open", "material_id": "1"}, "invalid_field"),
            ({"action": "open", "material_id": 0}, "invalid_field"),
            ({"action": "open", "material_id": doc["id"], "share": 5}, "invalid_field"),
            ({"action": "heartbeat"}, "missing_field"),
            ({"action": "close"}, "missing_field"),
            ({"action": "heartbeat", "read_id": str(read_id)}, "invalid_field"),
            ({"action": "heartbeat", "read_id": 1.5}, "invalid_field"),
            ({"action": "heartbeat", "read_id": -1}, "invalid_field"),
            ({"action": "heartbeat", "read_id": read_id, "seconds": 600}, "unknown_field"),
            ({"action": "open", "material_id": doc["id"], "prospect_id": 1}, "unknown_field")):
        response = await reads(client, reader, **body)
        assert response.status == 400, body
        assert error(await response.json())[0] == code, body
    for raw in (b"{", b"[]", b'"open"', b""):
        response = await client.post("/mp/reads", headers=reader.headers, data=raw)
        assert response.status == 400
        assert error(await response.json())[0] == "malformed_json"
    assert await Read.all().count() == 1
    row = await Read.get(id=read_id)
    assert row.seconds == 0.0 and row.closed_at is None


async def test_an_unknown_material_or_read_is_404(client, wechat):
    doc = await material(client)
    reader = await log_in(client, wechat)
    response = await reads(client, reader, action="open", material_id=999999)
    assert response.status == 404
    assert error(await response.json())[0] == "unknown_material"
    for action in ("heartbeat", "close"):
        response = await reads(client, reader, action=action, read_id=999999)
        assert response.status == 404
        assert error(await response.json())[0] == "unknown_read"
    assert await Read.all().count() == 0
    assert await open_read(client, reader, doc["id"])


async def test_another_persons_read_is_404_and_untouched(client, wechat):
    doc = await material(client)
    owner, other = await log_in(client, wechat), await log_in(client, wechat)
    read_id = await open_read(client, owner, doc["id"], progress=0.2)
    await earlier(read_id, seconds=20)
    before = await Read.get(id=read_id)
    for action in ("heartbeat", "close"):
        response = await reads(client, other, action=action, read_id=read_id, progress=0.9)
        assert response.status == 404
        assert error(await response.json())[0] == "unknown_read"
    after = await Read.get(id=read_id)
    assert (after.seconds, after.progress, after.seen_at, after.closed_at) == (
        before.seconds, before.progress, before.seen_at, None)
    await settled(client)
    assert not await Interaction.filter(kind="mp.read").exists()


async def test_a_read_closed_twice_is_one_interaction_and_then_frozen(client, wechat):
    doc = await material(client)
    reader = await log_in(client, wechat)
    read_id = await open_read(client, reader, doc["id"])
    await earlier(read_id, seconds=15)
    await step(client, reader, read_id, "close", progress=0.5)
    closed = await Read.get(id=read_id)
    await earlier(read_id, minutes=10)  # nothing may count after the close
    moved = await Read.get(id=read_id)
    await step(client, reader, read_id, "close", progress=0.8)
    await step(client, reader, read_id, "heartbeat", progress=0.9)
    after = await Read.get(id=read_id)
    assert (after.seconds, after.progress, after.seen_at, after.closed_at) == (
        closed.seconds, 0.5, moved.seen_at, closed.closed_at)
    assert await client.app[keys.WORKER].close_reads() == 0
    await settled(client)
    assert await Interaction.filter(kind="mp.read").count() == 1


async def test_a_finished_read_gives_the_materials_tags(client, wechat):
    doc = await material(client)
    reader = await log_in(client, wechat)
    read_id = await open_read(client, reader, doc["id"])
    assert (await Prospect.get(id=reader.prospect_id)).tags == []  # not for opening it
    await step(client, reader, read_id, "close", progress=1.0)

    async def tagged() -> bool:
        await client.app[keys.DISPATCHER].drain(timeout=5)
        return set(TAGS) <= set((await Prospect.get(id=reader.prospect_id)).tags)

    assert await eventually(tagged)
    shown = await (await client.get(f"/admin/prospects/{reader.prospect_id}",
                                    headers=AUTH)).json()
    assert set(TAGS) <= set(shown["tags"])


async def test_a_read_nobody_closes_is_closed_by_the_worker(client, wechat):
    doc = await material(client)
    reader = await log_in(client, wechat)
    read_id = await open_read(client, reader, doc["id"])
    await earlier(read_id, seconds=20)
    await step(client, reader, read_id, progress=0.7)
    fresh = await open_read(client, reader, doc["id"])  # still being read: stays open
    worker = client.app[keys.WORKER]
    assert await worker.close_reads() == 0  # quiet for less than 5 minutes
    heard = await Read.get(id=read_id)
    last = heard.seen_at - timedelta(minutes=6)
    await Read.filter(id=read_id).update(seen_at=last)

    assert await worker.close_reads() == 1
    row = await Read.get(id=read_id)
    assert row.closed_at == last  # closed at its last heartbeat
    assert row.seconds == heard.seconds and row.progress == 0.7  # the silence does not count
    assert (await Read.get(id=fresh)).closed_at is None
    await settled(client)
    [finished] = await Interaction.filter(kind="mp.read")
    assert finished.payload["read_id"] == read_id
    assert finished.payload["seconds"] == round(heard.seconds, 1)
    assert finished.payload["progress"] == 0.7
    assert finished.prospect_id == reader.prospect_id  # type: ignore[attr-defined]
    assert set(TAGS) <= set((await Prospect.get(id=reader.prospect_id)).tags)
    assert await worker.close_reads() == 0  # once
    # the reader's late close changes nothing and is no second interaction
    await step(client, reader, read_id, "close", progress=1.0)
    await settled(client)
    assert await Interaction.filter(kind="mp.read").count() == 1
    assert (await Read.get(id=read_id)).progress == 0.7
