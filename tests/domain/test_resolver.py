"""Batched identity resolution: one prospect per identity, however concurrent the requests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from domain.resolver import BARE, IdentityResolver, Seed
from models import Code, Identity, Prospect, Salesperson


@pytest.fixture
async def resolver(db: str) -> AsyncIterator[IdentityResolver]:
    batcher = IdentityResolver()
    yield batcher
    await batcher.stop()


async def test_concurrent_requests_share_batches(resolver: IdentityResolver,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    flushes = []
    original = resolver.flush

    async def counting(items):  # type: ignore[no-untyped-def]
        flushes.append(len(items))
        return await original(items)

    monkeypatch.setattr(resolver, "flush", counting)
    keys = [("oa_openid", f"openid-{i % 60}") for i in range(200)]
    results = await asyncio.gather(*(resolver.resolve(k) for k in keys))
    ids = [pid for pid, _ in results]
    assert len(flushes) < 20 and sum(flushes) == 200
    assert sum(created for _, created in results) == 60  # each person made once
    assert len(set(ids)) == 60
    assert all(ids[i] == ids[i % 60] for i in range(200))
    assert await Prospect.all().count() == 60 and await Identity.all().count() == 60


async def test_known_identity_keeps_its_prospect(resolver: IdentityResolver) -> None:
    first, created = await resolver.resolve(("external_userid", "wmAAAA"))
    again = await asyncio.gather(*(resolver.resolve(("external_userid", "wmAAAA"))
                                   for _ in range(5)))
    assert created and set(again) == {(first, False)} and await Prospect.all().count() == 1


async def test_a_race_lost_to_another_process_uses_the_winner(db: str) -> None:
    winner = await Prospect.create()
    await Identity.create(prospect=winner, kind="oa_openid", value="taken")
    # Simulate the other process claiming the identity between our SELECT and our INSERT.
    won, created = await IdentityResolver._create(
        [("oa_openid", "taken"), ("oa_openid", "new")],
        {("oa_openid", "taken"): (None, BARE), ("oa_openid", "new"): (None, BARE)})
    assert won[("oa_openid", "taken")] == winner.id
    assert created == {("oa_openid", "new")}
    assert await Prospect.all().count() == 2  # the winner and the new one; no orphan
    new = await Identity.get(value="new")
    assert won[("oa_openid", "new")] == new.prospect_id  # type: ignore[attr-defined]
    assert await Prospect.filter(id=won[("oa_openid", "new")]).exists()


async def test_a_failing_batch_fails_its_waiters(resolver: IdentityResolver,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(items):  # type: ignore[no-untyped-def]
        raise RuntimeError("database away")

    monkeypatch.setattr(resolver, "flush", broken)
    results = await asyncio.gather(*(resolver.resolve(("oa_openid", str(i))) for i in range(3)),
                                   return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)


async def test_a_new_prospect_starts_from_its_seed_a_known_one_does_not(
        resolver: IdentityResolver) -> None:
    wang = await Salesperson.create(name="王芳")
    code = await Code.create(kind="booth", channel="oa", scene="s1", campaign="c",
                             salesperson=wang)
    seed = Seed(("展会", "expo"), code.id, None, wang.id)
    (first, made), (again, twice) = await asyncio.gather(
        resolver.resolve(("oa_openid", "oNew"), None, seed),
        resolver.resolve(("oa_openid", "oNew"), None, Seed(("other",))))
    assert (made, twice, again) == (True, False, first)  # the first of a batch made it
    prospect = await Prospect.get(id=first)
    assert prospect.tags == ["展会", "expo"]
    assert (prospect.first_code_id, prospect.owner_id) == (code.id, wang.id)  # type: ignore[attr-defined]
    assert prospect.owner_assigned_at is not None and prospect.partner_id is None  # type: ignore[attr-defined]
    known, made = await resolver.resolve(("oa_openid", "oNew"), None, Seed(("other",)))
    assert (known, made) == (first, False)
    assert (await Prospect.get(id=first)).tags == ["展会", "expo"]  # a seed only starts one
