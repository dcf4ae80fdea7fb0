"""The admin API: marketing ops configure people and codes, and look at what the callbacks stored.

Every call carries `Authorization: Bearer $SCRM_ADMIN_TOKEN`; without the setting, every call is
refused. Phone numbers only ever leave masked.
"""

from __future__ import annotations

import hmac
import re
from typing import Any

from aiohttp import web
from tortoise.exceptions import IntegrityError

from bot import fields, keys
from bot.admin_codes import setup_code_routes
from bot.api import Handler, bearer, read_json, reply
from bot.errors import BadRequest, Conflict, NotFound, Unauthorized
from bot.privacy import Sealer, ascii_digits, mask_phone, normalize_phone
from handlers.prospects import Prospects
from models import (
    Identity,
    IdentityKind,
    Interaction,
    Material,
    MaterialKind,
    Opportunity,
    OutboundMessage,
    Partner,
    Prospect,
    Salesperson,
)

ROOT: web.AppKey[web.Application] = web.AppKey("root")


@web.middleware
async def admin_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    expected = request.app[ROOT][keys.SETTINGS].admin_token
    given = bearer(request)
    if not expected:
        raise Unauthorized("the admin API is disabled: SCRM_ADMIN_TOKEN is not configured")
    if given is None or not hmac.compare_digest(given.encode(), expected.encode()):
        raise Unauthorized("a valid admin bearer token is required")
    return await handler(request)


MAX_DAILY_CAP = 10_000


async def create_salesperson(request: web.Request) -> web.Response:
    data = await read_json(request)
    fields.only(data, ("name", "oa_openid", "wecom_userid", "team", "daily_cap"))
    try:
        person = await Salesperson.create(
            name=fields.text(data, "name", required=True, limit=64),
            oa_openid=fields.text(data, "oa_openid", limit=64),
            wecom_userid=fields.text(data, "wecom_userid", limit=64),
            team=fields.text(data, "team", limit=64),
            daily_cap=fields.integer(data, "daily_cap", 50, low=0, high=MAX_DAILY_CAP))
    except IntegrityError:
        raise Conflict("another salesperson has this oa_openid or wecom_userid",
                       code="duplicate_salesperson") from None
    return reply({"id": person.id, "name": person.name, "team": person.team,
                  "oa_openid": person.oa_openid, "wecom_userid": person.wecom_userid,
                  "daily_cap": person.daily_cap, "active": person.active}, status=201)


async def create_partner(request: web.Request) -> web.Response:
    data = await read_json(request)
    fields.only(data, ("name", "tags"))
    partner = await Partner.create(name=fields.text(data, "name", required=True, limit=128),
                                   tags=fields.tags(data))
    return reply({"id": partner.id, "name": partner.name, "tags": partner.tags}, status=201)


async def create_material(request: web.Request) -> web.Response:
    data = await read_json(request)
    fields.only(data, ("title", "kind", "url", "tags"))
    material = await Material.create(
        title=fields.text(data, "title", required=True, limit=200),
        kind=fields.choice(data, "kind", MaterialKind), url=fields.url(data, "url"),
        tags=fields.tags(data))
    return reply({"id": material.id, "title": material.title, "kind": material.kind.value,
                  "url": material.url, "tags": material.tags}, status=201)


def show_identity(identity: Identity, sealer: Sealer) -> dict[str, str]:
    if identity.kind == IdentityKind.PHONE:
        phone = sealer.unseal(identity.sealed or "") or ""
        return {"kind": identity.kind.value, "value": mask_phone(phone) if phone else "****"}
    return {"kind": str(identity.kind.value), "value": identity.value}


