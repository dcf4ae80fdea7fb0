"""Materials as prospects meet them: shares (what a salesperson's card sends, and what each
reader passes on) and reads (timed by the server from the heartbeats it sees).

A share token is the share's id with a MAC: opaque, and never trusted when forged or tampered
with (the read still counts, without a sharer).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tortoise.exceptions import IntegrityError

from bot.signals import Signal
from bot.signing import SignedIds
from domain.merging import family
from models import Material, Read, Salesperson, Share

HEARTBEAT_GAP = 30.0  # seconds: at most this much reading counts between two calls
READ_TIMEOUT = timedelta(minutes=5)  # a read nobody hears from for this long is closed


class ShareTokens(SignedIds):
    def __init__(self, secret_key: str) -> None:
        super().__init__(secret_key, b"share-token", mac_bytes=10)


async def _one(key: str, **fields: object) -> Share:
    """The share for `key`, made once whoever asks at the same time."""
    share = await Share.get_or_none(key=key)
    if share is not None:
        return share
    try:
        return await Share.create(key=key, **fields)
    except IntegrityError:
        return await Share.get(key=key)


async def salesperson_share(material: Material, salesperson: Salesperson) -> Share:
    return await _one(f"s{salesperson.id}:m{material.id}", material=material,
                      salesperson=salesperson)


async def reader_share(material_id: int, prospect_id: int, came_through: Share | None) -> Share:
    """The reader's own share for passing the material on (one a person, whichever of their
    merged records made it); its parent is the share they came through the first time."""
    mine = await Share.filter(material_id=material_id,
                              prospect_id__in=await family(prospect_id)).order_by("id").first()
    if mine is not None:
        return mine
    return await _one(f"p{prospect_id}:m{material_id}", material_id=material_id,
                      prospect_id=prospect_id,
                      parent_id=came_through.id if came_through is not None else None)


async def chain(share: Share | None, limit: int = 20) -> list[Share]:
    """The share and those it came through, nearest first, back to the salesperson's."""
    found: list[Share] = []
    while share is not None and len(found) < limit and share.id not in {s.id for s in found}:
        found.append(share)
        share = await Share.get_or_none(id=share.parent_id) if share.parent_id else None
    return found


@dataclass(frozen=True)
class Progress:
    read: Read
    counted: float  # seconds this call added


def advance(read: Read, now: datetime, progress: float | None) -> Progress:
    """What one call from the reader adds: the time since the last call heard, up to
    HEARTBEAT_GAP (a client cannot claim an hour in one call; a replayed call adds nothing),
    and progress, which only rises."""
    gap = (now - read.seen_at).total_seconds()
    counted = min(max(gap, 0.0), HEARTBEAT_GAP)
    read.seconds += counted
    read.seen_at = max(read.seen_at, now)
    if progress is not None:
        read.progress = max(read.progress, progress)
    return Progress(read, counted)


async def save_progress(read: Read, seen_before: datetime, closing: bool = False) -> bool:
    """Writes a read's progress unless another call got there first (compared on `seen_at`):
    two calls racing count once. True when written."""
    values: dict[str, object] = {"seen_at": read.seen_at, "seconds": read.seconds,
                                 "progress": read.progress}
    if closing:
        read.closed_at = read.seen_at
        values["closed_at"] = read.closed_at
    written = await Read.filter(id=read.id, seen_at=seen_before, closed_at=None).update(**values)
    return bool(written)


async def stale_reads(now: datetime | None = None, limit: int = 100) -> list[Read]:
    """Reads nobody has heard from for READ_TIMEOUT: to be closed by the worker."""
    cutoff = (now or datetime.now(UTC)) - READ_TIMEOUT
    return await Read.filter(closed_at=None, seen_at__lt=cutoff).order_by("id").limit(limit)


async def finished(read: Read) -> Signal:
    """A closed read as the signal it becomes: what was read, how long, how far, and through
    whose hands (the share chain, nearest first)."""
    share = await Share.get_or_none(id=read.share_id) if read.share_id else None  # type: ignore[attr-defined]
    links = await chain(share)
    root = links[-1] if links else None
    return Signal(
        source="mp", kind="mp.read", dedup_key=f"read:{read.id}", actor=None, scene=None,
        fields={"prospect_id": read.prospect_id, "read_id": read.id,  # type: ignore[attr-defined]
                "material_id": read.material_id,  # type: ignore[attr-defined]
                "seconds": round(read.seconds, 1), "progress": round(read.progress, 3),
                "share_id": share.id if share else None,
                "salesperson_id": root.salesperson_id if root else None,  # type: ignore[attr-defined]
                "chain": [link.id for link in links],
                "shared_by_prospect_id": share.prospect_id if share else None})  # type: ignore[attr-defined]
