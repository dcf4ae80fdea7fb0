"""Finding the prospect behind an identity, creating them on first sight, and binding a new
identity to a prospect — which, when someone else holds it, makes the two one person."""

from __future__ import annotations

from cachetools import LRUCache
from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q

from bot.privacy import Sealer, normalize_phone
from domain.merging import current, family, merge
from domain.resolver import BARE, IdentityResolver, Seed
from models import Identity, IdentityKind


class Prospects:
    """Identity → prospect id, with a small in-process cache. An identity changes prospect only
    through a merge: the process that merged forgets the merged-away prospect; another process
    may still hand out its id for a while, which is why writes go through `merging.current`
    and reads through `merging.family`."""

    def __init__(self, sealer: Sealer, cache_size: int = 50_000) -> None:
        self.sealer = sealer
        self.resolver = IdentityResolver()
        self._cache: LRUCache[tuple[str, str], int] = LRUCache(maxsize=cache_size)

    def lookup_value(self, kind: IdentityKind | str, value: str) -> str:
        """The stored value of an identity: phones are kept as a keyed digest only."""
        if kind == IdentityKind.PHONE:
            return self.sealer.digest(normalize_phone(value))
        return value

    def _sealed(self, kind: IdentityKind | str, value: str) -> str | None:
        return self.sealer.seal(normalize_phone(value)) if kind == IdentityKind.PHONE else None

    async def find(self, kind: IdentityKind | str, value: str, *,
                   cached: bool = True) -> int | None:
        """The prospect holding an identity. A phone is always looked up afresh (a person may
        withdraw consent and have it erased, in any process); `cached=False` for the rest."""
        key = (str(kind), self.lookup_value(kind, value))
        if cached and key[0] != IdentityKind.PHONE and (hit := self._cache.get(key)) is not None:
            return hit
        identity = await Identity.get_or_none(kind=key[0], value=key[1])
        if identity is None:
            return None
        prospect_id = await current(identity.prospect_id)  # type: ignore[attr-defined]
        self._cache[key] = prospect_id
        return prospect_id

    async def resolve(self, kind: IdentityKind | str, value: str) -> int:
        """The prospect with this identity, created when nobody has it yet. Concurrent calls
        share one batch (see domain.resolver)."""
        return (await self.claim(kind, value))[0]

    async def claim(self, kind: IdentityKind | str, value: str,
                    seed: Seed = BARE) -> tuple[int, bool]:
        """As `resolve`; a prospect created now starts from `seed`. (The prospect, whether it
        was created now.)"""
        key = (str(kind), self.lookup_value(kind, value))
        if (cached := self._cache.get(key)) is not None:
            return cached, False
        prospect_id, created = await self.resolver.resolve(key, self._sealed(kind, value), seed)
        self._cache[key] = prospect_id
        return prospect_id, created

    async def link(self, prospect_id: int, kind: IdentityKind | str, value: str) -> int:
        """Gives the prospect this identity; returns the prospect the person is now. When
        another prospect holds the identity already, the two are one person: they merge."""
        key = (str(kind), self.lookup_value(kind, value))
        prospect_id = await current(prospect_id)
        holder = await self.find(kind, value, cached=False)  # a merge must be sure
        if holder is None:
            try:
                await Identity.create(prospect_id=prospect_id, kind=key[0], value=key[1],
                                      sealed=self._sealed(kind, value))
            except IntegrityError:  # someone claimed it meanwhile
                holder = await self.find(kind, value, cached=False)
            else:
                self._cache[key] = prospect_id
                return prospect_id
        if holder is None or holder == prospect_id:
            return prospect_id
        survivor = await merge(prospect_id, holder, f"same {IdentityKind(kind).value}")
        self.forget(holder if survivor == prospect_id else prospect_id, survivor)
        return survivor

    async def has(self, prospect_id: int, kind: IdentityKind | str) -> bool:
        """Whether the person (any of their merged records) has an identity of `kind`: one
        query, the prospect's own rows and those of records merged into it. (For an id merged
        away meanwhile it may say no: what binds an identity goes to the survivor anyway.)"""
        return await Identity.filter(kind=str(kind)).filter(
            Q(prospect_id=prospect_id) | Q(prospect__merged_into_id=prospect_id)).exists()

    async def phones(self, prospect_id: int) -> list[str | None]:
        """The person's phone numbers (any of their merged records), newest first, unsealed —
        to mask before they leave the server; None for one this key cannot open."""
        sealed = await (Identity.filter(prospect_id__in=await family(prospect_id),
                                        kind=IdentityKind.PHONE)
                        .order_by("-id").values_list("sealed", flat=True))
        return [self.sealer.unseal(str(value or "")) for value in sealed]

    def erased(self, kind: IdentityKind | str, stored_values: list[str]) -> None:
        """Identities deleted (a phone erased with the consent): this process forgets them."""
        for value in stored_values:
            self._cache.pop((str(kind), value), None)

    def forget(self, merged: int, survivor: int) -> None:
        """After a merge in this process: identities cached for the merged-away prospect now
        lead to the survivor."""
        for key in [k for k, v in self._cache.items() if v == merged]:
            self._cache[key] = survivor
