"""Identity → prospect for many concurrent pushes at once.

A burst of scans at a booth brings many people we have never seen. Creating each one in a
transaction of its own costs a commit per person; here concurrent requests share one SELECT,
one INSERT of new prospects, one INSERT of their identities and one commit. The unique
constraint on (kind, value) still decides races between processes: a prospect created for an
identity another process claimed first is deleted again, and the winner's id is used.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from tortoise import connections
from tortoise.transactions import in_transaction

from bot.intake import Batcher, placeholders
from models import Identity, Prospect

Key = tuple[str, str]  # (kind, stored value)


class IdentityResolver(Batcher):
    """`await resolve((kind, value), sealed)` → the prospect id, created when new."""

    def __init__(self, max_batch: int = 500) -> None:
        super().__init__("identities", max_batch)

    async def resolve(self, key: Key, sealed: str | None = None) -> int:
        result: int = await self.submit((key, sealed))
        return result

    async def flush(self, items: list[tuple[Key, str | None]]) -> list[int]:
        sealed = {key: secret for key, secret in items}
        found = await self._existing(list(sealed))
        missing = [key for key in sealed if key not in found]
        if missing:
            found.update(await self._create(missing, sealed))
        return [found[key] for key, _ in items]

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
    async def _create(keys: list[Key], sealed: dict[Key, str | None]) -> dict[Key, int]:
        """A new prospect for each identity nobody holds yet; for an identity another process
        claimed first, the winner's prospect."""
        conn = connections.get("default")
        now = datetime.now(UTC)
        if conn.capabilities.dialect == "postgres":
            rows = await conn.execute_query_dict(CLAIM_PG, [
                [kind for kind, _ in keys], [value for _, value in keys],
                [sealed[key] for key in keys], now])
            won = {(r["kind"], r["value"]): int(r["prospect_id"]) for r in rows}
        else:
            async with in_transaction() as tx:
                won = await IdentityResolver._create_sqlite(tx, keys, sealed, now.isoformat(" "))
        lost = [key for key in keys if key not in won]
        if lost:  # another process created these people first: theirs are the ones
            won.update(await IdentityResolver._existing(lost))
        return won

    @staticmethod
    async def _create_sqlite(tx: Any, keys: list[Key], sealed: dict[Key, str | None],
                             stamp: str) -> dict[Key, int]:
        prospect_table, identity_table = Prospect._meta.db_table, Identity._meta.db_table
        values: list[Any] = []
        for _ in keys:
            values += ["[]", 0, 0, stamp, stamp]
        rows = await tx.execute_query_dict(
            f'INSERT INTO "{prospect_table}" ("tags","profile_score","behavior_score",'
            f'"created_at","updated_at") VALUES {placeholders(len(keys), 5)} '
            f'RETURNING "id"', values)
        new_ids = [int(r["id"]) for r in rows]
        values = []
        for key, prospect_id in zip(keys, new_ids, strict=True):
            values += [key[0], key[1], sealed[key], prospect_id, stamp]
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
    "WITH v AS (SELECT kind, value, sealed, "
    """nextval(pg_get_serial_sequence('"prospect"', 'id')) AS pid """
    "FROM unnest($1::text[], $2::text[], $3::text[]) AS v(kind, value, sealed)), "
    'claimed AS (INSERT INTO "identity" ("kind","value","sealed","prospect_id","created_at") '
    'SELECT kind, value, sealed, pid, $4 FROM v ON CONFLICT ("kind","value") DO NOTHING '
    'RETURNING "kind","value","prospect_id"), '
    'created AS (INSERT INTO "prospect" ("id","tags","profile_score","behavior_score",'
    '"created_at","updated_at") SELECT "prospect_id", \'[]\'::jsonb, 0, 0, $4, $4 FROM claimed) '
    'SELECT "kind","value","prospect_id" FROM claimed')
