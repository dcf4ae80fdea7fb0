"""The one way in: every signal — a WeChat push, a mini-program call, a read — is stored once
as an interaction, dispatched by its kind and completed, here. (The worker dispatches a stored
signal that was never completed again, from the same stored kind and scene.)"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime

from bot.dispatch import Dispatcher
from bot.intake import InteractionWriter, Row
from bot.signals import Outcome, Signal


@dataclass(frozen=True)
class Received:
    created: bool  # False for a retry of a signal stored before
    outcome: Outcome | None  # None when nothing ran, or not within the wait
    interaction_id: int | None = None  # the stored interaction (the first one, for a retry)


class Ingest:
    def __init__(self, writer: InteractionWriter, dispatcher: Dispatcher) -> None:
        self.writer = writer
        self.dispatcher = dispatcher

    async def receive(self, signal: Signal, *, wait: float | None = None) -> Received:
        """Stores `signal` (once, whatever the retries) and dispatches it: inline when `wait`
        is None (the handler's errors are the caller's; scoring goes on after), else for at
        most `wait` seconds, the rest going on after the answer."""
        now = datetime.now(UTC)
        acted_on = self.dispatcher.acts_on(signal)
        stored = await self.writer.save(Row(
            source=signal.source, kind=signal.kind, dedup_key=signal.dedup_key,
            actor=signal.actor, scene=signal.scene, payload=signal.fields, received_at=now,
            processed_at=None if acted_on else now))
        if not stored.created or not acted_on:
            return Received(stored.created, None, stored.interaction_id)
        signal = replace(signal, interaction_id=stored.interaction_id)
        if wait is None:  # what follows the signal (scoring) goes on after the answer
            return Received(True, await self.dispatcher.process(signal, defer_after=True),
                            stored.interaction_id)
        return Received(True, await self.dispatcher.within(signal, wait),
                        stored.interaction_id)
