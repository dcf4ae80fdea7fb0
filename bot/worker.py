"""Background work: picking up stored signals nobody finished (a crash, a failing handler), and
closing reads nobody has heard from.

Several workers may run against one database: an interaction is claimed with a conditional
UPDATE before it is processed, and a claim that is not completed expires and backs off.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from tortoise.expressions import F, Q

from bot.background import Loop
from bot.dispatch import Dispatcher
from bot.faults import is_outage
from bot.ingest import Ingest
from bot.signals import NotYet, Signal
from domain import content
from models import Interaction

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 8
LEASE = 60.0  # seconds a claim lasts; doubles with each attempt


class Worker(Loop):
    def __init__(self, dispatcher: Dispatcher, recovery_after: float = 30.0,
                 interval: float = 5.0, ingest: Ingest | None = None) -> None:
        super().__init__("worker", log, "recovering unfinished pushes", interval)
        self.dispatcher = dispatcher
        self.ingest = ingest
        self.recovery_after = recovery_after

    async def round(self) -> None:
        await self.recover()
        await self.close_reads()

    async def recover(self, limit: int = 100) -> int:
        """Processes stored pushes left unfinished for `recovery_after` seconds; returns how many
        this worker claimed."""
        now = datetime.now(UTC)
        free = Q(claimed_until=None) | Q(claimed_until__lt=now)
        candidates = await (
            Interaction.filter(processed_at=None, attempts__lt=MAX_ATTEMPTS,
                               received_at__lt=now - timedelta(seconds=self.recovery_after))
            .filter(free).order_by("id").limit(limit)
            .values_list("id", "source", "kind", "dedup_key", "actor", "scene", "payload",
                         "attempts")
        )
        claimed = 0
        for interaction_id, source, kind, dedup, actor, scene, payload, attempts in candidates:
            lease = timedelta(seconds=LEASE * 2 ** min(attempts, 6))
            won = await Interaction.filter(id=interaction_id, processed_at=None).filter(
                free).update(claimed_until=now + lease, attempts=F("attempts") + 1)
            if not won:
                continue  # another worker has it
            claimed += 1
            # Dispatched again as it was stored, whatever its source (a WeChat push, a
            # mini-program call): the stored kind and scene, not a new reading of the payload.
            signal = Signal(source=source, kind=kind, dedup_key=dedup, actor=actor, scene=scene,
                            fields=payload, interaction_id=interaction_id)
            try:
                await self.dispatcher.process(signal)
            except NotYet as exc:
                log.info("interaction %s waits (%s); attempt %d", interaction_id, exc,
                         attempts + 1)
            except Exception as exc:
                if is_outage(exc):
                    raise  # the round ends; the claim expires and the push is tried again
                log.exception("interaction %s failed again (attempt %d)", interaction_id,
                              attempts + 1)
        return claimed

    async def close_reads(self) -> int:
        """Closes reads nobody has heard from for a while, at their last heartbeat; each becomes
        its `mp.read` signal like a read closed by the reader. Returns how many."""
        if self.ingest is None:
            return 0
        closed = 0
        for read in await content.stale_reads():
            await self.ingest.receive(await content.finished(read))  # first: never lost
            if await content.save_progress(read, read.seen_at, closing=True):
                closed += 1
        return closed
