"""Scenes are short opaque tokens; the code behind one decides which handlers a scan reaches."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.cache import TimedCache
from bot.signals import CodeRef, Signal
from models import Code

EXPIRED, UNKNOWN = "expired", "unknown"
SCENE_MAX = Code._meta.fields_map["scene"].max_length  # type: ignore[attr-defined]


class Scenes:
    """scene → (code id, code kind, expiry), cached briefly: codes are created, rarely changed."""

    def __init__(self, ttl: float = 60.0) -> None:
        self._cache: TimedCache[str, tuple[int | None, str | None, datetime | None]] = TimedCache(
            maxsize=100_000, ttl=ttl)

    async def lookup(self, scene: str) -> tuple[int | None, str | None, datetime | None]:
        found = self._cache.get(scene)
        if found is not None:
            return found
        code = None
        if len(scene) <= SCENE_MAX:  # a longer one (a code made elsewhere) is no code of ours
            code = await Code.filter(scene=scene, ready=True).only(
                "id", "kind", "expires_at").first()
        found = ((code.id, str(code.kind.value), code.expires_at) if code is not None
                 else (None, None, None))
        self._cache[scene] = found
        return found

    async def code(self, signal: Signal) -> CodeRef | None:
        """The code a signal's scene names (see CodeRef); None for a signal without a scene."""
        if signal.scene is None:
            return None
        code_id, kind, expires_at = await self.lookup(signal.scene)
        if code_id is None or kind is None:
            return CodeRef(None, UNKNOWN)
        if expires_at is not None and expires_at <= datetime.now(UTC):
            return CodeRef(None, EXPIRED)
        return CodeRef(code_id, kind)
