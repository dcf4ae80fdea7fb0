"""What a scan of a code does to the prospect: tags, the owner (first touch), the partner.

The first touch decides the owner; a later code adds its tags and a touch, not a new owner,
unless the owner is still unset. A booth code without a salesperson hands its prospects to the
booth team in turns, each member up to a daily cap, and to a backup member when all are full.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta, timezone

from cachetools import TTLCache

from bot.store import PREFIX, Store
from domain.merging import current, load, locked
from models import Code, Material, Partner, Prospect, Salesperson

log = logging.getLogger(__name__)
CHINA = timezone(timedelta(hours=8))  # a sales day is a day in China
DEFAULT_WELCOME = "您好，欢迎关注！我们的顾问会尽快与您联系，您也可以直接在这里留言。"
DEFAULT_CONTACT_WELCOME = "您好，很高兴认识您！我是您的专属顾问，有任何问题随时联系我。"


def day_start(now: datetime | None = None) -> datetime:
    local = (now or datetime.now(UTC)).astimezone(CHINA)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


class Attribution:
    def __init__(self, store: Store, code_ttl: float = 60.0) -> None:
        self.store = store
        # as long as scenes are cached (domain.scenes)
        self._codes: TTLCache[int, tuple[Code | None, list[str]]] = TTLCache(
            maxsize=10_000, ttl=code_ttl)

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
        own the prospect rather than whoever's turn it would be."""
        if code_id is None:
            return None
        code, tags = await self.code(code_id)
        if code is None:
            return None
        # Every change only adds (tags) or fills what is empty (first code, partner, owner), so
        # a prospect that already has it all needs no lock and no write: a repeated scan.
        prospect = await load(prospect_id)
        if prospect.owner_id is not None and not _changes(prospect, code, tags):  # type: ignore[attr-defined]
            return code
        async with locked(prospect.id) as prospect:  # a merged-away id writes to its survivor
            changed = _changes(prospect, code, tags)
            owner = code.salesperson_id  # type: ignore[attr-defined]
            if prospect.owner_id is None and owner is not None:  # type: ignore[attr-defined]
                prospect.owner_id, prospect.owner_assigned_at = owner, datetime.now(UTC)  # type: ignore[attr-defined]
                changed += ["owner_id", "owner_assigned_at"]
            if changed:
                await prospect.save(update_fields=changed)
        if prospect.owner_id is None:  # type: ignore[attr-defined]
            await self.assign_owner(prospect.id, code, member)
        return code

    async def assign_owner(self, prospect_id: int, code: Code,
                           member: str | None = None) -> int | None:
        owner = code.salesperson_id  # type: ignore[attr-defined]
        if owner is None and code.team and member:
            added = await Salesperson.get_or_none(wecom_userid=member, team=code.team)
            owner = added.id if added is not None else None
        if owner is None and code.team:
            async with self.store.lock(f"{PREFIX}lock:team:{code.team}", timeout=10, wait=10):
                owner = await self.next_in_team(code.team, code.backup_id)  # type: ignore[attr-defined]
                if owner is None:
                    await self._team_full(code.team)
                return await self._set_owner(prospect_id, owner)
        return await self._set_owner(prospect_id, owner)

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

    async def next_in_team(self, team: str, backup_id: int | None) -> int | None:
        """The member whose turn it is: under their daily cap, fewest assignments today, the
        longest since their last one; the backup member when everyone is full."""
        members = await Salesperson.filter(team=team, active=True).order_by("id")
        since = day_start()
        best: tuple[int, datetime, int] | None = None
        for member in members:
            today = await Prospect.filter(owner_id=member.id,
                                          owner_assigned_at__gte=since).count()
            if today >= member.daily_cap:
                continue
            last = await Prospect.filter(owner_id=member.id).exclude(
                owner_assigned_at=None).order_by("-owner_assigned_at").first()
            never = datetime.min.replace(tzinfo=UTC)
            last_at = last.owner_assigned_at if last and last.owner_assigned_at else never
            rank = (today, last_at, member.id)
            if best is None or rank < best:
                best = rank
        return best[2] if best is not None else backup_id


def _changes(prospect: Prospect, code: Code, tags: list[str]) -> list[str]:
    """Applies the code's tags, first code and partner to the prospect; the fields changed."""
    changed: list[str] = []
    merged = list(dict.fromkeys([*prospect.tags, *tags]))
    if merged != prospect.tags:
        prospect.tags, changed = merged, [*changed, "tags"]
    if prospect.first_code_id is None:  # type: ignore[attr-defined]
        prospect.first_code_id = code.id  # type: ignore[attr-defined]
        changed.append("first_code_id")
    if prospect.partner_id is None and code.partner_id is not None:  # type: ignore[attr-defined]
        prospect.partner_id = code.partner_id  # type: ignore[attr-defined]
        changed.append("partner_id")
    return changed


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
