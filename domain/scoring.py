"""Scores from the interaction log: fit (profile) and engagement (behaviour), every point a
ledger row naming its rule and the interaction that earned it.

A score is always computed from the whole log of the person (`compute`), so scoring a prospect
after a signal and `rebuild` (every prospect, from scratch) give the same ledger by
construction. Behaviour points decay with the rules' half-life when a score is read; the ledger
keeps them as earned.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple, Protocol

from tortoise.transactions import in_transaction

from domain import ledger as ledger_store
from domain.rules import BehaviorRule, Rules
from models import Code, Material, Prospect, ScoreEntry

# The kinds of interaction a score depends on; the rest never change one.
CONTACT_ADDED = ("event.change_external_contact.add_external_contact",
                 "event.change_external_contact.add_half_external_contact")
SCAN_KINDS = ("event.subscribe", "event.scan", "mp.login", *CONTACT_ADDED)
SCORED_KINDS = (*SCAN_KINDS, "event.unsubscribe", "mp.read", "mp.action", "mp.profile",
                "mp.phone", "mp.consent_withdrawn")
PROFILE_FIELDS = ("name", "company", "title", "department", "industry", "company_size",
                  "email")
COLUMNS = ("id", "prospect_id", "kind", "code_id", "received_at", "payload")

OPPORTUNITY, NURTURE, OTHER_OFFER, POOL = "opportunity", "nurture", "other_offer", "pool"


class Event(NamedTuple):
    """What an interaction means to the behaviour rules. (Events and entries are named tuples:
    a booth burst makes several of each per person, and a frozen dataclass costs several times
    as much to build.)"""

    name: str
    interaction_id: int
    at: datetime
    code_id: int | None = None
    code_kind: str | None = None
    material_id: int | None = None
    material_kind: str | None = None
    progress: float = 0.0
    seconds: float = 0.0


class Entry(NamedTuple):
    rule: str
    kind: str  # profile | behavior
    points: int
    interaction_id: int | None
    at: datetime


@dataclass(frozen=True)
class Score:
    profile: int
    behavior: int
    quadrant: str
    entries: tuple[Entry, ...]

    @property
    def total(self) -> int:
        return self.profile + self.behavior


@dataclass
class Log:
    """A person's interactions as scoring reads them, and what it needs to know besides."""

    rows: list[dict[str, Any]]
    profile: dict[str, str | None]
    has_phone: bool


