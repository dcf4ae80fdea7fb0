"""Admin routes for codes: issue, list, edit and print them, and count what they brought."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

from aiohttp import web
from tortoise.functions import Count

from bot import fields, keys
from bot.api import read_json, reply
from bot.errors import BadRequest, NotFound
from bot.paging import page
from models import Code, CodeChannel, CodeKind, Interaction, Opportunity, Prospect, Salesperson
from qr.images import code_png
from qr.issuing import CodeIssuer, parse_request

SCANS = ("event.subscribe", "event.scan", "event.change_external_contact.add_external_contact",
         "event.change_external_contact.add_half_external_contact", "mp.login")
GROUPS = {"code": "id", "campaign": "campaign", "salesperson": "owner", "partner": "partner_id"}
RELATED = ("salesperson", "partner", "material", "backup")
# What an edit may change: never the scene or the channel (they are printed and issued).
EDITS: dict[str, fields.Reader] = {
    "welcome": partial(fields.text, limit=600, multiline=True),
    "tags": fields.tags,
    "campaign": partial(fields.text, limit=128),
    "backup_salesperson_id": fields.integer,
}


def show_code(code: Code) -> dict[str, Any]:
    """Every stored field of a code, naming who and what it refers to (fetched with
    `select_related(*RELATED)`)."""
    person, partner, material, backup = code.salesperson, code.partner, code.material, code.backup
    shown: dict[str, Any] = {
        "id": code.id, "kind": code.kind.value, "channel": code.channel.value,
        "scene": code.scene, "campaign": code.campaign, "tags": code.tags,
        "salesperson_id": person.id if person else None,
        "salesperson": person.name if person else None,
        "partner_id": partner.id if partner else None,
        "partner": partner.name if partner else None,
        "material_id": material.id if material else None,
        "material": material.title if material else None,
        "team": code.team,
        "backup_salesperson_id": backup.id if backup else None,
        "backup_salesperson": backup.name if backup else None,
        "serial": code.serial, "batch": code.batch,
        "permanent": code.permanent, "welcome": code.welcome_text,
        "expires_at": code.expires_at.isoformat() if code.expires_at else None,
        "created_at": code.created_at.isoformat(),
        "image": f"/admin/codes/{code.id}/image.png",
    }
    if code.channel.value == "oa":
        shown.update(ticket=code.ticket, url=code.url)
    elif code.channel.value == "mp":
        shown.update(page=code.page)
    else:
        shown.update(config_id=code.config_id, qr_code=code.qr_code)
    return shown


async def _shown(codes: Sequence[Code]) -> list[dict[str, Any]]:
    return [show_code(code) for code in codes]


async def create_codes(request: web.Request) -> web.Response:
    code_request = parse_request(await read_json(request))
    issued = await CodeIssuer(request.config_dict[keys.WECHAT]).issue(code_request)
    codes = await Code.filter(id__in=[c.id for c in issued]).order_by("id").select_related(
        *RELATED)
    if code_request.count == 1:
        return reply(show_code(codes[0]), status=201)
    return reply({"batch": codes[0].batch, "count": len(codes), "codes": await _shown(codes)},
                 status=201)


async def list_codes(request: web.Request) -> web.Response:
    params = request.query
    fields.only(params, ("kind", "channel", "campaign", "batch", "limit", "cursor"))
    query = Code.filter(ready=True).select_related(*RELATED)
    if "kind" in params:
        query = query.filter(kind=fields.choice(params, "kind", CodeKind))
    if "channel" in params:
        query = query.filter(channel=fields.choice(params, "channel", CodeChannel))
    if "campaign" in params:
        query = query.filter(campaign=fields.param(params, "campaign", 128))
    if "batch" in params:
        query = query.filter(batch=fields.param(params, "batch", 32))
    return reply(await page(query, params, request.config_dict[keys.CURSORS], _shown))


async def edit_code(request: web.Request) -> web.Response:
    """The welcome text, tags, campaign and backup; scans from now on use them (other processes
    within a minute, as they cache codes that long)."""
    code_id = fields.parse_id(request.match_info["id"], what="code")
    code = await Code.get_or_none(id=code_id, ready=True)
    if code is None:
        raise NotFound(f"there is no code {code_id}")
    values = fields.read_form(await read_json(request), EDITS, partial=True, not_null=("tags",))
    columns = {"welcome": "welcome_text", "tags": "tags", "campaign": "campaign",
               "backup_salesperson_id": "backup_id"}
    backup_id = values.get("backup_salesperson_id")
    if backup_id is not None and not await Salesperson.exists(id=backup_id):
        raise NotFound(f"there is no salesperson {backup_id}", code="unknown_salesperson")
    await Code.filter(id=code.id).update(**{columns[name]: value for name, value in values.items()})
    request.config_dict[keys.ATTRIBUTION].forget(code.id)
    return reply(show_code(await Code.get(id=code.id).select_related(*RELATED)))


async def code_image(request: web.Request) -> web.Response:
    code_id = fields.parse_id(request.match_info["id"], what="code")
    code = await Code.get_or_none(id=code_id, ready=True)
    if code is None:
        raise NotFound(f"there is no code {code_id}")
    png = await code_png(code, request.config_dict[keys.WECHAT])
    return web.Response(body=png, content_type="image/png",
                        headers={"Cache-Control": "private, max-age=86400"})


# --- statistics --------------------------------------------------------------------------------

Counts = dict[str, int]


def _counts() -> Counts:
    return {"scans": 0, "follows": 0, "prospects": 0, "opportunities": 0}


async def stats(request: web.Request) -> web.Response:
    """Scans, new follows, prospects and opportunities per code, campaign or partner (what the
    codes brought), or per salesperson (who got them: the prospects' owner, and an
    `unassigned` row)."""
    fields.only(request.query, ("by",))
    by = request.query.get("by", "code")
    if by not in GROUPS:
        raise BadRequest("`by` must be one of " + ", ".join(GROUPS), code="invalid_field")
    rows = await (by_owner() if by == "salesperson" else by_code(by))
    return reply(rows)


async def by_code(by: str) -> list[dict[str, Any]]:
    column = GROUPS[by]
    codes = {c["id"]: c for c in await Code.all().values(
        *dict.fromkeys(("id", column, "kind", "channel", "campaign", "serial", "batch")))}
    rows: dict[Any, dict[str, Any]] = {}

    def add(code_id: int, **counts: int) -> None:
        code = codes.get(code_id)
        if code is None:
            return  # a code made after `codes` was read: counted on the next call
        key = code[column]
        if key not in rows:
            about = ({"kind": code["kind"], "channel": code["channel"],
                      "campaign": code["campaign"], "serial": code["serial"],
                      "batch": code["batch"]} if by == "code" else {})
            rows[key] = {by: key, **about, **_counts()}
        for name, n in counts.items():
            rows[key][name] += n

    # Grouped by code id and joined here, not filtered by a list of ids: an account may hold
    # more codes than a statement takes parameters.
    for item in await (Interaction.filter(code_id__isnull=False, kind__in=SCANS)
                       .annotate(n=Count("id")).group_by("code_id", "kind")
                       .values("code_id", "kind", "n")):
        add(item["code_id"], scans=item["n"],
            follows=item["n"] if item["kind"] == "event.subscribe" else 0)
    for item in await (Prospect.filter(first_code_id__isnull=False, merged_into_id=None)
                       .annotate(n=Count("id")).group_by("first_code_id")
                       .values("first_code_id", "n")):
        add(item["first_code_id"], prospects=item["n"])
    for item in await (Opportunity.filter(prospect__first_code_id__isnull=False)
                       .annotate(n=Count("id")).group_by("prospect__first_code_id")
                       .values("prospect__first_code_id", "n")):
        add(item["prospect__first_code_id"], opportunities=item["n"])
    return sorted(rows.values(), key=lambda r: (r[by] is None, str(r[by])))


async def by_owner() -> list[dict[str, Any]]:
    """Per salesperson who got the prospects (their owner), whatever code brought them, and
    the prospects nobody got: every prospect counts, a follow without any code too."""
    counts: dict[int | None, Counts] = {}

    def add(owner: int | None, **more: int) -> None:
        row = counts.setdefault(owner, _counts())
        for name, n in more.items():
            row[name] += n

    for item in await (Interaction.filter(code_id__isnull=False, kind__in=SCANS,
                                          prospect_id__isnull=False)
                       .annotate(n=Count("id")).group_by("prospect__owner_id", "kind")
                       .values("prospect__owner_id", "kind", "n")):
        add(item["prospect__owner_id"], scans=item["n"],
            follows=item["n"] if item["kind"] == "event.subscribe" else 0)
    for item in await (Prospect.filter(merged_into_id=None).annotate(n=Count("id"))
                       .group_by("owner_id").values("owner_id", "n")):
        add(item["owner_id"], prospects=item["n"])
    for item in await (Opportunity.all().annotate(n=Count("id")).group_by("salesperson_id")
                       .values("salesperson_id", "n")):
        add(item["salesperson_id"], opportunities=item["n"])
    names = dict(await Salesperson.filter(
        id__in=[k for k in counts if k is not None]).values_list("id", "name"))
    rows = [{"salesperson_id": owner, "salesperson": names.get(owner, "unassigned")
             if owner is not None else "unassigned", **row}
            for owner, row in counts.items()]
    return sorted(rows, key=lambda r: (r["salesperson_id"] is None, r["salesperson_id"] or 0))


def setup_code_routes(admin: web.Application) -> None:
    admin.router.add_post("/codes", create_codes)
    admin.router.add_get("/codes", list_codes)
    admin.router.add_patch("/codes/{id}", edit_code)
    admin.router.add_get("/codes/{id}/image.png", code_image)
    admin.router.add_get("/stats", stats)
