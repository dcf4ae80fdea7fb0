"""Admin routes for what the callbacks brought: prospects (by identity, by id, listed with
filters) and their timelines (opportunities: admin_opportunities). Phone numbers only ever
leave masked."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from tortoise.expressions import Q

from bot import fields, keys
from bot.api import reply
from bot.errors import BadRequest, NotFound
from bot.paging import limit_of, page
from bot.privacy import Sealer, ascii_digits, mask_phone, normalize_phone
from domain.attribution import CHINA
from domain.merging import current, family
from domain.timeline import timeline
from models import (
    Identity,
    IdentityKind,
    Interaction,
    Prospect,
    ProspectMerge,
)

IDENTITY_LIMIT = 128
PHONE_TEXT = re.compile(r"[\d\s.+()\-]+")
RELATED = ("owner", "partner", "first_code")
LIST_FILTERS = ("owner_id", "unassigned", "campaign", "code_id", "partner_id", "tag",
                "created_after", "created_before", "q", "limit", "cursor")


def show_identity(identity: Identity, sealer: Sealer) -> dict[str, str]:
    if identity.kind == IdentityKind.PHONE:
        phone = sealer.unseal(identity.sealed or "") or ""
        return {"kind": identity.kind.value, "value": mask_phone(phone) if phone else "****"}
    return {"kind": str(identity.kind.value), "value": identity.value}


def show_summary(prospect: Prospect) -> dict[str, Any]:
    """A prospect as lists show it, naming its owner, partner and first code (fetched with
    `select_related(*RELATED)`)."""
    owner, partner, code = prospect.owner, prospect.partner, prospect.first_code
    return {
        "id": prospect.id, "name": prospect.name, "company": prospect.company,
        "title": prospect.title, "tags": prospect.tags,
        "owner": {"salesperson_id": owner.id if owner else None,
                  "salesperson": owner.name if owner else None,
                  "partner_id": partner.id if partner else None,
                  "partner": partner.name if partner else None},
        "first_code": None if code is None else {
            "id": code.id, "kind": code.kind.value, "channel": code.channel.value,
            "campaign": code.campaign},
        "created_at": prospect.created_at.isoformat(),
    }


async def show_prospect(prospect: Prospect, sealer: Sealer) -> dict[str, Any]:
    everyone = await family(prospect.id)  # what reached a merged-away record counts too
    identities = await Identity.filter(prospect_id__in=everyone).order_by("id")
    interactions = await Interaction.filter(prospect_id__in=everyone).count()
    merges = await ProspectMerge.filter(survivor_id=prospect.id).order_by("id")
    return {
        **show_summary(prospect),
        "department": prospect.department, "industry": prospect.industry,
        "company_size": prospect.company_size,
        "identities": [show_identity(i, sealer) for i in identities],
        "score": {"profile": prospect.profile_score, "behavior": prospect.behavior_score,
                  "total": prospect.profile_score + prospect.behavior_score,
                  "quadrant": prospect.quadrant},
        "interactions": interactions,
        "email": prospect.email,
        "consent": None if prospect.consent_version is None else {
            "version": prospect.consent_version,
            "at": prospect.consent_at.isoformat() if prospect.consent_at else None},
        "merged_from": [{"prospect_id": m.merged_id, "reason": m.reason,  # type: ignore[attr-defined]
                         "at": m.created_at.isoformat(), "moved": m.moved} for m in merges],
    }


async def find_prospects(request: web.Request) -> web.Response:
    """`?identity=KIND:VALUE` → `[prospect]`, or `[]`."""
    fields.only(request.query, ("identity",))
    kind, sep, value = request.query["identity"].partition(":")
    if not sep or not value or kind not in {k.value for k in IdentityKind}:
        raise BadRequest("`identity` must be KIND:VALUE, KIND one of "
                         + ", ".join(k.value for k in IdentityKind), code="invalid_identity")
    value = fields.check_text(value, "identity", IDENTITY_LIMIT)
    if kind == IdentityKind.PHONE and (not PHONE_TEXT.fullmatch(ascii_digits(value))
                                       or not 5 <= len(normalize_phone(value)) <= 20):
        raise BadRequest("a phone identity is 5 to 20 digits, with spaces, dashes, dots, "
                         "brackets or a leading + at most", code="invalid_identity")
    prospect_id = await request.config_dict[keys.PROSPECTS].find(IdentityKind(kind), value)
    prospect = None if prospect_id is None else await Prospect.get_or_none(
        id=prospect_id).select_related(*RELATED)
    sealer = request.config_dict[keys.SEALER]
    return reply([] if prospect is None else [await show_prospect(prospect, sealer)])


async def list_prospects(request: web.Request) -> web.Response:
    """Newest first, filtered; `?identity=` keeps its plain list answer."""
    if "identity" in request.query:
        return await find_prospects(request)
    params = request.query
    fields.only(params, LIST_FILTERS)
    query = Prospect.filter(merged_into_id=None).select_related(*RELATED)
    for name, column, what in (("owner_id", "owner_id", "salesperson"),
                               ("code_id", "first_code_id", "code"),
                               ("partner_id", "partner_id", "partner")):
        if name in params:
            query = query.filter(**{column: fields.parse_id(params[name], name, what)})
    if "unassigned" in params:
        query = query.filter(owner_id__isnull=fields.flag(params["unassigned"], "unassigned"))
    if "campaign" in params:
        query = query.filter(first_code__campaign=fields.param(params, "campaign",
                                                                128))
    if "tag" in params:
        query = query.filter(tags__contains=[fields.param(params, "tag", fields.TAG_LIMIT)])
    if "created_after" in params:
        query = query.filter(created_at__gte=moment(params["created_after"], "created_after"))
    if "created_before" in params:
        query = query.filter(created_at__lt=moment(params["created_before"], "created_before"))
    if "q" in params:
        text = fields.param(params, "q", 64)
        query = query.filter(Q(name__icontains=text) | Q(company__icontains=text))
    return reply(await page(query, params, request.config_dict[keys.CURSORS],
                            _summaries))


async def _summaries(rows: Sequence[Prospect]) -> list[dict[str, Any]]:
    return [show_summary(row) for row in rows]


def moment(value: str, name: str) -> datetime:
    """An ISO 8601 date or time; without an offset it is China time (the sales day's)."""
    try:
        when = datetime.fromisoformat(fields.check_text(value, name, 40))
        # compared in UTC: SQLite compares the stored text, and that is written in UTC
        return (when if when.tzinfo is not None else when.replace(tzinfo=CHINA)).astimezone(UTC)
    except (ValueError, OverflowError):  # not ISO 8601, or out of range once in UTC
        raise fields.invalid(name, "must be an ISO 8601 date or time, e.g. 2026-11-20 or "
                                   "2026-11-20T09:00:00+08:00") from None


async def get_prospect(request: web.Request) -> web.Response:
    prospect_id = fields.parse_id(request.match_info["id"], what="prospect")
    if not await Prospect.exists(id=prospect_id):
        raise NotFound(f"there is no prospect {prospect_id}")
    # a merged-away id answers with its survivor
    prospect = await Prospect.get(id=await current(prospect_id)).select_related(*RELATED)
    return reply(await show_prospect(prospect, request.config_dict[keys.SEALER]))


async def get_timeline(request: web.Request) -> web.Response:
    """Everything the person did across their identities, newest first:
    `{"items": [{"at", "kind", "text", …}], "next": <before> | null}`."""
    fields.only(request.query, ("limit", "before"))
    prospect_id = fields.parse_id(request.match_info["id"], what="prospect")
    if not await Prospect.exists(id=prospect_id):
        raise NotFound(f"there is no prospect {prospect_id}")
    before = request.query.get("before")
    items, after = await timeline(prospect_id, limit_of(request.query),
                                  fields.parse_id(before, "before", "interaction",
                                                  maximum=2**63 - 1)
                                  if before is not None else None)
    return reply({"items": items, "next": after})


def setup_prospect_routes(admin: web.Application) -> None:
    admin.router.add_get("/prospects", list_prospects)
    admin.router.add_get("/prospects/{id}", get_prospect)
    admin.router.add_get("/prospects/{id}/timeline", get_timeline)
