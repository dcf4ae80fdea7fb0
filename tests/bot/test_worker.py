"""bot.worker: stored pushes nobody finished are picked up again, once, with backoff."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot import keys
from bot.dispatch import Dispatcher, Router
from bot.intake import CompletionWriter
from bot.pushes import dedup_key
from bot.signals import Signal
from bot.worker import LEASE, MAX_ATTEMPTS, Worker
from models import Identity, IdentityKind, Interaction
from tests.bot.kit import OPENID, eventually, oa_fields


async def crashed(fields: dict[str, Any], *, ago: float = 600, source: str = "oa",
                  kind: str = "event.subscribe", **changes: Any) -> Interaction:
    """An interaction stored before a crash: committed, never processed."""
    return await Interaction.create(
        source=source, kind=kind, dedup_key=dedup_key(fields), actor=fields.get("FromUserName"),
        payload=fields, received_at=datetime.now(UTC) - timedelta(seconds=ago), **changes)


async def processed(interaction_id: int) -> Interaction | None:
    return await Interaction.filter(id=interaction_id, processed_at__isnull=False).first()


class Harness:
    """A dispatcher with one counting handler for OA subscribes, on a real database."""

    def __init__(self) -> None:
        self.calls: list[int | None] = []
        self.fail = False
        self.delay = 0.0
        router = Router("test")

        @router.on("oa", "event.subscribe")
        async def followed(signal: Signal) -> None:
            self.calls.append(signal.interaction_id)
            await asyncio.sleep(self.delay)
            if self.fail:
                raise RuntimeError("the handler failed")

        async def scene_code(signal: Signal) -> None:
            return None

        self.completions = CompletionWriter()
        self.dispatcher = Dispatcher([router], {}, scene_code, self.completions)

    def worker(self, **options: Any) -> Worker:
        return Worker(self.dispatcher, **options)


@pytest.fixture
async def harness(db: str) -> AsyncIterator[Harness]:
    harness = Harness()
    yield harness
    await harness.completions.stop()


# --- through the whole service ------------------------------------------------------------------

async def test_a_push_left_by_a_crash_is_processed_on_recovery(client):
    row = await crashed(oa_fields(MsgType="event", Event="subscribe", EventKey="qrscene_booth1",
                                  Ticket="T"), scene="booth1")
    assert await client.app[keys.WORKER].recover() == 1
    done = await eventually(lambda: processed(row.id))
    identity = await Identity.get(kind=IdentityKind.OA_OPENID, value=OPENID)
    assert done.prospect_id == identity.prospect_id  # type: ignore[attr-defined]
    assert done.attempts == 1 and done.claimed_until is None
    assert await client.app[keys.WORKER].recover() == 0  # done is done


async def test_a_push_still_in_flight_is_left_alone(client):
    await crashed(oa_fields(MsgType="event", Event="subscribe"), ago=1)
    assert await client.app[keys.WORKER].recover() == 0
    assert await Interaction.filter(attempts=0, processed_at=None).count() == 1


# --- claims -------------------------------------------------------------------------------------

async def test_two_workers_never_take_the_same_push(harness):
    harness.delay = 0.05
    rows = [await crashed(oa_fields(MsgType="event", Event="subscribe",
                                    FromUserName=f"o{i:027d}")) for i in range(6)]
    first, second = harness.worker(), harness.worker()
    claimed = await asyncio.gather(first.recover(), second.recover())
    assert sum(claimed) == 6
    assert sorted(harness.calls) == sorted(r.id for r in rows)  # each exactly once
    for r in rows:
        await eventually(lambda r=r: processed(r.id))
    assert await Interaction.filter(attempts=1).count() == 6


async def test_a_claimed_push_is_not_taken(harness):
    row = await crashed(oa_fields(MsgType="event", Event="subscribe"),
                        claimed_until=datetime.now(UTC) + timedelta(seconds=30), attempts=1)
    assert await harness.worker().recover() == 0
    assert harness.calls == []
    await Interaction.filter(id=row.id).update(
        claimed_until=datetime.now(UTC) - timedelta(seconds=1))
    assert await harness.worker().recover() == 1  # an expired claim is free again
    assert harness.calls == [row.id]


async def test_a_failing_handler_counts_attempts_and_backs_off(harness):
    harness.fail = True
    row = await crashed(oa_fields(MsgType="event", Event="subscribe"))
    worker = harness.worker()
    before = datetime.now(UTC)
    assert await worker.recover() == 1
    failed = await Interaction.get(id=row.id)
    assert failed.attempts == 1 and failed.processed_at is None
    first_lease = failed.claimed_until - before
    assert timedelta(seconds=LEASE - 5) < first_lease < timedelta(seconds=LEASE + 5)
    assert await worker.recover() == 0  # backing off
    assert harness.calls == [row.id]

    await Interaction.filter(id=row.id).update(claimed_until=datetime.now(UTC))
    before = datetime.now(UTC)
    assert await worker.recover() == 1
    failed = await Interaction.get(id=row.id)
    assert failed.attempts == 2
    assert failed.claimed_until - before > timedelta(seconds=2 * LEASE - 5)  # doubled

    harness.fail = False
    await Interaction.filter(id=row.id).update(claimed_until=None)
    assert await worker.recover() == 1
    done = await eventually(lambda: processed(row.id))
    assert done.attempts == 3


async def test_it_gives_up_after_max_attempts(harness):
    await crashed(oa_fields(MsgType="event", Event="subscribe"), attempts=MAX_ATTEMPTS)
    assert await harness.worker().recover() == 0
    assert harness.calls == []


async def test_the_background_loop_recovers(harness):
    row = await crashed(oa_fields(MsgType="event", Event="subscribe"), ago=0)
    worker = harness.worker(recovery_after=0.0, interval=0.02)
    worker.start()
    try:
        await eventually(lambda: processed(row.id))
    finally:
        await worker.stop()
    assert harness.calls == [row.id]


async def test_the_loop_survives_a_failing_round(harness, monkeypatch):
    worker = harness.worker(recovery_after=0.0, interval=0.01)
    rounds = 0
    real = worker.recover

    async def flaky(limit: int = 100) -> int:
        nonlocal rounds
        rounds += 1
        if rounds == 1:
            raise ConnectionError("database went away")
        return await real(limit)

    monkeypatch.setattr(worker, "recover", flaky)
    row = await crashed(oa_fields(MsgType="event", Event="subscribe"), ago=0)
    worker.start()
    try:
        await eventually(lambda: processed(row.id))
    finally:
        await worker.stop()
    assert rounds >= 2
