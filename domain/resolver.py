"""Identity → prospect for many concurrent pushes at once.

A burst of scans at a booth brings many people we have never seen. Creating each one in a
transaction of its own costs a commit per person; here concurrent requests share one SELECT,
one INSERT of new prospects, one INSERT of their identities and one commit. The unique
constraint on (kind, value) still decides races between processes: a prospect created for an
identity another process claimed first is deleted again, and the winner's id is used.

A new prospect may start with what the code they came through gives (a `Seed`: its tags,
first code, partner and salesperson), so that a new follower at a booth is created attributed
in the same statement; a person known already is attributed by domain.attribution instead.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tortoise import connections
from tortoise.transactions import in_transaction

from bot.intake import Batcher, placeholders
from models import Identity, Prospect

Key = tuple[str, str]  # (kind, stored value)


@dataclass(frozen=True)
class Seed:
    """What a new prospect starts with: the attribution of the code they came through."""

    tags: tuple[str, ...] = ()
    first_code_id: int | None = None
    partner_id: int | None = None
    owner_id: int | None = None


BARE = Seed()


class IdentityResolver(Batcher):
    """`await resolve((kind, value), sealed, seed)` → (the prospect id, whether it was created
    now with `seed`)."""

    def __init__(self, max_batch: int = 500) -> None:
        super().__init__("identities", max_batch)

    async def resolve(self, key: Key, sealed: str | None = None,
                      seed: Seed = BARE) -> tuple[int, bool]:
        result: tuple[int, bool] = await self.submit((key, sealed, seed))
        return result

    async def flush(self, items: list[tuple[Key, str | None, Seed]]) -> list[tuple[int, bool]]:
        first: dict[Key, tuple[str | None, Seed]] = {}
        for key, secret, seed in items:
            first.setdefault(key, (secret, seed))
        found = await self._existing(list(first))
        missing = [key for key in first if key not in found]
        created: set[Key] = set()
        if missing:
            made, created = await self._create(missing, first)
            found.update(made)
        results: list[tuple[int, bool]] = []
        for key, _, _ in items:  # only the first of a key's items in the batch made it
            results.append((found[key], key in created))
            created.discard(key)
        return results

    @staticmethod
    async def _existing(keys: list[Key]) -> dict[Key, int]:
        """The prospects (after a merge, the one they were merged into) of known identities."""
        conn = connections.get("default")
        if conn.capabilities.dialect == "postgres":
            rows = await conn.execute_query_dict(
                SELECT_PG, [[kind for kind, _ in keys], [value for _, value in keys]])
            return {(r["kind"], r["value"]): int(r["prospect_id"]) for r in rows}
        by_kind: dict[str, list[str]] = defaultdict(list)
        for kind, value in keys:
            by_kind[kind].append(value)
        found: dict[Key, int] = {}
        for kind, values in by_kind.items():
            rows = await Identity.filter(kind=kind, value__in=values).values_list(
                "value", "prospect_id", "prospect__merged_into_id")
            found.update({(kind, value): merged or prospect_id
                          for value, prospect_id, merged in rows})
        return found

    @staticmethod
    async def _create(keys: list[Key], first: dict[Key, tuple[str | None, Seed]]
                      ) -> tuple[dict[Key, int], set[Key]]:
        """A new prospect for each identity nobody holds yet, started from its seed; for an
        identity another process claimed first, the winner's prospect. (All, those created.)"""
        conn = connections.get("default")
        now = datetime.now(UTC)
        seeds = [first[key][1] for key in keys]
        if conn.capabilities.dialect == "postgres":
            rows = await conn.execute_query_dict(CLAIM_PG, [
                [kind for kind, _ in keys], [value for _, value in keys],
                [first[key][0] for key in keys], now,
                [_tags(seed) for seed in seeds], [seed.first_code_id for seed in seeds],
                [seed.partner_id for seed in seeds], [seed.owner_id for seed in seeds]])
            won = {(r["kind"], r["value"]): int(r["prospect_id"]) for r in rows}
        else:
            async with in_transaction() as tx:
                won = await IdentityResolver._create_sqlite(tx, keys, first, now)
        created = set(won)
        lost = [key for key in keys if key not in won]
        if lost:  # another process created these people first: theirs are the ones
            won.update(await IdentityResolver._existing(lost))
        return won, created

    @staticmethod
    async def _create_sqlite(tx: Any, keys: list[Key], first: dict[Key, tuple[str | None, Seed]],
                             now: datetime) -> dict[Key, int]:
        prospect_table, identity_table = Prospect._meta.db_table, Identity._meta.db_table
        stamp = now.isoformat(" ")
        values: list[Any] = []
        for key in keys:
            seed = first[key][1]
            values += [_tags(seed), seed.first_code_id, seed.partner_id, seed.owner_id,
                       stamp if seed.owner_id is not None else None, 0, 0, stamp, stamp]
        rows = await tx.execute_query_dict(
            f'INSERT INTO "{prospect_table}" ("tags","first_code_id","partner_id","owner_id",'
            f'"owner_assigned_at","profile_score","behavior_score","created_at","updated_at") '
            f'VALUES {placeholders(len(keys), 9)} RETURNING "id"', values)
        new_ids = [int(r["id"]) for r in rows]
        values = []
        for key, prospect_id in zip(keys, new_ids, strict=True):
            values += [key[0], key[1], first[key][0], prospect_id, stamp]
        claimed = await tx.execute_query_dict(
            f'INSERT INTO "{identity_table}" ("kind","value","sealed","prospect_id","created_at")'
            f" VALUES {placeholders(len(keys), 5)}"
            f' ON CONFLICT ("kind","value") DO NOTHING RETURNING "kind","value","prospect_id"',
            values)
        won = {(r["kind"], r["value"]): int(r["prospect_id"]) for r in claimed}
        orphans = [pid for key, pid in zip(keys, new_ids, strict=True) if key not in won]
        if orphans:
            await Prospect.filter(id__in=orphans).using_db(tx).delete()
        return won