def events_of(row: dict[str, Any], code_kinds: dict[int, str],
              material_kinds: dict[int, str]) -> list[Event]:
    kind, at, iid = row["kind"], row["received_at"], row["id"]
    code_id = row.get("code_id")
    payload = row.get("payload") or {}
    found: list[Event] = []
    if kind in SCAN_KINDS and code_id is not None:
        found.append(Event("scan", iid, at, code_id=code_id, code_kind=code_kinds.get(code_id)))
    if kind == "event.subscribe":
        found.append(Event("follow", iid, at))
    elif kind == "event.unsubscribe":
        found.append(Event("unfollow", iid, at))
    elif kind in CONTACT_ADDED:
        found.append(Event("wecom_added", iid, at))
    elif kind == "mp.read":
        material_id = _int(payload.get("material_id"))
        found.append(Event("read", iid, at, material_id=material_id,
                           material_kind=material_kinds.get(material_id or 0),
                           progress=_float(payload.get("progress")),
                           seconds=_float(payload.get("seconds"))))
    elif kind == "mp.action" and isinstance(payload.get("action"), str):
        material_id = _int(payload.get("material_id"))
        found.append(Event(payload["action"], iid, at, material_id=material_id,
                           material_kind=material_kinds.get(material_id or 0)))
    return found


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _float(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _fits(rule: BehaviorRule, event: Event) -> bool:
    if rule.on != event.name:
        return False
    if rule.code_kind is not None and rule.code_kind != event.code_kind:
        return False
    if rule.material_kind is not None and rule.material_kind != event.material_kind:
        return False
    if rule.min_progress is not None and event.progress < rule.min_progress - 1e-9:
        return False
    return rule.min_seconds is None or event.seconds >= rule.min_seconds


def behavior_entries(rules: Rules, events: Iterable[Event]) -> list[Entry]:
    """The ledger rows of a person's events, oldest first: within a group only the best
    matching rule, each rule at most once per repeat window (per code or material) and never
    past its cap."""
    used: dict[str, int] = defaultdict(int)
    last: dict[tuple[str, int | None], datetime] = {}
    entries: list[Entry] = []
    for event in sorted(events, key=lambda e: (e.at, e.interaction_id)):
        best: dict[str, BehaviorRule] = {}
        for rule in rules.behavior_on.get(event.name, ()):
            if _fits(rule, event) and (rule.group not in best
                                       or abs(rule.points) > abs(best[rule.group].points)):
                best[rule.group] = rule
        for rule in best.values():
            key = (rule.id, event.code_id if rule.per == "code" else
                   event.material_id if rule.per == "material" else None)
            before = last.get(key)
            if before is not None and (rule.window_hours is None or (
                    event.at - before).total_seconds() < rule.window_hours * 3600):
                continue
            room = rule.cap - used[rule.id]
            points = max(-room, min(room, rule.points))
            if points == 0:
                continue
            used[rule.id] += abs(points)
            last[key] = event.at
            entries.append(Entry(rule.id, "behavior", points, event.interaction_id, event.at))
    return entries


def profile_entries(rules: Rules, profile: dict[str, str | None], has_phone: bool,
                    sources: dict[str, tuple[int, datetime]], now: datetime) -> list[Entry]:
    """Fit from the profile as it is now; each row names the interaction that gave the field
    (the latest profile or phone signal)."""
    best: dict[str, tuple[int, Any]] = {}
    for index, rule in enumerate(rules.profile):
        value = ("1" if has_phone else None) if rule.field == "phone" else profile.get(rule.field)
        if rule.matches(value) and (rule.group not in best
                                    or rule.points > rules.profile[best[rule.group][0]].points):
            best[rule.group] = (index, rule)
    entries = []
    for index, _ in sorted(best.values(), key=lambda item: item[0]):
        rule = rules.profile[index]
        interaction_id, at = sources.get("phone" if rule.field == "phone" else "profile",
                                         (None, now))
        entries.append(Entry(rule.id, "profile", rule.points, interaction_id, at))
    return entries


class Earned(Protocol):
    kind: str
    points: int
    at: datetime


def worth(rules: Rules, entry: Earned, now: datetime) -> float:
    """What a ledger row is worth at `now`: profile points as earned, behaviour points halved
    every half-life since."""
    if entry.kind != "behavior":
        return float(entry.points)
    age = max((now - entry.at).total_seconds(), 0.0)
    return entry.points * 0.5 ** (age / (rules.half_life_days * 86_400))


def decayed(rules: Rules, entries: Iterable[Entry], now: datetime) -> float:
    """The behaviour points of `entries`, decayed to `now`."""
    return sum(worth(rules, entry, now) for entry in entries if entry.kind == "behavior")


def quadrant(rules: Rules, profile: int, behavior: int) -> str:
    fit, engaged = profile >= rules.fit, behavior >= rules.engagement
    if fit and engaged:
        return OPPORTUNITY
    if fit:
        return NURTURE
    return OTHER_OFFER if engaged else POOL


def compute(rules: Rules, log: Log, code_kinds: dict[int, str],
            material_kinds: dict[int, str], now: datetime) -> Score:
    events: list[Event] = []
    sources: dict[str, tuple[int, datetime]] = {}
    for row in log.rows:
        events.extend(events_of(row, code_kinds, material_kinds))
        if row["kind"] == "mp.profile":
            sources["profile"] = (row["id"], row["received_at"])
        elif row["kind"] == "mp.phone":
            sources["phone"] = (row["id"], row["received_at"])
    entries = [*profile_entries(rules, log.profile, log.has_phone, sources, now),
               *behavior_entries(rules, events)]
    profile = sum(e.points for e in entries if e.kind == "profile")
    behavior = round(decayed(rules, entries, now))
    return Score(profile, behavior, quadrant(rules, profile, behavior), tuple(entries))


# --- reading and writing -----------------------------------------------------------------------


class Kinds:
    """Code and material kinds by id, as scoring needs them (read once per batch)."""

    def __init__(self) -> None:
        self.codes: dict[int, str] = {}
        self.materials: dict[int, str] = {}

    async def load(self, rows: Iterable[dict[str, Any]]) -> None:
        codes, materials = set(), set()
        for row in rows:
            if row.get("code_id") is not None and row["code_id"] not in self.codes:
                codes.add(row["code_id"])
            material_id = _int((row.get("payload") or {}).get("material_id"))
            if material_id is not None and material_id not in self.materials:
                materials.add(material_id)
        if codes:
            self.codes.update(await Code.filter(id__in=codes).values_list("id", "kind"))
        if materials:
            self.materials.update(await Material.filter(id__in=materials).values_list("id",
                                                                                      "kind"))


async def logs_of(families: dict[int, list[int]],
                  profiles: dict[int, dict[str, Any]] | None = None) -> dict[int, Log]:
    """The logs of several people at once: `families` maps each survivor to its record ids;
    `profiles` the survivors' rows when read already (see ledger.lock_people)."""
    owner = {member: survivor for survivor, ids in families.items() for member in ids}
    everyone = list(owner)
    rows = await ledger_store.interactions(everyone, SCORED_KINDS)
    phones = await ledger_store.with_phone(everyone)
    if profiles is None:
        profiles = {row["id"]: row for row in await Prospect.filter(
            id__in=list(families)).values("id", *PROFILE_FIELDS)}
    logs = {survivor: Log([], {name: profiles.get(survivor, {}).get(name)
                               for name in PROFILE_FIELDS},
                          any(member in phones for member in ids))
            for survivor, ids in families.items()}
    for row in rows:
        logs[owner[row["prospect_id"]]].rows.append(row)
    return logs


async def families_of(survivors: list[int]) -> dict[int, list[int]]:
    return await ledger_store.families(survivors)


async def write(scores: dict[int, Score], families: dict[int, list[int]],
                now: datetime) -> None:
    """Replaces the ledger of each person and stores their score and quadrant."""
    await ledger_store.replace(scores, families, now)


async def score_one(rules: Rules, survivor: int, now: datetime | None = None) -> Score:
    """Scores one person (a survivor's id) from their whole log and stores it; call it inside
    `locked(survivor)` so that two signals of one person score one after the other."""
    now = now or datetime.now(UTC)
    families = await families_of([survivor])
    log = (await logs_of(families))[survivor]
    kinds = Kinds()
    await kinds.load(log.rows)
    score = compute(rules, log, kinds.codes, kinds.materials, now)
    await write({survivor: score}, families, now)
    return score


async def ledger(prospect_id: int) -> list[ScoreEntry]:
    return await ScoreEntry.filter(prospect_id=prospect_id).order_by("at", "id")


def score_now(rules: Rules, rows: Iterable[ScoreEntry], now: datetime | None = None) -> Score:
    """A stored ledger read at `now` (behaviour decayed since it was earned)."""
    now = now or datetime.now(UTC)
    entries = tuple(Entry(r.rule, r.kind, r.points, r.interaction_id, r.at) for r in rows)
    profile = sum(e.points for e in entries if e.kind == "profile")
    behavior = round(decayed(rules, entries, now))
    return Score(profile, behavior, quadrant(rules, profile, behavior), entries)


async def rebuild(rules: Rules, *, chunk: int = 2000, now: datetime | None = None,
                  progress: Callable[[int], None] | None = None) -> int:
    """Recomputes every person's ledger and score from the interaction log (what scoring after
    each signal gives); `progress` hears how many people each chunk held. Returns how many
    people were scored. Opportunities are not created or pushed again."""
    now = now or datetime.now(UTC)
    kinds = Kinds()
    done, after = 0, 0
    while True:
        survivors = list(await Prospect.filter(merged_into_id=None, id__gt=after)
                         .order_by("id").limit(chunk).values_list("id", flat=True))
        if not survivors:
            return done
        async with in_transaction():  # holding the people's rows, as `locked` does: a signal
            # scored meanwhile waits instead of interleaving its ledger with this one
            held = [p.id for p in await Prospect.filter(id__in=survivors, merged_into_id=None)
                    .order_by("id").select_for_update(no_key=True).only("id")]
            families = await families_of(held)
            logs = await logs_of(families)
            await kinds.load(row for log in logs.values() for row in log.rows)
            scores = {survivor: compute(rules, log, kinds.codes, kinds.materials, now)
                      for survivor, log in logs.items()}
            await write(scores, families, now)
        done += len(held)
        after = survivors[-1]
        if progress is not None:
            progress(len(survivors))
