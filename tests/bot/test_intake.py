"""bot.intake: the group commit, and the database unique constraint as the guard against retries."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from tortoise.exceptions import IntegrityError

import bot.intake
from bot.intake import CompletionWriter, Done, InteractionWriter, Row, insert_new
from models import Interaction, Prospect


def row(key: str, source: str = "oa", **changes: object) -> Row:
    values: dict[str, object] = dict(
        source=source, kind="event.subscribe", dedup_key=key, actor="o1", scene=None,
        payload={"FromUserName": "o1", "Content": "你好", "n": 1}, received_at=datetime.now(UTC))
    values.update(changes)
    return Row(**values)  # type: ignore[arg-type]


@pytest.fixture
async def writer(db: str) -> AsyncIterator[InteractionWriter]:
    writer = InteractionWriter()
    yield writer
    await writer.stop()


@pytest.fixture
def count_flushes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sizes of the INSERTs the writer runs."""
    sizes: list[int] = []
    real = bot.intake.insert_new

    async def counting(rows: list[Row]) -> dict[tuple[str, str], int]:
        sizes.append(len(rows))
        return await real(rows)

    monkeypatch.setattr(bot.intake, "insert_new", counting)
    return sizes


# --- insert_new and the constraint --------------------------------------------------------------

async def test_insert_new_returns_ids_of_new_rows_only(db):
    first = await insert_new([row("a"), row("b")])
    assert set(first) == {("oa", "a"), ("oa", "b")}
    again = await insert_new([row("b"), row("c")])
    assert set(again) == {("oa", "c")}
    assert await Interaction.all().count() == 3
    assert await Interaction.get(dedup_key="a").values_list("id", flat=True) == first[("oa", "a")]


async def test_duplicates_inside_one_insert_are_stored_once(db):
    ids = await insert_new([row("a"), row("a"), row("a", actor="other"), row("b")])
    assert set(ids) == {("oa", "a"), ("oa", "b")}
    assert await Interaction.filter(dedup_key="a").count() == 1
    assert await Interaction.get(dedup_key="a").values_list("actor", flat=True) == "o1"


async def test_the_key_is_per_source(db):
    ids = await insert_new([row("k", "oa"), row("k", "wecom"), row("k", "mp")])
    assert len(ids) == 3 and len(set(ids.values())) == 3


async def test_the_database_itself_refuses_a_duplicate(db):
    """The guard is the unique constraint, not any cache in front of it."""
    await Interaction.create(source="oa", kind="k", dedup_key="dup", payload={},
                             received_at=datetime.now(UTC))
    with pytest.raises(IntegrityError):
        await Interaction.create(source="oa", kind="k", dedup_key="dup", payload={},
                                 received_at=datetime.now(UTC))
    assert await Interaction.all().count() == 1


async def test_rows_read_back_as_written(db):
    when = datetime(2024, 4, 26, 7, 0, 45, 123000, tzinfo=UTC)
    await insert_new([row("a", received_at=when, scene="booth1",
                          payload={"Content": "我是中文", "nested": {"x": [1, 2]}})])
    stored = await Interaction.get(dedup_key="a")
    assert stored.payload == {"Content": "我是中文", "nested": {"x": [1, 2]}}
    assert stored.received_at == when
    assert (stored.scene, stored.attempts, stored.processed_at) == ("booth1", 0, None)


async def test_a_row_can_be_stored_already_processed(db):
    when = datetime(2024, 4, 26, 7, 0, 45, tzinfo=UTC)
    await insert_new([row("done", received_at=when, processed_at=when), row("todo")])
    done, todo = await Interaction.get(dedup_key="done"), await Interaction.get(dedup_key="todo")
    assert done.processed_at == when and todo.processed_at is None


async def test_a_large_batch_is_one_statement(db):
    rows = [row(f"k{i}") for i in range(300)]  # 2400 parameters in one statement
    assert len(await insert_new(rows)) == 300


# --- the group commit ---------------------------------------------------------------------------

async def test_concurrent_saves_share_inserts_and_each_gets_its_own_id(writer, count_flushes):
    results = await asyncio.gather(*(writer.save(row(f"k{i}")) for i in range(50)))
    assert all(r.created for r in results)
    ids = [r.interaction_id for r in results]
    assert len(set(ids)) == 50 and None not in ids
    assert sum(count_flushes) == 50 and len(count_flushes) < 50
    for i, interaction_id in enumerate(ids):  # each caller got the id of its own row
        assert (await Interaction.get(id=interaction_id)).dedup_key == f"k{i}"