async def show_prospect(prospect: Prospect, sealer: Sealer) -> dict[str, Any]:
    identities = await Identity.filter(prospect_id=prospect.id).order_by("id")
    interactions = await Interaction.filter(prospect_id=prospect.id).count()
    return {
        "id": prospect.id,
        "name": prospect.name,
        "company": prospect.company,
        "title": prospect.title,
        "identities": [show_identity(i, sealer) for i in identities],
        "tags": prospect.tags,
        "owner": {"salesperson_id": prospect.owner_id,  # type: ignore[attr-defined]
                  "partner_id": prospect.partner_id},  # type: ignore[attr-defined]
        "score": {"profile": prospect.profile_score, "behavior": prospect.behavior_score,
                  "total": prospect.profile_score + prospect.behavior_score},
        "interactions": interactions,
        "created_at": prospect.created_at.isoformat(),
    }


IDENTITY_LIMIT = 128
PHONE_TEXT = re.compile(r"[\d\s.+()\-]+")


async def find_prospects(request: web.Request) -> web.Response:
    raw = request.query.get("identity", "")
    kind, sep, value = raw.partition(":")
    if not sep or not value or kind not in {k.value for k in IdentityKind}:
        raise BadRequest("`identity` must be KIND:VALUE, KIND one of "
                         + ", ".join(k.value for k in IdentityKind), code="invalid_identity")
    value = fields.check_text(value, "identity", IDENTITY_LIMIT)
    if kind == IdentityKind.PHONE and (not PHONE_TEXT.fullmatch(ascii_digits(value))
                                       or not 5 <= len(normalize_phone(value)) <= 20):
        raise BadRequest("a phone identity is 5 to 20 digits, with spaces, dashes, dots, "
                         "brackets or a leading + at most", code="invalid_identity")
    root = request.app[ROOT]
    prospects: Prospects = root[keys.PROSPECTS]
    prospect_id = await prospects.find(IdentityKind(kind), value)
    prospect = None if prospect_id is None else await Prospect.get_or_none(id=prospect_id)
    found = [] if prospect is None else [await show_prospect(prospect, root[keys.SEALER])]
    return reply(found)


async def get_prospect(request: web.Request) -> web.Response:
    prospect_id = fields.parse_id(request.match_info["id"], what="prospect")
    prospect = await Prospect.get_or_none(id=prospect_id)
    if prospect is None:
        raise NotFound(f"there is no prospect {prospect_id}")
    return reply(await show_prospect(prospect, request.app[ROOT][keys.SEALER]))


async def list_opportunities(request: web.Request) -> web.Response:
    query = Opportunity.all().order_by("-id")
    if "salesperson_id" in request.query:
        query = query.filter(salesperson_id=fields.parse_id(request.query["salesperson_id"],
                                                            "salesperson_id", "salesperson"))
    opportunities = await query.limit(500)
    first_message: dict[int, OutboundMessage] = {}
    for message in await OutboundMessage.filter(
            opportunity_id__in=[o.id for o in opportunities]).order_by("-id"):
        first_message[message.opportunity_id] = message  # type: ignore[attr-defined]
    found = []
    for opportunity in opportunities:
        message = first_message.get(opportunity.id)
        found.append({
            "id": opportunity.id, "prospect_id": opportunity.prospect_id,  # type: ignore[attr-defined]
            "salesperson_id": opportunity.salesperson_id,  # type: ignore[attr-defined]
            "score": opportunity.score, "status": opportunity.status,
            "reason": opportunity.reason, "created_at": opportunity.created_at.isoformat(),
            "push": None if message is None else {"channel": message.channel,
                                                  "status": message.status.value},
        })
    return reply(found)


def create_admin_app(root: web.Application) -> web.Application:
    app = web.Application(middlewares=[admin_auth])
    app[ROOT] = root
    app.router.add_post("/salespeople", create_salesperson)
    app.router.add_post("/partners", create_partner)
    app.router.add_post("/materials", create_material)
    app.router.add_get("/prospects", find_prospects)
    app.router.add_get("/prospects/{id}", get_prospect)
    app.router.add_get("/opportunities", list_opportunities)
    setup_code_routes(app, root)
    return app
