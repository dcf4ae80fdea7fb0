"""What follows every signal a score depends on, off the reply's path: the person's score from
their whole log, and what it leads to — an opportunity and its push, a nurture or other-offer
tag, the read radar — in one transaction under the person's lock, so that two signals of one
person are scored one after the other and a push is written with its opportunity or not at all.
The sender is woken once it is committed."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from bot.privacy import Sealer
from bot.signals import Outcome, Signal
from domain import scoring
from domain.attribution import Attribution
from domain.merging import family, locked
from domain.opportunities import Messaging, Trigger, radar, route
from domain.rules import Rules
from models import Identity, IdentityKind, Interaction, Material

log = logging.getLogger(__name__)


class Leads:
    def __init__(self, rules: Rules, attribution: Attribution, sealer: Sealer,
                 messaging: Messaging, kick: Callable[[], None] | None = None) -> None:
        self.rules = rules
        self.attribution = attribution
        self.sealer = sealer
        self.messaging = messaging
        self.kick = kick

    async def after(self, signal: Signal, outcome: Outcome) -> None:
        """The dispatcher's hook: runs once a signal's handler (and its follow-up) is done; a
        failure here leaves the signal unfinished, so the worker tries it again."""
        if signal.kind not in scoring.SCORED_KINDS or outcome.prospect_id is None:
            return
        queued = await self.rescore(outcome.prospect_id, signal)
        if queued and self.kick is not None:
            self.kick()

    async def rescore(self, prospect_id: int, signal: Signal | None = None) -> bool:
        """Scores the person and routes them; True when a message was queued."""
        queued = False
        async with locked(prospect_id) as prospect:
            members = await family(prospect.id)
            was = prospect.quadrant  # before this signal: did they just qualify?
            score = await scoring.score_one(self.rules, prospect.id)
            trigger = await self._trigger(signal)
            opportunity = await route(self.rules, prospect, members, score, trigger,
                                      await self._phone(members), self.attribution,
                                      self.messaging, was=was)
            queued = opportunity is not None and opportunity.salesperson_id is not None  # type: ignore[attr-defined]
            if signal is not None and signal.kind == "mp.read":
                material = await Material.get_or_none(
                    id=int(signal.fields.get("material_id") or 0))
                if material is not None and await radar(signal.fields, prospect,
                                                        self.messaging, material.title):
                    queued = True
        return queued

    async def _trigger(self, signal: Signal | None) -> Trigger:
        if signal is None or signal.interaction_id is None:
            return Trigger(None, datetime.now(UTC))
        received = await Interaction.filter(id=signal.interaction_id).values_list(
            "received_at", flat=True)
        return Trigger(signal.interaction_id, received[0] if received else datetime.now(UTC))

    async def _phone(self, members: list[int]) -> str | None:
        sealed = await Identity.filter(prospect_id__in=members, kind=IdentityKind.PHONE,
                                       sealed__isnull=False).values_list("sealed", flat=True)
        return self.sealer.unseal(str(sealed[0])) if sealed else None
