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


async def handover(giver: Salesperson, receiver: Salesperson,
                   messaging: Messaging | None = None) -> Handover:
    """A leaving salesperson's prospects and open opportunities go to another, together:
    either everything moves or nothing does. A prospect keeps when it was first assigned. With
    `messaging`, the receiver is told of each opportunity in the same transaction (a push with
    a link of their own: the giver's links stop opening it)."""
    async with in_transaction():
        prospects = await Prospect.filter(owner_id=giver.id, merged_into_id=None).update(
            owner_id=receiver.id)
        theirs = await Opportunity.filter(salesperson_id=giver.id, status__in=OPEN).values_list(
            "id", flat=True)
        opportunities = await Opportunity.filter(
            id__in=theirs, salesperson_id=giver.id, status__in=OPEN).update(
            salesperson_id=receiver.id)
        pushed = 0
        if messaging is not None and opportunities:
            for opportunity in await Opportunity.filter(id__in=theirs,
                                                        salesperson_id=receiver.id):
                pushed += await tell_receiver(opportunity, giver, receiver, messaging)
    return Handover(prospects, opportunities, pushed)