async def test_duplicates_in_one_batch_and_across_batches(writer, count_flushes):
    results = await asyncio.gather(*(writer.save(row(f"k{i % 5}")) for i in range(20)))
    assert [r.created for r in results] == [True] * 5 + [False] * 15
    assert all(r.interaction_id is None for r in results[5:])
    assert len(count_flushes) == 1 and count_flushes[0] == 5  # duplicates never reach the SQL
    later = await asyncio.gather(*(writer.save(row(f"k{i}")) for i in range(3, 8)))
    assert [r.created for r in later] == [False, False, True, True, True]
    assert await Interaction.all().count() == 8


async def test_max_batch_splits_a_burst(db, count_flushes):
    writer = InteractionWriter(max_batch=7)
    try:
        results = await asyncio.gather(*(writer.save(row(f"k{i}")) for i in range(30)))
    finally:
        await writer.stop()
    assert all(r.created for r in results)
    assert max(count_flushes) <= 7 and sum(count_flushes) == 30


async def test_a_failing_batch_fails_every_waiter_and_the_next_one_works(writer, monkeypatch):
    real = bot.intake.insert_new
    calls = 0

    async def fail_once(rows: list[Row]) -> dict[tuple[str, str], int]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("database went away")
        return await real(rows)

    monkeypatch.setattr(bot.intake, "insert_new", fail_once)
    results = await asyncio.gather(*(writer.save(row(f"k{i}")) for i in range(10)),
                                   return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)
    assert await Interaction.all().count() == 0
    retried = await writer.save(row("k1"))
    assert retried.created and await Interaction.all().count() == 1


async def test_stop_flushes_what_is_queued(db):
    writer = InteractionWriter()
    futures = [writer.submit(row(f"k{i}")) for i in range(5)]
    await writer.stop()
    assert all(f.done() and f.result().created for f in futures)
    assert await Interaction.all().count() == 5


# --- marking interactions processed -------------------------------------------------------------

async def test_completions_mark_processed_with_prospect_and_clear_the_claim(db):
    ids = await insert_new([row("a"), row("b"), row("c")])
    a, b, c = ids[("oa", "a")], ids[("oa", "b")], ids[("oa", "c")]
    await Interaction.filter(id=a).update(claimed_until=datetime.now(UTC) + timedelta(minutes=1))
    prospect = await Prospect.create()
    completions = CompletionWriter()
    try:
        await asyncio.gather(completions.submit(Done(a, prospect.id, None)),
                             completions.submit(Done(b, None, None)))
    finally:
        await completions.stop()
    first, second, untouched = [await Interaction.get(id=i) for i in (a, b, c)]
    assert first.processed_at is not None and first.claimed_until is None
    assert first.prospect_id == prospect.id  # type: ignore[attr-defined]
    assert second.processed_at is not None and second.prospect_id is None  # type: ignore[attr-defined]
    assert untouched.processed_at is None


async def test_two_writers_racing_store_one_row(db):
    """Two processes' writers: only the database can tell them the row exists."""
    first, second = InteractionWriter(), InteractionWriter()
    try:
        results = await asyncio.gather(*(w.save(row(f"k{i % 4}")) for i in range(16)
                                         for w in (first, second)))
    finally:
        await first.stop()
        await second.stop()
    assert sum(r.created for r in results) == 4
    assert await Interaction.all().count() == 4


async def test_completions_linger_to_share_one_update(db, monkeypatch):
    ids = await insert_new([row(f"l{i}") for i in range(6)])
    completions = CompletionWriter(linger=0.05)
    flushed: list[int] = []
    real = completions.flush

    async def counting(items):  # type: ignore[no-untyped-def]
        flushed.append(len(items))
        return await real(items)

    monkeypatch.setattr(completions, "flush", counting)
    try:
        for interaction_id in ids.values():  # one at a time, as handlers finish
            completions.submit(Done(interaction_id, None, None))
            await asyncio.sleep(0.001)
        await completions.stop()
    finally:
        await completions.stop()
    assert flushed == [6]
    assert await Interaction.filter(processed_at__isnull=False).count() == 6
