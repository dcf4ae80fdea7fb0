"""Admin routes for codes: issue them, print them, and count what they brought."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from tortoise.functions import Count

from bot import fields, keys
from bot.api import read_json, reply
from bot.errors import BadRequest, NotFound
from models import Code, Interaction, Opportunity, Prospect
from qr.images import code_png
from qr.issuing import CodeIssuer, parse_request

ROOT: web.AppKey[web.Application] = web.AppKey("codes_root")
SCANS = ("event.subscribe", "event.scan", "event.change_external_contact.add_external_contact",
         "event.change_external_contact.add_half_external_contact", "mp.login")
GROUPS = {"code": "id", "campaign": "campaign", "salesperson": "salesperson_id",
          "partner": "partner_id"}


def show_code(code: Code) -> dict[str, Any]:
    shown: dict[str, Any] = {
        "id": code.id, "kind": code.kind.value, "channel": code.channel.value,
        "scene": code.scene, "campaign": code.campaign, "tags": code.tags,
        "salesperson_id": code.salesperson_id,  # type: ignore[attr-defined]
        "partner_id": code.partner_id,  # type: ignore[attr-defined]
        "material_id": code.material_id,  # type: ignore[attr-defined]
        "team": code.team, "serial": code.serial, "batch": code.batch,
        "permanent": code.permanent, "welcome": code.welcome_text,
        "expires_at": code.expires_at.isoformat() if code.expires_at else None,
        "image": f"/admin/codes/{code.id}/image.png",
    }
    if code.channel.value == "oa":
        shown.update(ticket=code.ticket, url=code.url)
    elif code.channel.value == "mp":
        shown.update(page=code.page)
    else:
        shown.update(config_id=code.config_id, qr_code=code.qr_code)
    return shown


async def create_codes(request: web.Request) -> web.Response:
    code_request = parse_request(await read_json(request))
    issuer = CodeIssuer(request.app[ROOT][keys.WECHAT])
    codes = await issuer.issue(code_request)
    if code_request.count == 1:
        return reply(show_code(codes[0]), status=201)
    return reply({"batch": codes[0].batch, "count": len(codes),
                  "codes": [show_code(c) for c in codes]}, status=201)


async def code_image(request: web.Request) -> web.Response:
    code_id = fields.parse_id(request.match_info["id"], what="code")
    code = await Code.get_or_none(id=code_id, ready=True)
    if code is None:
        raise NotFound(f"there is no code {code_id}")
    png = await code_png(code, request.app[ROOT][keys.WECHAT])
    return web.Response(body=png, content_type="image/png",
                        headers={"Cache-Control": "private, max-age=86400"})


async def stats(request: web.Request) -> web.Response:
    """Scans, new follows, prospects and opportunities per code, campaign, salesperson or
    partner."""
    by = request.query.get("by", "code")
    if by not in GROUPS:
        raise BadRequest("`by` must be one of " + ", ".join(GROUPS), code="invalid_field")
    column = GROUPS[by]
    wanted = dict.fromkeys(("id", column))  # by=code: "id" once (tortoise refuses it twice)
    codes = {c["id"]: c[column] for c in await Code.all().values(*wanted)}
    rows: dict[Any, dict[str, Any]] = {}

    def add(code_id: int, **counts: int) -> None:
        if code_id not in codes:
            return  # a code made after `codes` was read: counted on the next call
        target = rows.setdefault(codes[code_id], {by: codes[code_id], "scans": 0, "follows": 0,
                                                  "prospects": 0, "opportunities": 0})
        for name, n in counts.items():
            target[name] += n

    # Grouped by code id and joined here, not filtered by a list of ids: an account may hold
    # more codes than a statement takes parameters.
    for item in await (Interaction.filter(code_id__isnull=False, kind__in=SCANS)
                       .annotate(n=Count("id")).group_by("code_id", "kind")
                       .values("code_id", "kind", "n")):
        add(item["code_id"], scans=item["n"],
            follows=item["n"] if item["kind"] == "event.subscribe" else 0)
    for item in await (Prospect.filter(first_code_id__isnull=False)
                       .annotate(n=Count("id")).group_by("first_code_id")
                       .values("first_code_id", "n")):
        add(item["first_code_id"], prospects=item["n"])
    for item in await (Opportunity.filter(prospect__first_code_id__isnull=False)
                       .annotate(n=Count("id")).group_by("prospect__first_code_id")
                       .values("prospect__first_code_id", "n")):
        add(item["prospect__first_code_id"], opportunities=item["n"])
    return reply(sorted(rows.values(), key=lambda r: (r[by] is None, str(r[by]))))


def setup_code_routes(admin: web.Application, root: web.Application) -> None:
    admin[ROOT] = root
    admin.router.add_post("/codes", create_codes)
    admin.router.add_get("/codes/{id}/image.png", code_image)
    admin.router.add_get("/stats", stats)
