"""Read heartbeats, many at once: the mini-program beats every few seconds for every open page,
so concurrent heartbeats share one UPDATE (the way the intake shares one INSERT).

Each heartbeat adds the time since the read was last heard of, at most HEARTBEAT_GAP seconds,
computed by the database against the row itself: two calls racing (a replay) count once.
Only open reads of the session's own prospect are touched; anything else (a closed read, one of
a merged record, no read at all) is left to the caller's slower path.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise import connections
from tortoise.transactions import in_transaction

from bot.intake import Batcher
from domain.content import HEARTBEAT_GAP
from models import Read


@dataclass(frozen=True)
class Beat:
    read_id: int
    prospect_id: int
    progress: float | None
    at: datetime


# PostgreSQL: one fixed statement (prepared once per connection) for the whole batch.
UPDATE_PG = (
    'UPDATE "{table}" AS r SET '
    '"seconds" = r."seconds" + LEAST(GREATEST(EXTRACT(EPOCH FROM (v.at - r."seen_at")), 0), '
    '{gap})::float8, '
    '"progress" = GREATEST(r."progress", COALESCE(v.progress, r."progress")), '
    '"seen_at" = GREATEST(r."seen_at", v.at) '
    "FROM unnest($1::bigint[], $2::int[], $3::float8[], $4::timestamptz[]) "
    "AS v(id, p, progress, at) "
    'WHERE r."id" = v.id AND r."prospect_id" = v.p AND r."closed_at" IS NULL '
    'RETURNING r."id", r."prospect_id"')
UPDATE_SQLITE = (
    'UPDATE "{table}" SET '
    '"seconds" = "seconds" + MIN(MAX((julianday(?) - julianday("seen_at")) * 86400.0, 0), {gap}), '
    '"progress" = MAX("progress", COALESCE(?, "progress")), '
    '"seen_at" = CASE WHEN julianday(?) > julianday("seen_at") THEN ? ELSE "seen_at" END '
    'WHERE "id" = ? AND "prospect_id" = ? AND "closed_at" IS NULL RETURNING "id", "prospect_id"')


class HeartbeatWriter(Batcher):
    """`await beat(Beat(...))` → True when an open read of that prospect took it."""

    def __init__(self, max_batch: int = 500) -> None:
        super().__init__("heartbeats", max_batch)

    async def beat(self, beat: Beat) -> bool:
        found: bool = await self.submit(beat)
        return found

    async def flush(self, items: list[Beat]) -> list[bool]:
        conn = connections.get("default")
        table = Read._meta.db_table
        beats = _one_per_read(items)
        if conn.capabilities.dialect == "postgres":
            columns: list[Any] = [list(c) for c in zip(
                *[(b.read_id, b.prospect_id, b.progress, b.at) for b in beats], strict=True)]
            rows = await conn.execute_query_dict(
                UPDATE_PG.format(table=table, gap=HEARTBEAT_GAP), columns)
        else:
            sql = UPDATE_SQLITE.format(table=table, gap=HEARTBEAT_GAP)
            rows = []
            async with in_transaction() as tx:
                for b in beats:
                    at = b.at.isoformat(" ")
                    rows += await tx.execute_query_dict(
                        sql, [at, b.progress, at, at, b.read_id, b.prospect_id])
        touched = {(int(row["id"]), int(row["prospect_id"])) for row in rows}
        return [(b.read_id, b.prospect_id) in touched for b in items]


def _one_per_read(items: list[Beat]) -> list[Beat]:
    """Beats of one read in one batch (a replay, or two racing calls) as one: the latest time,
    the furthest progress (an UPDATE joined to its values would take one of them at random)."""
    beats: dict[tuple[int, int], Beat] = {}
    for beat in items:
        key = (beat.read_id, beat.prospect_id)
        known = beats.get(key)
        if known is not None:
            progress = max((p for p in (known.progress, beat.progress) if p is not None),
                           default=None)
            beat = Beat(beat.read_id, beat.prospect_id, progress, max(known.at, beat.at))
        beats[key] = beat
    return list(beats.values())
