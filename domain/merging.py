"""Two prospects found to be one person become one, losing nothing.

The prospect seen first survives. Everything that belongs to the other — identities,
interactions, opportunities, reads, shares, earlier merges — moves to the survivor; its score
rows are dropped, redone by the rescore that follows; when both had an open opportunity, the
other's is closed as `merged`, so the person has one. Tags are joined; profile fields, the
owner, the first code and the partner fill what the survivor lacks (the earliest first touch
keeps its own). The other stays as a tombstone whose `merged_into` leads to the survivor
(tombstones are re-pointed so that one step always reaches it), and the merge is recorded.

Merges take both prospect rows FOR NO KEY UPDATE in id order (unlike FOR UPDATE, that lock does
not hold up rows being pointed at the prospect: a processed mark, a new read), so overlapping
merges queue rather than deadlock; one that finds a prospect merged away meanwhile starts again
from the survivors. On SQLite a transaction holds the only connection, so merges run one at a
time there anyway. Something written for a tombstone after its merge (a late processed mark, a
handler that held its id) is not lost: every read of a person goes through `family`, and every
write to a prospect's own fields takes `locked`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from asyncpg.exceptions import TransactionRollbackError
from tortoise.exceptions import OperationalError
from tortoise.transactions import in_transaction

from models import (
    Identity,
    Interaction,
    Opportunity,
    OutboundMessage,
    OutboundStatus,
    Prospect,
    ProspectMerge,
    Read,
    ScoreEntry,
    Share,
)

log = logging.getLogger(__name__)
PROFILE = ("name", "company", "title", "department", "industry", "company_size", "email",
           "consent_version", "consent_at")
OWNED = (Identity, Interaction, Opportunity, Read, Share)  # score rows: redone by a rescore
OPEN_OPPORTUNITY = ("open", "accepted", "pool")
ATTEMPTS = 8


class _Moved(Exception):
    """A prospect was merged away between reading its id and locking it."""


async def current(prospect_id: int) -> int:
    """The prospect an id stands for now: itself, or the survivor it was merged into."""
    seen: set[int] = set()
    while prospect_id not in seen:
        seen.add(prospect_id)
        survivor = await Prospect.filter(id=prospect_id).values_list("merged_into_id", flat=True)
        if not survivor or survivor[0] is None:
            return prospect_id
        prospect_id = survivor[0]
    return prospect_id


async def family(prospect_id: int) -> list[int]:
    """The survivor's id and those of every prospect merged into it: what was written for a
    tombstone after its merge still counts for the person."""
    survivor = await current(prospect_id)
    merged = await Prospect.filter(merged_into_id=survivor).values_list("id", flat=True)
    return [survivor, *merged]


async def load(prospect_id: int) -> Prospect:
    """The prospect an id stands for (a tombstone's survivor), to read."""
    prospect = await Prospect.get(id=prospect_id)
    if prospect.merged_into_id is None:  # type: ignore[attr-defined]
        return prospect
    return await Prospect.get(id=await current(prospect_id))


@asynccontextmanager
async def locked(prospect_id: int) -> AsyncIterator[Prospect]:
    """The prospect an id stands for, locked for writing inside a transaction: a merge cannot
    run meanwhile, so what is written cannot land on a tombstone (one merged away between
    reading and locking is looked up again)."""
    for _ in range(ATTEMPTS):
        survivor = await current(prospect_id)
        async with in_transaction():
            prospect = await Prospect.select_for_update(no_key=True).get(id=survivor)
            if prospect.merged_into_id is None:  # type: ignore[attr-defined]
                yield prospect
                return
    raise RuntimeError(f"prospect {prospect_id} kept being merged while it was written")


async def merge(a: int, b: int, reason: str) -> int:
    """Makes the prospects `a` and `b` one; returns the survivor's id."""
    for attempt in range(ATTEMPTS):
        try:
            return await _merge_once(a, b, reason)
        except _Moved:
            continue  # resolve the survivors again and retry
        except (OperationalError, TransactionRollbackError) as exc:
            # PostgreSQL gave up a deadlock with other writers (or a serialization failure)
            if (isinstance(exc, OperationalError) and "deadlock" not in str(exc).lower()
                    or attempt + 1 == ATTEMPTS):
                raise
            await asyncio.sleep(0.01 * 2**attempt)
    raise RuntimeError(f"prospects {a} and {b} kept moving while being merged")


async def _merge_once(a: int, b: int, reason: str) -> int:
    a, b = await current(a), await current(b)
    if a == b:
        return a
    async with in_transaction() as tx:
        rows = await (Prospect.filter(id__in=[a, b]).order_by("id")
                      .select_for_update(no_key=True)
                      .using_db(tx))
        if len(rows) != 2 or any(row.merged_into_id is not None for row in rows):  # type: ignore[attr-defined]
            raise _Moved
        survivor, merged = sorted(rows, key=lambda p: (p.created_at, p.id))
        moved: dict[str, Any] = {}
        duplicates = await _one_opportunity(survivor.id, merged.id, tx)
        if duplicates:
            moved["duplicate_opportunities"] = duplicates
        await ScoreEntry.filter(prospect_id=merged.id).using_db(tx).delete()
        for model in OWNED:
            count = await model.filter(prospect_id=merged.id).using_db(tx).update(
                prospect_id=survivor.id)
            if count:
                moved[model._meta.db_table] = count
        await Prospect.filter(merged_into_id=merged.id).using_db(tx).update(
            merged_into_id=survivor.id)
        await ProspectMerge.filter(survivor_id=merged.id).using_db(tx).update(
            survivor_id=survivor.id)
        filled = _absorb(survivor, merged)
        if filled:
            moved["fields"] = filled
        await survivor.save(using_db=tx)
        merged.merged_into_id = survivor.id  # type: ignore[attr-defined]
        merged.tags = []
        for name in PROFILE:
            setattr(merged, name, None)
        await merged.save(using_db=tx)
        await ProspectMerge.create(survivor_id=survivor.id, merged_id=merged.id, reason=reason,
                                   moved=moved, using_db=tx)
    log.info("prospect %d merged into %d (%s)", merged.id, survivor.id, reason)
    return survivor.id


async def _one_opportunity(survivor: int, merged: int, tx: Any) -> list[int]:
    """Both records qualified before they were known to be one person: the survivor's open
    opportunity stays, the other's is closed as `merged` (its pending push with it), so the
    person is one opportunity with one owner. The ids closed."""
    if not await Opportunity.filter(prospect_id=survivor, status__in=OPEN_OPPORTUNITY
                                    ).using_db(tx).exists():
        return []
    closed = list(await Opportunity.filter(prospect_id=merged, status__in=OPEN_OPPORTUNITY)
                  .using_db(tx).values_list("id", flat=True))
    if closed:
        await Opportunity.filter(id__in=closed).using_db(tx).update(status="merged")
        await OutboundMessage.filter(opportunity_id__in=closed, status=OutboundStatus.PENDING
                                     ).using_db(tx).update(
            status=OutboundStatus.FAILED, last_error="the person was merged with another "
                                                     "record that has an open opportunity")
    return closed


def _absorb(survivor: Prospect, merged: Prospect) -> list[str]:
    """What the merged prospect brings that the survivor lacks; the names of the fields filled."""
    filled = []
    tags = list(dict.fromkeys([*survivor.tags, *merged.tags]))
    if tags != survivor.tags:
        survivor.tags = tags
        filled.append("tags")
    for name in PROFILE:
        if getattr(survivor, name) is None and getattr(merged, name) is not None:
            setattr(survivor, name, getattr(merged, name))
            filled.append(name)
    if survivor.owner_id is None and merged.owner_id is not None:  # type: ignore[attr-defined]
        survivor.owner_id = merged.owner_id  # type: ignore[attr-defined]
        survivor.owner_assigned_at = merged.owner_assigned_at
        filled.append("owner_id")
    for name in ("first_code_id", "partner_id"):
        if getattr(survivor, name) is None and getattr(merged, name) is not None:
            setattr(survivor, name, getattr(merged, name))
            filled.append(name)
    return filled
