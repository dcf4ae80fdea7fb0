"""What a scan of a code does to the prospect: tags, the owner (first touch), the partner.

The first touch decides the owner; a later code adds its tags and a touch, not a new owner,
unless the owner is still unset. A booth code without a salesperson hands its prospects to the
booth team in turns, each member up to a daily cap, and to a backup member when all are full.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from tortoise import connections
from tortoise.functions import Count, Max
from tortoise.transactions import in_transaction

from bot.cache import TimedCache
from bot.intake import Batcher, placeholders
from bot.store import PREFIX, Store
from domain.identity import Prospects
from domain.merging import current, load, locked
from domain.resolver import Seed
from models import Code, IdentityKind, Material, Partner, Prospect, Salesperson

log = logging.getLogger(__name__)
CHINA = timezone(timedelta(hours=8))  # a sales day is a day in China
DEFAULT_WELCOME = "您好，欢迎关注！我们的顾问会尽快与您联系，您也可以直接在这里留言。"
DEFAULT_CONTACT_WELCOME = "您好，很高兴认识您！我是您的专属顾问，有任何问题随时联系我。"


def day_start(now: datetime | None = None) -> datetime:
    local = (now or datetime.now(UTC)).astimezone(CHINA)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


@dataclass(frozen=True)
class Touch:
    """A scan of `code` by a prospect (`member`: the WeCom userid WeCom chose for them)."""

    code: Code
    tags: list[str]
    prospect_id: int
    member: str | None = None


class Turns:
    """A booth team's members in turn order: under their daily cap, fewest assignments today,
    the longest since their last one, then by id; the backup member when everyone is full.
    `took` counts a turn given meanwhile, so a burst is dealt exactly as one by one."""

    def __init__(self, members: list[tuple[int, int, int, datetime]]) -> None:
        self.members = {mid: [cap, today, last] for mid, cap, today, last in members}

    def next(self, backup_id: int | None) -> int | None:
        best: tuple[int, datetime, int] | None = None
        for mid, (cap, today, last) in self.members.items():
            if today < cap and (best is None or (today, last, mid) < best):
                best = (today, last, mid)
        return best[2] if best is not None else backup_id

    def took(self, member_id: int, at: datetime) -> None:
        if (member := self.members.get(member_id)) is not None:
            member[1] += 1
            member[2] = at


class Attribution:
    def __init__(self, store: Store, code_ttl: float = 60.0) -> None:
        self.store = store
        # as long as scenes are cached (domain.scenes)
        self._codes: TimedCache[int, tuple[Code | None, list[str]]] = TimedCache(
            maxsize=10_000, ttl=code_ttl)
        self._touches = _Touches(self)

    async def code(self, code_id: int) -> tuple[Code | None, list[str]]:
        """The code and the tags a scan of it gives (a partner's or a material's code adds
        theirs), cached briefly: codes are created, rarely changed."""
        if (hit := self._codes.get(code_id)) is not None:
            return hit
        code = await Code.get_or_none(id=code_id)
        tags = list(code.tags) if code is not None else []
        if code is not None and code.partner_id is not None:  # type: ignore[attr-defined]
            partner = await Partner.get_or_none(id=code.partner_id)  # type: ignore[attr-defined]
            tags += partner.tags if partner else []
        if code is not None and code.material_id is not None:  # type: ignore[attr-defined]
            material = await Material.get_or_none(id=code.material_id)  # type: ignore[attr-defined]
            tags += material.tags if material else []
        self._codes[code_id] = (code, tags)
        return code, tags

    async def touch(self, code_id: int | None, prospect_id: int,
                    member: str | None = None) -> Code | None:
        """Applies a scan of code `code_id` by the prospect; returns the code. `member` is the
        WeCom userid the customer added through a team's contact way: WeCom chose them, so they
        own the prospect rather than whoever's turn it would be. Scans arriving together are
        applied together (see `_Touches`)."""
        if code_id is None:
            return None
        code, tags = await self.code(code_id)
        if code is None:
            return None
        await self._touches.submit(Touch(code, tags, prospect_id, member))
        return code

    async def arrive(self, prospects: Prospects, kind: IdentityKind, value: str,
                     code_id: int | None, member: str | None = None) -> int:
        """The prospect behind an identity, scanning code `code_id` (None: no code): one seen
        for the first time is created with the code's attribution in it (see Seed); one known
        already is touched. Either way the owner is dealt when the code leaves it to a team."""
        code, tags = (None, []) if code_id is None else await self.code(code_id)
        if code is None:
            return await prospects.resolve(kind, value)
        owner = code.salesperson_id  # type: ignore[attr-defined]
        prospect_id, created = await prospects.claim(kind, value, Seed(
            tuple(dict.fromkeys(tags)), code.id, code.partner_id, owner))  # type: ignore[attr-defined]
        if not created or owner is None and code.team:
            await self._touches.submit(Touch(code, tags, prospect_id, member))
        return prospect_id

    async def apply(self, touches: list[Touch]) -> None:
        """Applies scans, in order, as one: every change only adds (tags) or fills what is
        empty (first code, partner, owner), so prospects that already have it all take no lock
        and no write (a repeated scan); the rest are locked together, in id order, and written
        with one statement; then the owners of those still without one are dealt."""
        current_ = list(touches)  # each touch, pointed at the prospect it stands for now
        owned: set[int] = set()  # those that had an owner already: nothing to deal
        pending = list(range(len(touches)))
        for _ in range(ATTEMPTS):
            seen = await _rows([current_[i].prospect_id for i in pending])
            moved: dict[int, int] = {}  # index → the survivor its prospect was merged into
            needy: list[int] = []
            for i in pending:
                row = seen.get(current_[i].prospect_id)
                if row is not None and row[5] is not None:
                    moved[i] = row[5]
                    continue
                if row is None or row[3] is not None:
                    owned.add(i)  # (or gone: nothing to own)
                if row is not None and _needs(row, current_[i]):
                    needy.append(i)
            if needy:
                moved.update(await lock_rows({i: current_[i] for i in needy}))
            owned.difference_update(moved)  # their survivors are looked at afresh
            for i, survivor in moved.items():
                current_[i] = replace(current_[i], prospect_id=survivor)
            pending = sorted(moved)
            if not pending:
                break
        else:
            raise RuntimeError("prospects kept being merged while their scans were applied")
        dealing = [t for i, t in enumerate(current_) if i not in owned
                   and (t.code.salesperson_id is not None or t.code.team)]  # type: ignore[attr-defined]
        if dealing:
            await self.deal(dealing)

    async def deal(self, touches: list[Touch]) -> list[int | None]:
        """Owners for the prospects of `touches` that have none, by each code's rule: its
        salesperson; for a booth team, the member WeCom chose, else whose turn it is (under the
        team's lock, so processes take turns one after another). The owner each got."""
        owners: list[int | None] = [None] * len(touches)
        unowned = set(await _unowned([t.prospect_id for t in touches]))
        todo = [i for i, t in enumerate(touches) if t.prospect_id in unowned]
        chosen = await _members([touches[i] for i in todo])
        now = datetime.now(UTC)
        plain: list[tuple[int, int, int, datetime]] = []
        teams: dict[str, list[int]] = {}
        for i in todo:
            code = touches[i].code
            owner = code.salesperson_id or chosen.get(i)  # type: ignore[attr-defined]
            if owner is not None:
                plain.append((i, touches[i].prospect_id, owner, now))
            elif code.team:
                teams.setdefault(code.team, []).append(i)
        for i, owner in (await self._set_owners(plain)).items():
            owners[i] = owner
        for team, members in teams.items():
            async with self.store.lock(f"{PREFIX}lock:team:{team}", timeout=10, wait=10):
                turns = await self.turns(team)
                dealt: list[tuple[int, int, int, datetime]] = []
                full = False
                for i in members:
                    owner = turns.next(touches[i].code.backup_id)  # type: ignore[attr-defined]
                    if owner is None:
                        full = True
                        continue
                    at = now + timedelta(microseconds=len(dealt))  # one after another
                    turns.took(owner, at)
                    dealt.append((i, touches[i].prospect_id, owner, at))
                if full:
                    await self._team_full(team)
                for i, owner in (await self._set_owners(dealt)).items():
                    owners[i] = owner
        return owners

    async def _team_full(self, team: str) -> None:
        """Said once per team per sales day, by whichever process sees it first: the visitors
        stay unassigned (and listed as such) until a cap is raised or a backup is set."""
        day = day_start().astimezone(CHINA).date().isoformat()
        if await self.store.add(f"{PREFIX}team_full:{team}:{day}", "1", ttl=26 * 3600):
            log.warning("booth team %r is full today: every member is at their daily cap and "
                        "the code has no backup, so new visitors stay unassigned", team)

    def forget(self, code_id: int) -> None:
        """Drops a code from this process's cache after an edit (others hold theirs for at
        most `code_ttl` seconds)."""
        self._codes.pop(code_id, None)

    def forget_all(self) -> None:
        """After an edit that reaches many codes (a partner's tags)."""
        self._codes.clear()

    async def _set_owners(self, owners: list[tuple[int, int, int, datetime]]) -> dict[int, int]:
        """Sets each (index, prospect, owner, when) unless the prospect has an owner already,
        in one statement; one merged away meanwhile is given to its survivor. The index → owner
        of those set."""
        if not owners:
            return {}
        won = await _claim_owners([(pid, owner, at) for _, pid, owner, at in owners])
        given: dict[int, int] = {}
        for i, pid, owner, _ in owners:
            if pid in won:
                given[i] = owner
            elif (survivor := await self._set_owner(pid, owner)) is not None:
                given[i] = survivor
        return given

    async def _set_owner(self, prospect_id: int, owner: int | None) -> int | None:
        """Sets the owner unless one is set already (never on a merged-away record)."""
        if owner is None:
            return None
        for _ in range(3):
            won = await Prospect.filter(id=prospect_id, owner_id=None,
                                        merged_into_id=None).update(
                owner_id=owner, owner_assigned_at=datetime.now(UTC))
            if won:
                return owner
            survivor = await current(prospect_id)
            if survivor == prospect_id:
                return None  # someone else's turn came first
            prospect_id = survivor
        return None

    async def turns(self, team: str) -> Turns:
        """The team's active members with their caps, today's assignments and their last."""
        members = await Salesperson.filter(team=team, active=True).order_by("id").values_list(
            "id", "daily_cap")
        ids = [mid for mid, _ in members]
        today = dict(await Prospect.filter(owner_id__in=ids, owner_assigned_at__gte=day_start())
                     .annotate(n=Count("id")).group_by("owner_id").values_list("owner_id", "n"))
        last = dict(await Prospect.filter(owner_id__in=ids).exclude(owner_assigned_at=None)
                    .annotate(at=Max("owner_assigned_at")).group_by("owner_id")
                    .values_list("owner_id", "at"))
        return Turns([(mid, cap, today.get(mid, 0), _aware(last.get(mid)) or NEVER)
                      for mid, cap in members])

    async def next_in_team(self, team: str, backup_id: int | None) -> int | None:
        """The member whose turn it is (see `Turns`)."""
        return (await self.turns(team)).next(backup_id)


class _Touches(Batcher):
    """Scans arriving together, applied together (a booth burst)."""

    def __init__(self, attribution: Attribution, max_batch: int = 500) -> None:
        super().__init__("attribution", max_batch)
        self.attribution = attribution

    async def flush(self, items: list[Touch]) -> list[None]:
        await self.attribution.apply(items)
        return [None] * len(items)


NEVER = datetime.min.replace(tzinfo=UTC)
ATTEMPTS = 8
Row = tuple[list[str], int | None, int | None, int | None, datetime | None, int | None]


def _aware(at: datetime | None) -> datetime | None:
    return at if at is None or at.tzinfo is not None else at.replace(tzinfo=UTC)


async def _rows(ids: list[int], tx: Any = None, *, lock: bool = False) -> dict[int, Row]:
    """(tags, first code, partner, owner, owner since, merged into) of each prospect; with
    `lock`, the rows locked FOR NO KEY UPDATE in id order (inside `tx`). Read by hand on
    PostgreSQL: a booth burst's scans come in many small batches, and building the ORM's
    queries (and, locked, its model objects) took most of their time."""
    conn = tx or connections.get("default")
    if conn.capabilities.dialect == "postgres":
        rows = await conn.execute_query_dict(LOCK_PG if lock else ROWS_PG, [list(set(ids))])
        return {row["id"]: ([*json.loads(row["tags"] or "[]")], row["first_code_id"],
                            row["partner_id"], row["owner_id"], row["owner_assigned_at"],
                            row["merged_into_id"])
                for row in rows}
    # SQLite: a transaction holds the only connection; there is nothing to lock
    query = Prospect.filter(id__in=set(ids)).order_by("id")
    found = await (query.using_db(tx) if tx is not None else query).values_list(
        "id", "tags", "first_code_id", "partner_id", "owner_id", "owner_assigned_at",
        "merged_into_id")
    return {row[0]: ([*(row[1] or [])], *row[2:]) for row in found}  # type: ignore[misc]


def _needs(row: Row, touch: Touch) -> bool:
    tags, first_code, partner, owner, _, _ = row
    code = touch.code
    return (first_code is None or owner is None and code.salesperson_id is not None  # type: ignore[attr-defined]
            or partner is None and code.partner_id is not None  # type: ignore[attr-defined]
            or any(tag not in tags for tag in touch.tags))


async def lock_rows(touches: dict[int, Touch]) -> dict[int, int]:
    """Applies `touches` (in their order) to their prospects, locked (FOR NO KEY UPDATE, in id
    order, as merges take them) in one transaction and written with one statement. Those whose
    prospect was merged away before the lock are returned (index → survivor), to go again."""
    moved: dict[int, int] = {}
    now = datetime.now(UTC)
    async with in_transaction() as tx:
        people = await _rows([t.prospect_id for t in touches.values()], tx, lock=True)
        changed: dict[int, Row] = {}
        for i, touch in touches.items():
            row = people.get(touch.prospect_id)
            if row is None:
                continue  # erased meanwhile: nothing to attribute
            if row[5] is not None:  # merged into another
                moved[i] = row[5]
                continue
            applied = _applied(row, touch.code, touch.tags, now)
            if applied != row:
                people[touch.prospect_id] = changed[touch.prospect_id] = applied
        await _write(tx, changed)
    return moved


async def _write(tx: Any, people: dict[int, Row]) -> None:
    """Tags, first code, partner and owner of locked prospects, in one statement."""
    if not people:
        return
    rows = [(pid, json.dumps(tags, ensure_ascii=False), first, partner, owner, at)
            for pid, (tags, first, partner, owner, at, _) in people.items()]
    if tx.capabilities.dialect == "postgres":
        await tx.execute_query(WRITE_PG, [list(column) for column in zip(*rows, strict=True)])
        return
    values: list[Any] = []
    for pid, tags, first, partner, owner, at in rows:
        values += [pid, tags, first, partner, owner, at and at.isoformat(" ")]
    await tx.execute_query(
        f"WITH v(id, t, f, pa, o, at) AS (VALUES {placeholders(len(rows), 6)}) "
        'UPDATE "prospect" SET "tags" = v.t, "first_code_id" = v.f, "partner_id" = v.pa, '
        '"owner_id" = v.o, "owner_assigned_at" = v.at FROM v WHERE "prospect"."id" = v.id',
        values)


ROW_COLUMNS = ('"id", "tags"::text AS "tags", "first_code_id", "partner_id", "owner_id", '
               '"owner_assigned_at", "merged_into_id"')
ROWS_PG = f'SELECT {ROW_COLUMNS} FROM "prospect" WHERE "id" = ANY($1::int[])'
LOCK_PG = (f'SELECT {ROW_COLUMNS} FROM "prospect" WHERE "id" = ANY($1::int[]) ORDER BY "id" '
           "FOR NO KEY UPDATE")
WRITE_PG = (
    'UPDATE "prospect" AS p SET "tags" = v.t::jsonb, "first_code_id" = v.f, '
    '"partner_id" = v.pa, "owner_id" = v.o, "owner_assigned_at" = v.at '
    "FROM unnest($1::int[], $2::text[], $3::int[], $4::int[], $5::int[], $6::timestamptz[]) "
    "AS v(id, t, f, pa, o, at) WHERE p.\"id\" = v.id")
# owner_id is wrapped so that the rows are found by id (see `_unowned`)
CLAIM_OWNERS_PG = (
    'UPDATE "prospect" AS p SET "owner_id" = v.o, "owner_assigned_at" = v.at '
    "FROM unnest($1::int[], $2::int[], $3::timestamptz[]) AS v(id, o, at) "
    'WHERE p."id" = v.id AND COALESCE(p."owner_id", 0) = 0 AND p."merged_into_id" IS NULL '
    'RETURNING p."id"')


async def _claim_owners(owners: list[tuple[int, int, datetime]]) -> set[int]:
    """Sets each (prospect, owner, when) where the prospect has no owner and is no tombstone,
    in one statement; the prospects set."""
    conn = connections.get("default")
    if conn.capabilities.dialect == "postgres":
        rows = await conn.execute_query_dict(
            CLAIM_OWNERS_PG, [list(column) for column in zip(*owners, strict=True)])
    else:
        values: list[Any] = []
        for pid, owner, at in owners:
            values += [pid, owner, at.isoformat(" ")]
        rows = await conn.execute_query_dict(
            f"WITH v(id, o, at) AS (VALUES {placeholders(len(owners), 3)}) "
            'UPDATE "prospect" SET "owner_id" = v.o, "owner_assigned_at" = v.at FROM v '
            'WHERE "prospect"."id" = v.id AND "prospect"."owner_id" IS NULL '
            'AND "prospect"."merged_into_id" IS NULL RETURNING "prospect"."id"', values)
    return {int(row["id"]) for row in rows}


async def _unowned(ids: list[int]) -> list[int]:
    """Those of `ids` without an owner. On PostgreSQL the rows are read by id and sifted here:
    with `AND "owner_id" IS NULL` in the query, the planner went by the index on owner_id
    whenever its statistics (from before a burst of new, unowned people) promised few such
    rows, and walked every unowned prospect on each call."""
    conn = connections.get("default")
    if conn.capabilities.dialect == "postgres":
        rows = await conn.execute_query_dict(OWNERS_PG, [list(set(ids))])
        return [row["id"] for row in rows if row["owner_id"] is None]
    return list(await Prospect.filter(id__in=set(ids), owner_id=None).values_list(
        "id", flat=True))


OWNERS_PG = 'SELECT "id", "owner_id" FROM "prospect" WHERE "id" = ANY($1::int[])'


async def _members(touches: list[Touch]) -> dict[int, int]:
    """Index → the team member WeCom chose, for touches of team codes that name one."""
    wanted = {(t.member, t.code.team) for t in touches if t.member and t.code.team}
    if not wanted:
        return {}
    found = {(userid, team): sid for sid, userid, team in await Salesperson.filter(
        wecom_userid__in={m for m, _ in wanted}).values_list("id", "wecom_userid", "team")}
    return {i: found[(t.member, t.code.team)] for i, t in enumerate(touches)
            if t.member and (t.member, t.code.team) in found}


def _applied(row: Row, code: Code, tags: list[str], now: datetime) -> Row:
    """The row with a scan of `code` applied: its tags added; first code, partner and, from the
    code's salesperson, the owner filled where empty."""
    had, first, partner, owner, since, merged = row
    merged_tags = list(dict.fromkeys([*had, *tags]))
    if first is None:
        first = code.id
    if partner is None and code.partner_id is not None:  # type: ignore[attr-defined]
        partner = code.partner_id  # type: ignore[attr-defined]
    if owner is None and code.salesperson_id is not None:  # type: ignore[attr-defined]
        owner, since = code.salesperson_id, now  # type: ignore[attr-defined]
    return (merged_tags, first, partner, owner, since, merged)


def welcome_text(code: Code | None, default: str = DEFAULT_WELCOME) -> str:
    return code.welcome_text if code is not None and code.welcome_text else default


async def add_tags(prospect_id: int, tags: list[str]) -> int:
    """Gives the prospect (its survivor) `tags` it lacks; its id."""
    prospect = await load(prospect_id)
    if all(tag in prospect.tags for tag in tags):
        return prospect.id
    async with locked(prospect.id) as prospect:
        prospect.tags = list(dict.fromkeys([*prospect.tags, *tags]))
        await prospect.save(update_fields=["tags"])
    return prospect.id
