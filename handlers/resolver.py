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
        async with in_transaction() as tx:
            found = await self._existing(tx, list(sealed))
            missing = [key for key in sealed if key not in found]
            if missing:
                found.update(await self._create(tx, missing, sealed))
        return [found[key] for key, _ in items]

    @staticmethod
    async def _existing(tx: Any, keys: list[Key]) -> dict[Key, int]:
        by_kind: dict[str, list[str]] = defaultdict(list)
        for kind, value in keys:
            by_kind[kind].append(value)
        found: dict[Key, int] = {}
        for kind, values in by_kind.items():
            rows = await Identity.filter(kind=kind, value__in=values).using_db(tx).values_list(
                "value", "prospect_id", "prospect__merged_into_id")
            found.update({(kind, value): merged or prospect_id
                          for value, prospect_id, merged in rows})
        return found

    @staticmethod
    async def _create(tx: Any, keys: list[Key], sealed: dict[Key, str | None]) -> dict[Key, int]:
        postgres = connections.get("default").capabilities.dialect == "postgres"
        now = datetime.now(UTC)
        stamp: Any = now if postgres else now.isoformat(" ")
        prospect_table, identity_table = Prospect._meta.db_table, Identity._meta.db_table
        values: list[Any] = []
        for _ in keys:
            values += ["[]", 0, 0, stamp, stamp]
        rows = await tx.execute_query_dict(
            f'INSERT INTO "{prospect_table}" ("tags","profile_score","behavior_score",'
            f'"created_at","updated_at") VALUES '
            f'{placeholders(postgres, len(keys), 5, {0: "::jsonb"})} RETURNING "id"', values)
        new_ids = [int(r["id"]) for r in rows]
        values = []
        for key, prospect_id in zip(keys, new_ids, strict=True):
            values += [key[0], key[1], sealed[key], prospect_id, stamp]
        claimed = await tx.execute_query_dict(
            f'INSERT INTO "{identity_table}" ("kind","value","sealed","prospect_id","created_at")'
            f" VALUES {placeholders(postgres, len(keys), 5)}"
            f' ON CONFLICT ("kind","value") DO NOTHING RETURNING "kind","value","prospect_id"',
            values)
        won = {(r["kind"], r["value"]): int(r["prospect_id"]) for r in claimed}
        lost = [key for key in keys if key not in won]
        if lost:  # another process created these people first: use theirs, drop ours
            orphans = [pid for key, pid in zip(keys, new_ids, strict=True) if key not in won]
            await Prospect.filter(id__in=orphans).using_db(tx).delete()
            won.update(await IdentityResolver._existing(tx, lost))
        return won
