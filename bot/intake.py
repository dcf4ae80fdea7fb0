"""Storing pushes durably, fast: a group commit.

Every request waits for the commit of its own row, but concurrent requests share one INSERT and one
commit. The unique constraint on (source, dedup_key) is the guard against WeChat's retries:
`ON CONFLICT DO NOTHING RETURNING` tells which rows are new. Marking interactions processed is
batched the same way; a mark lost to a crash only means the push is processed again
(handlers are idempotent).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tortoise import connections
from tortoise.transactions import in_transaction

from bot.errors import BadRequest
from bot.faults import as_caller_error, is_outage
from models import Interaction

log = logging.getLogger(__name__)
COLUMNS = ("source", "kind", "dedup_key", "actor", "scene", "payload", "received_at",
           "processed_at", "attempts")


@dataclass
class Row:
    source: str
    kind: str
    dedup_key: str
    actor: str | None
    scene: str | None
    payload: dict[str, Any]
    received_at: datetime
    processed_at: datetime | None = None  # set for a push no handler acts on: nothing left to do
    payload_json: str = ""  # set by `check`, on the request's own task


# The columns' lengths (PostgreSQL refuses a longer value, and would fail the whole batch).
LIMITS = {"source": 8, "kind": 64, "dedup_key": 191, "actor": 128, "scene": 128}
MAX_DEPTH = 32


def check(row: Row) -> None:
    """Refuses, with a 400, a row that the database could not store: one bad row must never
    reach the shared INSERT and fail its neighbours."""
    for name, limit in LIMITS.items():
        value = getattr(row, name)
        if value is not None and (not isinstance(value, str) or len(value) > limit
                                  or not _storable(value)):
            raise BadRequest(f"`{name}` must be text of at most {limit} characters",
                             code="unstorable_value")
    payload = row.payload
    flat = all(value is None or type(value) is str for value in payload.values())
    problem = None if flat else _unstorable(payload, 0)
    if problem is None:
        try:
            row.payload_json = _json(payload)
        except (ValueError, RecursionError):  # NaN or ∞ (allow_nan=False), or too deep
            problem = "holds what JSON cannot write"
    if problem is None and flat and ("\\u0000" in row.payload_json
                                     or not _storable(row.payload_json)):
        # a flat payload's JSON shows a surrogate as itself and a NUL as \u0000: look closer
        problem = _unstorable(payload, 0)
    if problem:
        raise BadRequest(f"the payload {problem}", code="unstorable_value")


def _storable(text: str) -> bool:
    """Text PostgreSQL and SQLite both keep: no NUL, nothing UTF-8 cannot encode."""
    if "\x00" in text:
        return False
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


def _unstorable(value: Any, depth: int) -> str | None:
    if isinstance(value, str):
        return None if _storable(value) else "holds text that cannot be stored (NUL, surrogate)"
    if value is None or isinstance(value, bool | int):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else "holds a number JSON cannot write (NaN, ∞)"
    if depth >= MAX_DEPTH:
        return f"is nested deeper than {MAX_DEPTH} levels"
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or not _storable(key):
                return "holds a name that cannot be stored"
            if problem := _unstorable(item, depth + 1):
                return problem
        return None
    if isinstance(value, list):
        for item in value:
            if problem := _unstorable(item, depth + 1):
                return problem
        return None
    return f"holds a {type(value).__name__}"


@dataclass
class Stored:
    interaction_id: int | None  # None for a retry of a push stored before
    created: bool


class Batcher:
    """Runs `flush(items)` on everything queued while the previous flush ran.

    No task lives between bursts: the first submission after a quiet spell starts one, which
    drains the queue and ends.
    """

    def __init__(self, name: str, max_batch: int, linger: float = 0.0) -> None:
        self.name = name
        self.max_batch = max_batch
        self.linger = linger
        self._queue: list[tuple[Any, asyncio.Future[Any]]] = []
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def stop(self) -> None:
        """Waits until everything submitted so far is flushed."""
        while self._task is not None:
            await asyncio.shield(self._task)

    def submit(self, item: Any) -> asyncio.Future[Any]:
        loop = self._loop
        if self._task is None or loop is None:  # a burst begins; its task holds it on this loop
            loop = self._loop = asyncio.get_running_loop()
            self._task = loop.create_task(self._run(), name=f"batch-{self.name}")
        # The burst's loop, not asyncio.get_running_loop() per item: on Python 3.11 that is a
        # getpid() system call each time, and it showed up in the callback path's profile.
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.append((item, future))
        return future

    async def _run(self) -> None:
        try:
            await asyncio.sleep(self.linger)  # let what comes together (or in linger) queue
            while self._queue:
                await self._drain()
        finally:
            self._task = None

    async def _drain(self) -> None:
        batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch:]
        try:
            results = await self.flush([item for item, _ in batch])
        except Exception as exc:
            if len(batch) == 1 or is_outage(exc):  # every waiter learns of it; the loop goes on
                for _, future in batch:
                    if not future.done():
                        future.set_exception(as_caller_error(exc) or exc)
                return
            # One bad item must not fail its neighbours: each goes again on its own, and only
            # the one at fault fails.
            log.warning("%s: a batch of %d failed (%s: %s); retrying its items one by one",
                        self.name, len(batch), type(exc).__name__, exc)
            for item, future in batch:
                try:
                    result = (await self.flush([item]))[0]
                except Exception as one:
                    if not future.done():
                        future.set_exception(as_caller_error(one) or one)
                else:
                    if not future.done():
                        future.set_result(result)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)

    async def flush(self, items: list[Any]) -> list[Any]:
        raise NotImplementedError


class InteractionWriter(Batcher):
    def __init__(self, max_batch: int = 400) -> None:
        super().__init__("interactions", max_batch)

    async def save(self, row: Row) -> Stored:
        check(row)
        result: Stored = await self.submit(row)
        return result

    async def flush(self, items: list[Row]) -> list[Stored]:
        first: dict[tuple[str, str], Row] = {}
        for row in items:
            first.setdefault((row.source, row.dedup_key), row)
        inserted = await insert_new(list(first.values()))
        results: list[Stored] = []
        for row in items:
            key = (row.source, row.dedup_key)
            if first.get(key) is row and key in inserted:
                results.append(Stored(inserted[key], True))
            else:
                results.append(Stored(None, False))
        return results


# PostgreSQL: one statement text whatever the batch size, so it is parsed and planned once per
# connection; a single statement commits on its own, so no BEGIN/COMMIT round trips around it.
INSERT_PG = (
    'INSERT INTO "{table}" ("source","kind","dedup_key","actor","scene","payload","received_at",'
    '"processed_at","attempts") '
    "SELECT s, k, d, a, c, p::jsonb, r, f, 0 FROM unnest($1::text[], $2::text[], $3::text[], "
    "$4::text[], $5::text[], $6::text[], $7::timestamptz[], $8::timestamptz[]) "
    "AS v(s, k, d, a, c, p, r, f) "
    'ON CONFLICT ("source","dedup_key") DO NOTHING RETURNING "id","source","dedup_key"')


def _json(payload: dict[str, Any]) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


async def insert_new(rows: list[Row]) -> dict[tuple[str, str], int]:
    """One INSERT for all rows; returns the ids of those that were not there yet."""
    conn = connections.get("default")
    table = Interaction._meta.db_table
    if conn.capabilities.dialect == "postgres":
        columns = list(zip(*[(row.source, row.kind, row.dedup_key, row.actor, row.scene,
                               row.payload_json or _json(row.payload), row.received_at,
                               row.processed_at)
                              for row in rows], strict=True))
        returned = await conn.execute_query_dict(INSERT_PG.format(table=table), columns)
    else:
        values: list[Any] = []
        for row in rows:
            values.extend([row.source, row.kind, row.dedup_key, row.actor, row.scene,
                           row.payload_json or _json(row.payload),
                           row.received_at.isoformat(" "),
                           row.processed_at and row.processed_at.isoformat(" "), 0])
        names = ",".join(f'"{c}"' for c in COLUMNS)
        sql = (f'INSERT INTO "{table}" ({names})'
               f" VALUES {placeholders(len(rows), len(COLUMNS))}"
               f' ON CONFLICT ("source", "dedup_key") DO NOTHING'
               f' RETURNING "id", "source", "dedup_key"')
        async with in_transaction() as tx:
            returned = await tx.execute_query_dict(sql, values)
    return {(r["source"], r["dedup_key"]): int(r["id"]) for r in returned}


@dataclass
class Done:
    interaction_id: int
    prospect_id: int | None
    code_id: int | None
    finished: bool = True  # False: what the handler learned, while work after the reply goes on


class CompletionWriter(Batcher):
    """Marks interactions processed, with the prospect and code they were attributed to: one
    UPDATE for the whole batch, joined to its values.

    Marks linger for 100 ms and go in larger batches: in the booth benchmark, small UPDATEs
    racing the INSERTs of new pushes took 60 % of PostgreSQL's time, and lingering cut their cost
    fivefold. Only scoring waits for a mark (it reads the log the mark completes), after the
    reply: the linger is part of the speed to lead (bench/leads.py), well inside its second. A
    mark lost to a crash means the push is processed again."""

    def __init__(self, max_batch: int = 1000, linger: float = 0.1) -> None:
        super().__init__("completions", max_batch, linger)

    async def flush(self, items: list[Done]) -> list[None]:
        await mark(items)
        return [None] * len(items)


async def mark(items: list[Done]) -> None:
    """Writes the marks of `items` with one UPDATE, on the connection in use (a caller's
    transaction included: scoring records a burst's signals on their people this way)."""
    conn = connections.get("default")
    table = Interaction._meta.db_table
    now = datetime.now(UTC)
    marks = _one_per_interaction(items)
    if not marks:
        return
    if conn.capabilities.dialect == "postgres":
        columns = [list(c) for c in zip(*[(d.interaction_id, d.prospect_id, d.code_id,
                                           d.finished) for d in marks], strict=True)]
        await conn.execute_query(UPDATE_PG.format(table=table), [*columns, now])
        return
    values: list[Any] = []
    for done in marks:
        values += [done.interaction_id, done.prospect_id, done.code_id, done.finished]
    values.append(now.isoformat(" "))  # last: "?" count in text order
    async with in_transaction() as tx:
        await tx.execute_query(
            f"WITH v(id, p, c, f) AS (VALUES {placeholders(len(marks), 4)}) "
            f'UPDATE "{table}" SET '
            f'"processed_at" = CASE WHEN v.f THEN ? ELSE "{table}"."processed_at" END, '
            f'"claimed_until" = CASE WHEN v.f THEN NULL ELSE "{table}"."claimed_until" END, '
            f'"prospect_id" = COALESCE({SURVIVOR}, "{table}"."prospect_id"), '
            f'"code_id" = COALESCE(v.c, "{table}"."code_id") '
            f'FROM v WHERE "{table}"."id" = v.id', values)


def _one_per_interaction(items: list[Done]) -> list[Done]:
    """One mark per interaction (an UPDATE joined to its values takes one of several at
    random): finished if any is, with the last prospect and code learned."""
    marks: dict[int, Done] = {}
    for done in items:
        known = marks.get(done.interaction_id)
        marks[done.interaction_id] = done if known is None else Done(
            done.interaction_id, done.prospect_id or known.prospect_id,
            done.code_id or known.code_id, done.finished or known.finished)
    return list(marks.values())


# A prospect merged away while its signal was processed: the mark names the survivor.
SURVIVOR = ('(SELECT COALESCE(p."merged_into_id", p."id") FROM "prospect" p '
            'WHERE p."id" = v.p)')
UPDATE_PG = (
    'UPDATE "{table}" SET '
    '"processed_at" = CASE WHEN v.f THEN $5 ELSE "{table}"."processed_at" END, '
    '"claimed_until" = CASE WHEN v.f THEN NULL ELSE "{table}"."claimed_until" END, '
    '"prospect_id" = COALESCE(' + SURVIVOR + ', "{table}"."prospect_id"), '
    '"code_id" = COALESCE(v.c, "{table}"."code_id") '
    'FROM unnest($1::bigint[], $2::int[], $3::int[], $4::bool[]) AS v(id, p, c, f) '
    'WHERE "{table}"."id" = v.id')


def placeholders(rows: int, columns: int) -> str:
    """`(?,?),(?,?)`: the VALUES of a batch on SQLite (PostgreSQL takes arrays through unnest)."""
    return ",".join(["(" + ",".join("?" * columns) + ")"] * rows)
