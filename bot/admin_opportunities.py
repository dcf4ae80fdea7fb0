"""Admin routes of what reaches sales: a prospect's score with every point explained, and
opportunities with their attribution record, every push attempt and the speed to lead."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from bot import fields, keys
from bot.api import reply
from bot.errors import NotFound
from domain import scoring
from domain.merging import current, family
from domain.opportunities import cleaned, key_account
from models import (
    Opportunity,
    OutboundMessage,
    Prospect,
    Salesperson,
)

STATUSES = ("open", "accepted", "won", "lost", "pool", "merged")


def _when(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def speed_to_lead_ms(opportunity: Opportunity) -> int | None:
    """From the qualifying interaction's arrival to WeChat accepting the push."""
    if opportunity.reached_at is None or opportunity.qualified_at is None:
        return None
    return round((opportunity.reached_at - opportunity.qualified_at).total_seconds() * 1000)


async def get_score(request: web.Request) -> web.Response:
    """`{"profile", "behavior", "total", "quadrant", "ledger": [...]}`: behaviour decayed to
    now; each ledger row as earned, with what it is worth now."""
    fields.only(request.query, ())
    prospect_id = fields.parse_id(request.match_info["id"], what="prospect")
    if not await Prospect.exists(id=prospect_id):
        raise NotFound(f"there is no prospect {prospect_id}")
    prospect = await Prospect.get(id=await current(prospect_id))
    rules = request.config_dict[keys.RULES]
    now = datetime.now(UTC)
    rows = await scoring.ledger(prospect.id)
    score = scoring.score_now(rules, rows, now)
    phone = next(iter(await request.config_dict[keys.PROSPECTS].phones(prospect.id)), None)
    return reply({
        "prospect_id": prospect.id, "profile": score.profile, "behavior": score.behavior,
        "total": score.total, "quadrant": score.quadrant,
        "thresholds": {"fit": rules.fit, "engagement": rules.engagement},
        "cleaned": cleaned(rules, prospect, phone),
        "key_account": key_account(rules, prospect),
        "scored_at": _when(prospect.scored_at),
        "ledger": [{"rule": row.rule, "label": rules.label(row.rule), "kind": row.kind,
                    "points": row.points,
                    "now": round(scoring.worth(rules, row, now), 1),
                    "interaction_id": row.interaction_id, "at": row.at.isoformat()}
                   for row in rows],
    })


def show_push(message: OutboundMessage) -> dict[str, Any]:
    return {"id": message.id, "channel": message.channel, "status": message.status.value,
            "attempts": message.attempts, "last_error": message.last_error,
            "wechat_msgid": message.wechat_msgid, "sent_at": _when(message.sent_at),
            "next_attempt_at": _when(message.next_attempt_at), "history": message.history}


def show_opportunity(opportunity: Opportunity, names: dict[int, str],
                     push: OutboundMessage | None) -> dict[str, Any]:
    salesperson_id = opportunity.salesperson_id  # type: ignore[attr-defined]
    return {
        "id": opportunity.id, "prospect_id": opportunity.prospect_id,  # type: ignore[attr-defined]
        "salesperson_id": salesperson_id, "salesperson": names.get(salesperson_id or 0),
        "score": opportunity.score, "status": opportunity.status,
        "reason": opportunity.reason, "attribution": opportunity.attribution,
        "created_at": opportunity.created_at.isoformat(),
        "qualified_at": _when(opportunity.qualified_at),
        "reached_at": _when(opportunity.reached_at),
        "accepted_at": _when(opportunity.accepted_at),
        "speed_to_lead_ms": speed_to_lead_ms(opportunity),
        "push": None if push is None else {"channel": push.channel,
                                           "status": push.status.value},
    }


async def _names(ids: set[int]) -> dict[int, str]:
    return dict(await Salesperson.filter(id__in=ids).values_list("id", "name")) if ids else {}


async def list_opportunities(request: web.Request) -> web.Response:
    fields.only(request.query, ("salesperson_id", "status", "prospect_id"))
    query = Opportunity.all().order_by("-id")
    if "salesperson_id" in request.query:
        query = query.filter(salesperson_id=fields.parse_id(request.query["salesperson_id"],
                                                            "salesperson_id", "salesperson"))
    if "prospect_id" in request.query:
        prospect_id = fields.parse_id(request.query["prospect_id"], "prospect_id", "prospect")
        query = query.filter(prospect_id__in=await family(prospect_id))
    if "status" in request.query:
        status = fields.param(request.query, "status", 16)
        if status not in STATUSES:
            raise fields.invalid("status", "must be one of " + ", ".join(STATUSES))
        query = query.filter(status=status)
    opportunities = await query.limit(500)
    latest: dict[int, OutboundMessage] = {}  # the message that tells the owner: its fallback
    for message in await OutboundMessage.filter(  # when there is one
            opportunity_id__in=[o.id for o in opportunities]).order_by("id"):
        latest[message.opportunity_id] = message  # type: ignore[attr-defined]
    names = await _names({o.salesperson_id for o in opportunities  # type: ignore[attr-defined]
                          if o.salesperson_id})  # type: ignore[attr-defined]
    return reply([show_opportunity(o, names, latest.get(o.id)) for o in opportunities])


async def get_opportunity(request: web.Request) -> web.Response:
    """The opportunity with its touches (the attribution record), the score it qualified
    with, every push attempt and the speed to lead."""
    fields.only(request.query, ())
    opportunity_id = fields.parse_id(request.match_info["id"], what="opportunity")
    opportunity = await Opportunity.get_or_none(id=opportunity_id)
    if opportunity is None:
        raise NotFound(f"there is no opportunity {opportunity_id}",
                       code="unknown_opportunity")
    pushes = await OutboundMessage.filter(opportunity_id=opportunity.id).order_by("id")
    names = await _names({opportunity.salesperson_id} if opportunity.salesperson_id  # type: ignore[attr-defined]
                         else set())
    prospect = await Prospect.get(id=await current(opportunity.prospect_id))  # type: ignore[attr-defined]
    return reply({
        **show_opportunity(opportunity, names, pushes[-1] if pushes else None),
        "prospect": {"id": prospect.id, "name": prospect.name, "company": prospect.company,
                     "title": prospect.title},
        "qualified_by": opportunity.qualified_by, "touches": opportunity.touches,
        "breakdown": opportunity.breakdown, "pushes": [show_push(m) for m in pushes],
    })


def setup_opportunity_routes(admin: web.Application) -> None:
    admin.router.add_get("/prospects/{id}/score", get_score)
    admin.router.add_get("/opportunities", list_opportunities)
    admin.router.add_get("/opportunities/{id}", get_opportunity)
