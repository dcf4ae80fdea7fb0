"""Finding the prospect behind an identity, creating them on first sight."""

from __future__ import annotations

from cachetools import LRUCache
from tortoise.exceptions import IntegrityError

from bot.privacy import Sealer, normalize_phone
from domain.resolver import IdentityResolver
from models import Identity, IdentityKind, Prospect


class Prospects:
    """Identity → prospect id, with a small in-process cache (an identity never changes owner
    except through a merge, which updates the cache of the process that merged and leaves a
    `merged_into` pointer for the others)."""

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

    async def find(self, kind: IdentityKind | str, value: str) -> int | None:
        key = (str(kind), self.lookup_value(kind, value))
        if (cached := self._cache.get(key)) is not None:
            return cached
        identity = await Identity.get_or_none(kind=key[0], value=key[1])
        if identity is None:
            return None
        prospect_id = await self._current(identity.prospect_id)  # type: ignore[attr-defined]
        self._cache[key] = prospect_id
        return prospect_id

    async def resolve(self, kind: IdentityKind | str, value: str) -> int:
        """The prospect with this identity, created when nobody has it yet. Concurrent calls
        share one batch (see domain.resolver)."""
        key = (str(kind), self.lookup_value(kind, value))
        if (cached := self._cache.get(key)) is not None:
            return cached
        prospect_id = await self.resolver.resolve(key, self._sealed(kind, value))
        self._cache[key] = prospect_id
        return prospect_id

    async def link(self, prospect_id: int, kind: IdentityKind | str, value: str) -> bool:
        """Gives the prospect this identity unless someone has it already; True when added.
        (An identity held by another prospect means two records are one person: merging them
        is the identity-binding issue's work.)"""
        key = (str(kind), self.lookup_value(kind, value))
        if await self.find(kind, value) is not None:
            return False
        try:
            await Identity.create(prospect_id=prospect_id, kind=key[0], value=key[1],
                                  sealed=self._sealed(kind, value))
        except IntegrityError:
            return False
        self._cache[key] = prospect_id
        return True

    async def _current(self, prospect_id: int) -> int:
        """Follows merges to the prospect that absorbed this one."""
        seen = set()
        while prospect_id not in seen:
            seen.add(prospect_id)
            merged_into = await Prospect.filter(id=prospect_id).values_list(
                "merged_into_id", flat=True)
            if not merged_into or merged_into[0] is None:
                return prospect_id
            prospect_id = merged_into[0]
        return prospect_id

