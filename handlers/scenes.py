"""Scenes are short opaque tokens; the code behind one decides which handlers a scan reaches."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from bot.pushes import Push
from models import Code

EXPIRED = "expired"
SCENE_MAX = Code._meta.fields_map["scene"].max_length  # type: ignore[attr-defined]


class Scenes:
    """scene → (code id, code kind, expiry), cached briefly: codes are created, rarely changed."""

    def __init__(self, ttl: float = 60.0) -> None:
        self.ttl = ttl
        self._cache: dict[str, tuple[float, int | None, str | None, datetime | None]] = {}

    async def lookup(self, scene: str) -> tuple[int | None, str | None, datetime | None]:
        hit = self._cache.get(scene)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1], hit[2], hit[3]
        code = None
        if len(scene) <= SCENE_MAX:  # a longer one (a code made elsewhere) is no code of ours
            code = await Code.filter(scene=scene, ready=True).only(
                "id", "kind", "expires_at").first()
        found = ((code.id, str(code.kind.value), code.expires_at) if code is not None
                 else (None, None, None))
        if len(self._cache) > 100_000:
            self._cache.clear()
        self._cache[scene] = (time.monotonic() + self.ttl, *found)
        return found

    async def kind(self, push: Push) -> str | None:
        """The kind of the code a push's scene belongs to; "expired" for a code past its expiry
        (recorded, not attributed); None for a scene no code has."""
        if push.scene is None:
            return None
        code_id, kind, expires_at = await self.lookup(push.scene)
        if expires_at is not None and expires_at <= datetime.now(UTC):
            return EXPIRED
        push.code_id = code_id
        return kind
