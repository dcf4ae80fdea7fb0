"""Who owns a prospect, and what happens to it when its salesperson leaves."""

from __future__ import annotations

from dataclasses import dataclass

from tortoise.transactions import in_transaction

from domain.opportunities import Messaging, tell_receiver
from models import Opportunity, Prospect, Salesperson

OPEN = ("open", "accepted")  # opportunities still being worked


@dataclass(frozen=True)
class Handover:
    prospects: int
    opportunities: int
    pushed: int = 0  # pushes queued to tell the receiver


async def handover(from_id: int, to_id: int, messaging: Messaging | None = None) -> Handover:
    """A leaving salesperson's prospects and open opportunities go to another, together:
    either everything moves or nothing does. A prospect keeps when it was first assigned. With
    `messaging`, the receiver is told of each opportunity in the same transaction (a push with
    a link of their own: the leaver's links stop opening it)."""
    async with in_transaction():
        prospects = await Prospect.filter(owner_id=from_id, merged_into_id=None).update(
            owner_id=to_id)
        theirs = await Opportunity.filter(salesperson_id=from_id, status__in=OPEN).values_list(
            "id", flat=True)
        opportunities = await Opportunity.filter(
            id__in=theirs, salesperson_id=from_id, status__in=OPEN).update(salesperson_id=to_id)
        pushed = 0
        if messaging is not None and opportunities:
            giver, receiver = await Salesperson.get(id=from_id), await Salesperson.get(id=to_id)
            for opportunity in await Opportunity.filter(id__in=theirs, salesperson_id=to_id):
                pushed += await tell_receiver(opportunity, giver, receiver, messaging)
    return Handover(prospects, opportunities, pushed)
