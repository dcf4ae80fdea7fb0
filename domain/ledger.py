"""The scores' persistence on its measured hot path — `scores rebuild` over a million
interactions, a booth burst scored together — by hand on PostgreSQL, one dialect switch here;
the ORM elsewhere (bench/leads.py part b: the ORM's `bulk_create` of model objects and an UPDATE
per distinct score took most of a rebuild's time)."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from tortoise import connections

from models import Identity, IdentityKind, Interaction, Prospect, ScoreEntry

COLUMNS = ("id", "prospect_id", "kind", "code_id", "received_at", "payload")
PAYLOAD_KINDS = ("mp.read", "mp.action")  # the only ones whose payload scoring reads
PAYLOAD_KEYS = ("material_id", "progress", "seconds", "action")


class Entry(Protocol):
    rule: str
    kind: str
    points: int
    interaction_id: int | None
    at: datetime


class Scored(Protocol):
    profile: int
    behavior: int
    quadrant: str
    entries: Sequence[Entry]


def _postgres() -> bool:
    return bool(connections.get("default").capabilities.dialect == "postgres")


async def survivors(ids: list[int]) -> dict[int, int]:
    """Each id's survivor (a tombstone leads to it in one step)."""
    if _postgres():
        rows = await connections.get("default").execute_query_dict(SURVIVORS_PG, [list(set(ids))])
        found = {row["id"]: row["merged_into_id"] for row in rows}
    else:
        found = dict(await Prospect.filter(id__in=set(ids)).values_list("id", "merged_into_id"))
    return {pid: found.get(pid) or pid for pid in ids}


async def lock_people(ids: set[int]) -> dict[int, dict[str, Any]]:
    """The rows (id, quadrant and the profile scoring reads) of those of `ids` that are no
    tombstones, locked FOR NO KEY UPDATE in id order: call it inside a transaction."""
    if _postgres():
        rows = await connections.get("default").execute_query_dict(LOCK_PG, [list(ids)])
    else:  # SQLite: the transaction holds the only connection; there is nothing to lock
        rows = await Prospect.filter(id__in=ids, merged_into_id=None).order_by("id").values(
            *PERSON)
    return {row["id"]: row for row in rows}


async def families(survivors: list[int]) -> dict[int, list[int]]:
    """Each survivor's id and those of the records merged into it."""
    found: dict[int, list[int]] = {survivor: [survivor] for survivor in survivors}
    if _postgres():
        pairs = [(r["id"], r["merged_into_id"]) for r in await connections.get(
            "default").execute_query_dict(FAMILIES_PG, [survivors])]
    else:
        pairs = await Prospect.filter(merged_into_id__in=survivors).values_list(
            "id", "merged_into_id")
    for member, survivor in pairs:
        found[survivor].append(member)
    return found


async def with_phone(people: list[int]) -> set[int]:
    """Those of `people` that have a phone."""
    if _postgres():
        rows = await connections.get("default").execute_query_dict(PHONES_PG, [people])
        return {row["prospect_id"] for row in rows}
    return set(await Identity.filter(prospect_id__in=people, kind=IdentityKind.PHONE)
               .values_list("prospect_id", flat=True))


async def interactions(people: list[int], kinds: Sequence[str]) -> list[dict[str, Any]]:
    """The interactions of `people` of `kinds`, oldest first; a payload only where scoring
    reads one, and then only what it reads."""
    if not _postgres():
        return list(await Interaction.filter(prospect_id__in=people, kind__in=kinds)
                    .order_by("received_at", "id").values(*COLUMNS))
    rows = await connections.get("default").execute_query_dict(SELECT_PG, [
        people, list(kinds), list(PAYLOAD_KINDS)])
    for row in rows:
        row["payload"] = json.loads(row["payload"]) if row["payload"] is not None else {}
    return rows


async def replace(scores: dict[int, Scored], families: dict[int, list[int]],
                  now: datetime) -> None:
    """Each person's ledger replaced by their new entries, and their score and quadrant."""
    members = [member for survivor in scores for member in families[survivor]]
    entries = [(survivor, e) for survivor, score in scores.items() for e in score.entries]
    if not _postgres():
        await ScoreEntry.filter(prospect_id__in=members).delete()
        await ScoreEntry.bulk_create([
            ScoreEntry(prospect_id=survivor, rule=e.rule, kind=e.kind, points=e.points,
                       interaction_id=e.interaction_id, at=e.at)
            for survivor, e in entries], batch_size=2000)
        alike: dict[tuple[int, int, str], list[int]] = defaultdict(list)
        for survivor, score in scores.items():
            alike[(score.profile, score.behavior, score.quadrant)].append(survivor)
        for (profile, behavior, quadrant), ids in alike.items():
            await Prospect.filter(id__in=ids).update(profile_score=profile,
                                                     behavior_score=behavior,
                                                     quadrant=quadrant, scored_at=now)
        return
    conn = connections.get("default")
    await conn.execute_query(DELETE_PG, [members])
    if entries:
        await conn.execute_query(INSERT_PG, [
            [s for s, _ in entries], [e.rule for _, e in entries],
            [e.kind for _, e in entries], [e.points for _, e in entries],
            [e.interaction_id for _, e in entries], [e.at for _, e in entries]])
    await conn.execute_query(UPDATE_PG, [
        list(scores), [s.profile for s in scores.values()],
        [s.behavior for s in scores.values()], [s.quadrant for s in scores.values()], now])


PERSON = ("id", "quadrant", "name", "company", "title", "department", "industry",
          "company_size", "email")
SURVIVORS_PG = 'SELECT "id", "merged_into_id" FROM "prospect" WHERE "id" = ANY($1::int[])'
LOCK_PG = ("SELECT " + ", ".join(f'"{name}"' for name in PERSON) + ' FROM "prospect" '
           'WHERE "id" = ANY($1::int[]) AND "merged_into_id" IS NULL ORDER BY "id" '
           "FOR NO KEY UPDATE")
FAMILIES_PG = ('SELECT "id", "merged_into_id" FROM "prospect" '
               'WHERE "merged_into_id" = ANY($1::int[])')
PHONES_PG = ('SELECT DISTINCT "prospect_id" FROM "identity" '
             "WHERE \"prospect_id\" = ANY($1::int[]) AND \"kind\" = 'phone'")
SELECT_PG = (
    'SELECT "id", "prospect_id", "kind", "code_id", "received_at", '
    'CASE WHEN "kind" = ANY($3::text[]) THEN jsonb_build_object('
    + ", ".join(f"'{key}', \"payload\"->'{key}'" for key in PAYLOAD_KEYS)
    + ')::text END AS "payload" '
    'FROM "interaction" WHERE "prospect_id" = ANY($1::int[]) AND "kind" = ANY($2::text[]) '
    'ORDER BY "received_at", "id"')
DELETE_PG = 'DELETE FROM "score_entry" WHERE "prospect_id" = ANY($1::int[])'
INSERT_PG = (
    'INSERT INTO "score_entry" ("prospect_id", "rule", "kind", "points", "interaction_id", "at") '
    'SELECT * FROM unnest($1::int[], $2::text[], $3::text[], $4::int[], $5::bigint[], '
    '$6::timestamptz[])')
UPDATE_PG = (
    'UPDATE "prospect" AS p SET "profile_score" = v.pf, "behavior_score" = v.bh, '
    '"quadrant" = v.q, "scored_at" = $5 '
    'FROM unnest($1::int[], $2::int[], $3::int[], $4::text[]) AS v(id, pf, bh, q) '
    'WHERE p."id" = v.id')