def _tags(seed: Seed) -> str:
    return json.dumps(list(seed.tags), ensure_ascii=False)


# PostgreSQL: fixed statement texts (prepared once per connection) taking the keys as arrays.
SELECT_PG = (
    'SELECT i."kind", i."value", COALESCE(p."merged_into_id", i."prospect_id") AS "prospect_id" '
    'FROM unnest($1::text[], $2::text[]) AS v(kind, value) '
    'JOIN "identity" i ON i."kind" = v.kind AND i."value" = v.value '
    'JOIN "prospect" p ON p."id" = i."prospect_id"')
# One statement, so no transaction: each identity takes a prospect id from the sequence, the
# identities that nobody holds yet are inserted, and prospects are created for those alone (the
# foreign key is checked at the end of the statement). A lost race leaves no orphan prospect.
CLAIM_PG = (
    "WITH v AS (SELECT kind, value, sealed, tags, fc, pa, o, "
    """nextval(pg_get_serial_sequence('"prospect"', 'id')) AS pid """
    "FROM unnest($1::text[], $2::text[], $3::text[], $5::text[], $6::int[], $7::int[], "
    "$8::int[]) AS v(kind, value, sealed, tags, fc, pa, o)), "
    'claimed AS (INSERT INTO "identity" ("kind","value","sealed","prospect_id","created_at") '
    'SELECT kind, value, sealed, pid, $4 FROM v ON CONFLICT ("kind","value") DO NOTHING '
    'RETURNING "kind","value","prospect_id"), '
    'created AS (INSERT INTO "prospect" ("id","tags","first_code_id","partner_id","owner_id",'
    '"owner_assigned_at","profile_score","behavior_score","created_at","updated_at") '
    'SELECT c."prospect_id", v.tags::jsonb, v.fc, v.pa, v.o, '
    "CASE WHEN v.o IS NOT NULL THEN $4 END, 0, 0, $4, $4 "
    'FROM claimed c JOIN v ON v.pid = c."prospect_id") '
    'SELECT "kind","value","prospect_id" FROM claimed')
