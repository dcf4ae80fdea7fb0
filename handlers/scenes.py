"""Scenes are short opaque tokens; the code behind one decides which handlers a scan reaches."""

from __future__ import annotations

import time

from bot.pushes import Push
from models import Code


class Scenes:
    """scene → (code id, code kind), cached briefly: codes are created, rarely changed."""

    def __init__(self, ttl: float = 60.0) -> None:
        self.ttl = ttl
        self._cache: dict[str, tuple[float, int | None, str | None]] = {}

    async def lookup(self, scene: str) -> tuple[int | None, str | None]:
        hit = self._cache.get(scene)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1], hit[2]
        code = await Code.filter(scene=scene).only("id", "kind").first()
        found = (code.id, str(code.kind)) if code is not None else (None, None)
        if len(self._cache) > 100_000:
            self._cache.clear()
        self._cache[scene] = (time.monotonic() + self.ttl, *found)
        return found

    async def kind(self, push: Push) -> str | None:
        """The kind of the code a push's scene belongs to (None: no such code)."""
        if push.scene is None:
            return None
        push.code_id, kind = await self.lookup(push.scene)
        return kind
