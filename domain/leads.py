"""What follows every signal a score depends on, off the reply's path: the person's score from
their whole log, and what it leads to — an opportunity and its push, a nurture or other-offer
tag, the read radar.

Signals arriving together (a booth burst) are scored together: one transaction holds their
people's rows (FOR UPDATE, in id order, as `locked` and merges take them), reads all their logs
in one query, writes every ledger with set-based statements, and routes only those whose score
can lead somewhere (most booth visitors are in the pool after a scan); a person with several
signals in the burst is scored once. A push is written with its opportunity or not at all; the
sender is woken once it is committed. A failed batch is retried person by person, and a signal
whose scoring failed stays unfinished for the worker."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tortoise.transactions import in_transaction

from bot.intake import Batcher, Done, mark
from bot.signals import Outcome, Signal
from domain import ledger, scoring
from domain.attribution import Attribution
from domain.identity import Prospects
from domain.opportunities import Messaging, Trigger, key_account_of, radar, route
from domain.rules import Rules
from models import Interaction, Material, Prospect

log = logging.getLogger(__name__)


ATTEMPTS = 8
# A booth burst's batch is scored in one stretch of the event loop but for this: every so many
# people it lets the requests that wait in the meantime go on, so that their replies do not
# queue behind the whole batch's arithmetic.
YIELD_EVERY = 50


class Moved(Exception):
    """A person of the batch was merged away before their row was locked."""


@dataclass(frozen=True)
class Rescore:
    prospect_id: int
    signal: Signal | None
    code_id: int | None = None  # the code the signal came through


class Leads(Batcher):
    def __init__(self, rules: Rules, attribution: Attribution, prospects: Prospects,
                 messaging: Messaging, kick: Callable[[], None] | None = None,
                 max_batch: int = 200) -> None:
        super().__init__("leads", max_batch)
        self.rules = rules
        self.attribution = attribution
        self.prospects = prospects
        self.messaging = messaging
        self.kick = kick

    async def after(self, signal: Signal, outcome: Outcome) -> bool:
        """The dispatcher's hook: runs once a signal's handler (and its follow-up) is done, as
        the last of its work, and records the signal complete in the scoring transaction (True:
        the dispatcher has nothing left to mark). A failure leaves the signal unfinished, so
        the worker tries it again."""
        if signal.kind not in scoring.SCORED_KINDS or outcome.prospect_id is None:
            return False
        await self.rescore(outcome.prospect_id, signal, outcome.code_id)
        return signal.interaction_id is not None

    async def rescore(self, prospect_id: int, signal: Signal | None = None,
                      code_id: int | None = None) -> bool:
        """Scores the person and routes them; True when a message was queued. A stored
        `signal` is recorded as theirs (with `code_id`) and complete, in the same transaction:
        their log includes it, and once the score is committed nothing of it is left to do."""
        queued: bool = await self.submit(Rescore(prospect_id, signal, code_id))
        if queued and self.kick is not None:
            self.kick()
        return queued

    async def flush(self, items: list[Rescore]) -> list[bool]:
        now = datetime.now(UTC)
        async with in_transaction():
            survivors, people = await _locked([item.prospect_id for item in items])
            await mark([  # in this transaction: their logs include them, and they are done
                Done(item.signal.interaction_id, survivors[item.prospect_id], item.code_id)
                for item in items
                if item.signal is not None and item.signal.interaction_id is not None])
            families = await ledger.families(list(people))
            logs = await scoring.logs_of(families, people)
            kinds = scoring.Kinds()
            await kinds.load(row for one in logs.values() for row in one.rows)
            scores: dict[int, scoring.Score] = {}
            for pid, one in logs.items():
                scores[pid] = scoring.compute(self.rules, one, kinds.codes, kinds.materials, now)
                if len(scores) % YIELD_EVERY == 0:  # let waiting replies go between chunks
                    await asyncio.sleep(0)
            await scoring.write(scores, families, now)
            latest: dict[int, Rescore] = {}
            for item in items:  # the person's latest signal in the batch triggered it
                latest[survivors[item.prospect_id]] = item
            queued: dict[int, bool] = {}
            for pid, item in latest.items():
                queued[pid] = await self._route(people[pid], families[pid], scores[pid], item)
            for item in items:
                pid = survivors[item.prospect_id]
                if (item.signal is not None and item.signal.kind == "mp.read"
                        and await self._radar(pid, item.signal)):
                    queued[pid] = True
        return [queued.get(survivors[item.prospect_id], False) for item in items]

    async def _route(self, row: dict[str, Any], members: list[int], score: scoring.Score,
                     item: Rescore) -> bool:
        if score.quadrant == scoring.POOL and key_account_of(self.rules, row["company"]) is None:
            return False  # nothing to do: no tag, no opportunity (a pool scan, mostly)
        person = await Prospect.get(id=row["id"])  # locked above
        opportunity = await route(self.rules, person, members, score,
                                  await _trigger(score, item.signal), await self._phone(person),
                                  self.attribution, self.messaging, was=row["quadrant"])
        return opportunity is not None and opportunity.salesperson_id is not None  # type: ignore[attr-defined]

    async def _radar(self, prospect_id: int, signal: Signal) -> bool:
        material = await Material.get_or_none(id=int(signal.fields.get("material_id") or 0))
        return material is not None and await radar(
            signal.fields, await Prospect.get(id=prospect_id), self.messaging, material.title)

    async def _phone(self, person: Prospect) -> str | None:
        return next(iter(await self.prospects.phones(person.id)), None)


async def _locked(ids: list[int]) -> tuple[dict[int, int], dict[int, dict[str, Any]]]:
    """Each id's survivor, and the survivors' rows (id, quadrant, profile) locked (FOR NO KEY
    UPDATE, in id order). One merged away between finding and locking (the lock waited for the
    merge, then the row no longer qualified) is found again: the survivor it was merged into."""
    for _ in range(ATTEMPTS):
        survivors = await ledger.survivors(ids)
        people = await ledger.lock_people(set(survivors.values()))
        if all(survivor in people for survivor in survivors.values()):
            return survivors, people
    raise Moved("people kept being merged while their signals were scored")


async def _trigger(score: scoring.Score, signal: Signal | None) -> Trigger:
    """The interaction that made the score what it is: the latest that earned points (not
    whichever signal's scoring ran last — a login right after the qualifying read earns
    nothing), else the signal at hand."""
    earned = [e for e in score.entries if e.interaction_id is not None]
    latest = max(earned, key=lambda e: (e.at, e.interaction_id or 0), default=None)
    interaction_id = latest.interaction_id if latest is not None else (
        signal.interaction_id if signal is not None else None)
    if interaction_id is None:
        return Trigger(None, datetime.now(UTC))
    received = await Interaction.filter(id=interaction_id).values_list("received_at", flat=True)
    return Trigger(interaction_id, received[0] if received else datetime.now(UTC))
