"""domain.identity: identity → prospect, created on first sight, once."""

from __future__ import annotations

import asyncio

import pytest

from bot.privacy import Sealer
from domain.identity import Prospects
from models import Identity, IdentityKind, Prospect

PHONE = "13800138000"


@pytest.fixture
def sealer() -> Sealer:
    return Sealer("test-secret-key-0123456789abcdef")


@pytest.fixture
def prospects(sealer: Sealer) -> Prospects:
    return Prospects(sealer)


async def test_resolve_creates_once_and_find_finds(db, prospects, sealer):
    assert await prospects.find(IdentityKind.OA_OPENID, "o1") is None
    created = await prospects.resolve(IdentityKind.OA_OPENID, "o1")
    assert await prospects.resolve(IdentityKind.OA_OPENID, "o1") == created
    assert await Prospects(sealer).find(IdentityKind.OA_OPENID, "o1") == created  # from the DB
    assert await Prospect.all().count() == 1
    identity = await Identity.get(prospect_id=created)
    assert (identity.kind, identity.value, identity.sealed) == (IdentityKind.OA_OPENID, "o1", None)
    assert await prospects.resolve(IdentityKind.MP_OPENID, "o1") != created  # another kind


async def test_concurrent_first_sights_make_one_prospect(db, sealer):
    ids = await asyncio.gather(*(Prospects(sealer).resolve(IdentityKind.EXTERNAL_USERID, "wm1")
                                 for _ in range(8)))
    assert len(set(ids)) == 1
    assert await Prospect.all().count() == 1 and await Identity.all().count() == 1


async def test_phones_are_a_keyed_digest_and_sealed(db, prospects, sealer):
    created = await prospects.resolve(IdentityKind.PHONE, PHONE)
    identity = await Identity.get(kind=IdentityKind.PHONE)
    assert PHONE not in identity.value and PHONE not in (identity.sealed or "")
    assert identity.value == sealer.digest(PHONE)
    assert sealer.unseal(identity.sealed or "") == PHONE
    for spelling in ("+86 138 0013 8000", "8613800138000", "138-0013-8000"):
        assert await Prospects(sealer).find(IdentityKind.PHONE, spelling) == created
    other_key = Prospects(Sealer("another-key"))
    assert await other_key.find(IdentityKind.PHONE, PHONE) is None  # the digest is keyed


async def test_link_adds_an_identity_and_merges_whoever_holds_it(db, prospects):
    first = await prospects.resolve(IdentityKind.OA_OPENID, "o1")
    second = await prospects.resolve(IdentityKind.OA_OPENID, "o2")
    assert await prospects.link(first, IdentityKind.UNIONID, "u1") == first
    assert await prospects.link(first, IdentityKind.UNIONID, "u1") == first  # again: nothing
    # the second record turns out to be the same person: one prospect, the first seen
    assert await prospects.link(second, IdentityKind.UNIONID, "u1") == first
    assert await prospects.find(IdentityKind.OA_OPENID, "o2") == first
    assert await prospects.find(IdentityKind.UNIONID, "u1") == first
    assert await prospects.link(second, IdentityKind.PHONE, PHONE) == first  # via the tombstone
    assert (await Identity.get(kind=IdentityKind.PHONE)).prospect_id == first  # type: ignore[attr-defined]


async def test_find_follows_merges(db, sealer):
    prospects = Prospects(sealer)
    absorbed = await prospects.resolve(IdentityKind.OA_OPENID, "o1")
    kept = await prospects.resolve(IdentityKind.MP_OPENID, "m1")
    await Prospect.filter(id=absorbed).update(merged_into_id=kept)
    assert await Prospects(sealer).find(IdentityKind.OA_OPENID, "o1") == kept
    assert await Prospects(sealer).resolve(IdentityKind.OA_OPENID, "o1") == kept


async def test_the_cache_is_bounded(db, sealer):
    prospects = Prospects(sealer, cache_size=3)
    for i in range(6):
        await prospects.resolve(IdentityKind.OA_OPENID, f"o{i}")
    assert len(prospects._cache) == 3
    assert await prospects.find(IdentityKind.OA_OPENID, "o0") is not None  # still found


async def test_has_an_identity_counts_the_records_merged_in(db, prospects):
    first = await prospects.resolve(IdentityKind.OA_OPENID, "oA")
    second = await prospects.resolve(IdentityKind.MP_OPENID, "mB")
    other = await prospects.resolve(IdentityKind.OA_OPENID, "oC")
    assert not await prospects.has(first, IdentityKind.UNIONID)
    assert await prospects.link(first, IdentityKind.MP_OPENID, "mB") == first  # one person
    # a UnionID written for the merged-away record after the merge (a late write) counts
    await Identity.create(prospect_id=second, kind=IdentityKind.UNIONID, value="u1")
    assert await prospects.has(first, IdentityKind.UNIONID)
    assert not await prospects.has(other, IdentityKind.UNIONID)
    assert await prospects.has(other, IdentityKind.OA_OPENID)
