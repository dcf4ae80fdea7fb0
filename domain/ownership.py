"""Who owns a prospect, and what happens to it when its salesperson leaves."""

from __future__ import annotations

from dataclasses import dataclass

from tortoise.transactions import in_transaction

from models import Opportunity, Prospect

OPEN = ("open", "accepted")  # opportunities still being worked


@dataclass(frozen=True)
class Handover:
    prospects: int
    opportunities: int


async def handover(from_id: int, to_id: int) -> Handover:
    """A leaving salesperson's prospects and open opportunities go to another, together:
    either everything moves or nothing does. A prospect keeps when it was first assigned."""
    async with in_transaction():
        prospects = await Prospect.filter(owner_id=from_id, merged_into_id=None).update(
            owner_id=to_id)
        opportunities = await Opportunity.filter(salesperson_id=from_id, status__in=OPEN).update(
            salesperson_id=to_id)
    return Handover(prospects, opportunities)
