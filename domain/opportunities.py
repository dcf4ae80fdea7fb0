"""From a score to a salesperson's phone: routing by quadrant, lead cleaning, the opportunity
with its attribution record, and the message that tells its owner — written together, in the
transaction that holds the person's lock (domain.merging.locked).

Routing (domain.scoring.quadrant): high fit and engagement → an opportunity now; high fit only →
nurture (tagged); engagement only → another offer (tagged); neither → the public pool. A key
account goes to sales at once, whatever its score. Test data, competitors' emails and invalid
phones never become opportunities. One opportunity per person per qualification: a new one only
once the last is closed.

The owner by attribution: first touch (the prospect's owner, given by their first code) or, with
`attribution: last_touch`, the salesperson of the latest code scanned; else the partner's
contact salesperson; else the code's booth team in turns; else the public pool (no owner,
status `pool`). Every touch is kept on the opportunity, so a dispute is settled from the record.
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from domain import outbox
from domain.attribution import CHINA, Attribution
from domain.rules import Rules, contains
from domain.scoring import NURTURE, OPPORTUNITY, OTHER_OFFER, SCAN_KINDS, Score
from domain.timeline import duration
from models import (
    Code,
    Interaction,
    Opportunity,
    OutboundMessage,
    Partner,
    Prospect,
    Salesperson,
)

log = logging.getLogger(__name__)
OPEN_STATUSES = ("open", "accepted", "pool")
THING = 20  # characters a category template's `thing` value shows


@dataclass(frozen=True)
class Messaging:
    """How pushes are made: the OA template, whether the WeCom app is there, links."""

    template_id: str | None
    wecom_agent: bool
    link: Any  # Callable[[int, int], str]: the page of an opportunity, for a salesperson

    async def enqueue(self, purpose: str, person: Salesperson, payload: dict[str, Any],
                      opportunity_id: int | None = None) -> bool:
        """The message for `purpose` to `person` on the best route (domain.outbox.enqueue);
        True when queued now (False: there is one for this purpose already)."""
        return await outbox.enqueue(purpose, person, payload, template_id=self.template_id,
                                    wecom_agent=self.wecom_agent,
                                    opportunity_id=opportunity_id) is not None


@dataclass(frozen=True)
class Trigger:
    """The interaction that made the score what it is, and when it arrived."""

    interaction_id: int | None
    received_at: datetime


def cleaned(rules: Rules, prospect: Prospect, phone: str | None) -> str | None:
    """Why a prospect is not a lead (test data, a competitor, an invalid phone), or None."""
    for value in (prospect.name, prospect.company):
        if value and any(contains(value, marker) for marker in rules.test_markers):
            return "test data"
    if prospect.email and "@" in prospect.email:
        domain = prospect.email.rsplit("@", 1)[1].lower()
        if any(domain == d or domain.endswith("." + d) for d in rules.competitor_domains):
            return "competitor email domain"
    if phone and any(pattern.search(phone) for pattern in rules.invalid_phones):
        return "invalid phone"
    return None


def key_account(rules: Rules, prospect: Prospect) -> str | None:
    return key_account_of(rules, prospect.company)


def key_account_of(rules: Rules, company: str | None) -> str | None:
    """The key account a company name belongs to, if any."""
    company = company or ""
    for name in rules.key_accounts:
        if company and contains(company, name):
            return name
    return None


async def touches_of(family: list[int]) -> list[dict[str, Any]]:
    """Every code the person came through, oldest first, with whom it names."""
    rows = await (Interaction.filter(prospect_id__in=family, kind__in=SCAN_KINDS,
                                     code_id__isnull=False)
                  .order_by("received_at", "id")
                  .values("id", "kind", "code_id", "received_at"))
    codes = {code.id: code for code in await Code.filter(
        id__in={row["code_id"] for row in rows})}
    found = []
    for row in rows:
        code = codes.get(row["code_id"])
        if code is None:
            continue
        found.append({"interaction_id": row["id"], "at": row["received_at"].isoformat(),
                      "kind": row["kind"], "code_id": code.id, "code_kind": code.kind.value,
                      "campaign": code.campaign, "serial": code.serial,
                      "salesperson_id": code.salesperson_id,  # type: ignore[attr-defined]
                      "partner_id": code.partner_id,  # type: ignore[attr-defined]
                      "team": code.team, "backup_salesperson_id": code.backup_id})  # type: ignore[attr-defined]
    return found


async def _active(salesperson_id: int | None) -> Salesperson | None:
    if salesperson_id is None:
        return None
    return await Salesperson.get_or_none(id=salesperson_id, active=True)


async def owner_for(rules: Rules, prospect: Prospect, touches: list[dict[str, Any]],
                    attribution: Attribution) -> tuple[Salesperson | None, str]:
    """Who gets the opportunity, and by which rule."""
    if rules.attribution == "last_touch" and touches:
        last = touches[-1]  # its salesperson, or its booth team's turn
        if (person := await _active(last["salesperson_id"])) is not None:
            return person, "last_touch"
        if last["team"]:
            turn = await attribution.next_in_team(last["team"], last["backup_salesperson_id"])
            if (person := await _active(turn)) is not None:
                return person, "last_touch"
    if (person := await _active(prospect.owner_id)) is not None:  # type: ignore[attr-defined]
        return person, "first_touch"
    partner_id = prospect.partner_id or next(  # type: ignore[attr-defined]
        (t["partner_id"] for t in touches if t["partner_id"]), None)
    if partner_id is not None:
        partner = await Partner.get_or_none(id=partner_id)
        if partner is not None and (person := await _active(
                partner.salesperson_id)) is not None:  # type: ignore[attr-defined]
            return person, "partner"
    for touch in touches:
        if touch["team"]:
            turn = await attribution.next_in_team(touch["team"], touch["backup_salesperson_id"])
            if (person := await _active(turn)) is not None:
                return person, "team"
    return None, "pool"


def customer(prospect: Prospect) -> str:
    name = prospect.name or f"访客{prospect.id}"
    return f"{name}（{prospect.company}）" if prospect.company else name


def clip(text: str, limit: int = THING) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def clip_bytes(text: str, limit: int) -> str:
    raw = text.encode("utf-8")
    return text if len(raw) <= limit else raw[:limit].decode("utf-8", "ignore")


def china_time(at: datetime) -> str:
    return at.astimezone(CHINA).strftime("%Y年%m月%d日 %H:%M")


def why(rules: Rules, score: Score, limit: int = 3) -> str:
    """The rules that gave the most points, by label: 「读完白皮书 · 总监级职位 · 展会扫码」."""
    points: dict[str, int] = {}
    for entry in score.entries:
        points[entry.rule] = points.get(entry.rule, 0) + entry.points
    best = sorted((p, r) for r, p in points.items() if p > 0)[::-1][:limit]
    return " · ".join(rules.label(rule) for _, rule in best)


def push_payload(*, title: str, person: str, matter: str, note: str, at: datetime,
                 url: str | None, detail: str = "") -> dict[str, Any]:
    """One message in both renderings: the OA template's category keys (each value within
    what WeChat shows) and a WeCom textcard (within its byte limits)."""
    data = {"thing1": clip(person), "thing2": clip(matter), "time3": china_time(at),
            "thing4": clip(note or "—")}
    shown = {name: html.escape(value, quote=False) for name, value in (
        ("detail", detail or person), ("matter", matter), ("note", note))}
    description = (f'<div class="gray">{china_time(at)}</div>'
                   f'<div class="normal">{shown["detail"]}</div>'
                   f'<div class="highlight">{shown["matter"]}'
                   f'{"：" + shown["note"] if note else ""}</div>')
    payload: dict[str, Any] = {"template": {"data": data, "url": url}}
    if url:
        payload["textcard"] = {"title": clip_bytes(title, 128),
                               "description": clip_bytes(description, 512),
                               "url": url, "btntxt": "查看"}
    else:
        payload["text"] = clip_bytes(f"{title}\n{matter}{'：' + note if note else ''}", 2000)
    return payload


async def route(rules: Rules, prospect: Prospect, family: list[int], score: Score,
                trigger: Trigger, phone: str | None, attribution: Attribution,
                messaging: Messaging, was: str | None = None) -> Opportunity | None:
    """Acts on a fresh score of a locked survivor (`was`: their quadrant before it): an
    opportunity and its push, or a tag. One opportunity per qualification: while one is
    being worked nothing new is made (a pool one goes to an owner once there is one), and
    after one is won or lost a new one needs the person to qualify again — to come back into
    the opportunity quadrant."""
    reason = cleaned(rules, prospect, phone)
    if reason is not None:
        if score.quadrant == OPPORTUNITY:
            log.info("prospect %d qualifies but is not a lead: %s", prospect.id, reason)
        return None
    account = key_account(rules, prospect)
    if score.quadrant != OPPORTUNITY and account is None:
        tag = {NURTURE: rules.nurture_tag, OTHER_OFFER: rules.other_offer_tag}.get(
            score.quadrant)
        if tag and tag not in prospect.tags:  # the caller holds the lock
            prospect.tags = [*prospect.tags, tag]
            await prospect.save(update_fields=["tags"])
        return None
    last = await Opportunity.filter(prospect_id__in=family).order_by("-id").first()
    if last is not None and last.status == "pool":
        return await _from_pool(rules, prospect, family, last, attribution, messaging)
    if last is not None and (last.status in OPEN_STATUSES or was == OPPORTUNITY
                             or score.quadrant != OPPORTUNITY):
        return None
    touches = await touches_of(family)
    person, rule = await owner_for(rules, prospect, touches, attribution)
    if account is not None:
        rule = "key_account" if person is not None else "pool"
        why_text = f"重点客户 {account}"
    else:
        why_text = why(rules, score)
    opportunity = await Opportunity.create(
        prospect_id=prospect.id, salesperson=person, score=score.total,
        status="open" if person is not None else "pool",
        reason=(f"key account {account}" if account else
                f"fit {score.profile} ≥ {rules.fit}, engagement {score.behavior} ≥ "
                f"{rules.engagement}")[:256],
        attribution=rule, touches=touches,
        breakdown={"profile": score.profile, "behavior": score.behavior,
                   "total": score.total, "quadrant": score.quadrant, "why": why_text,
                   "ledger": [{"rule": e.rule, "points": e.points,
                               "interaction_id": e.interaction_id} for e in score.entries]},
        qualified_by=trigger.interaction_id, qualified_at=trigger.received_at)
    if person is None:
        log.info("opportunity %d for prospect %d goes to the public pool: no owner",
                 opportunity.id, prospect.id)
        return opportunity
    await _tell(prospect, opportunity, person, rule, messaging)
    return opportunity


async def _from_pool(rules: Rules, prospect: Prospect, family: list[int],
                     opportunity: Opportunity, attribution: Attribution,
                     messaging: Messaging) -> Opportunity | None:
    """A pool opportunity goes to an owner as soon as the person has one (a salesperson's code
    scanned since, a partner given a contact salesperson)."""
    touches = await touches_of(family)
    person, rule = await owner_for(rules, prospect, touches, attribution)
    if person is None:
        return None
    taken = await Opportunity.filter(id=opportunity.id, status="pool").update(
        salesperson_id=person.id, status="open", attribution=rule, touches=touches)
    if not taken:
        return None
    opportunity.salesperson_id, opportunity.status = person.id, "open"  # type: ignore[attr-defined]
    await _tell(prospect, opportunity, person, rule, messaging)
    return opportunity


async def _tell(prospect: Prospect, opportunity: Opportunity, person: Salesperson, rule: str,
                messaging: Messaging) -> None:
    """The owner gets the person (if they had none) and the push (an outbox row)."""
    if prospect.owner_id is None:  # type: ignore[attr-defined]
        await Prospect.filter(id=prospect.id, owner_id=None).update(
            owner_id=person.id, owner_assigned_at=datetime.now(UTC))
    qualified = opportunity.qualified_at or opportunity.created_at
    payload = push_payload(title=f"新商机：{customer(prospect)}", person=customer(prospect),
                           matter=f"新商机 评分{opportunity.score}",
                           note=str(opportunity.breakdown.get("why") or ""), at=qualified,
                           url=messaging.link(opportunity.id, person.id), detail=_detail(prospect))
    await messaging.enqueue(f"opportunity:{opportunity.id}", person, payload, opportunity.id)
    log.info("opportunity %d for prospect %d goes to salesperson %d (%s)", opportunity.id,
             prospect.id, person.id, rule)


def _detail(prospect: Prospect) -> str:
    return " · ".join(v for v in (prospect.title, prospect.company_size, prospect.industry) if v)


async def tell_receiver(opportunity: Opportunity, giver: Salesperson, receiver: Salesperson,
                        messaging: Messaging) -> bool:
    """The push that tells `receiver` of an opportunity `giver` handed over to them (inside the
    handover's transaction), with a link of their own: the giver's stops opening it. True when
    queued (once per opportunity and receiver)."""
    prospect = await Prospect.get_or_none(id=opportunity.prospect_id)  # type: ignore[attr-defined]
    if prospect is None:
        return False
    payload = push_payload(title=f"转交商机：{customer(prospect)}", person=customer(prospect),
                           matter=f"{giver.name}转交 评分{opportunity.score}",
                           note=str(opportunity.breakdown.get("why") or ""),
                           at=datetime.now(UTC), url=messaging.link(opportunity.id, receiver.id),
                           detail=_detail(prospect))
    return await messaging.enqueue(f"handover:{opportunity.id}:{receiver.id}", receiver,
                                   payload, opportunity.id)


async def radar(read: dict[str, Any], prospect: Prospect, messaging: Messaging,
                title: str, now: datetime | None = None) -> bool:
    """Tells the salesperson whose share a prospect read: 「张伟（上海某某科技）阅读了《…》3分20秒，
    进度100%」 — at most once per prospect and material an hour. True when queued."""
    person = await _active(read.get("salesperson_id"))
    material_id = read.get("material_id")
    if person is None or not isinstance(material_id, int):
        return False
    now = now or datetime.now(UTC)
    prefix = f"radar:p{prospect.id}:m{material_id}:"
    if await OutboundMessage.exists(purpose__startswith=prefix,
                                           created_at__gte=now - timedelta(hours=1)):
        return False
    progress = round(float(read.get("progress") or 0) * 100)
    spent = duration(float(read.get("seconds") or 0))
    text = f"{customer(prospect)}阅读了《{title}》{spent}，进度{progress}%"
    payload = push_payload(title="阅读提醒", person=customer(prospect),
                           matter=clip(f"阅读《{title}》"), note=f"{spent} 进度{progress}%",
                           at=now, url=None)
    payload["text"] = text
    return await messaging.enqueue(prefix + str(int(now.timestamp()) // 3600), person, payload)
