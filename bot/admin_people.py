"""Admin routes for the company's side: salespeople, partners and materials — create, list,
edit — and a leaving salesperson's handover."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

from aiohttp import web
from tortoise.exceptions import IntegrityError
from tortoise.models import Model

from bot import fields, keys
from bot.api import read_json, reply
from bot.errors import Conflict, NotFound
from bot.paging import page
from domain import content
from domain.ownership import handover
from models import Material, MaterialKind, Partner, Salesperson

MAX_DAILY_CAP = 10_000
MATERIAL_PAGE = "pages/material/index"  # the mini-program page that shows a material

SALESPERSON: dict[str, fields.Reader] = {
    "name": partial(fields.text, limit=64, required=True),
    "team": partial(fields.text, limit=64),
    "oa_openid": partial(fields.text, limit=64),
    "wecom_userid": partial(fields.text, limit=64),
    "daily_cap": partial(fields.integer, default=50, low=0, high=MAX_DAILY_CAP),
    "active": partial(fields.boolean, default=True),
}
PARTNER: dict[str, fields.Reader] = {
    "name": partial(fields.text, limit=128, required=True),
    "tags": fields.tags,
    "salesperson_id": fields.integer,  # who looks after the partner: gets its opportunities
}
MATERIAL: dict[str, fields.Reader] = {
    "title": partial(fields.text, limit=200, required=True),
    "kind": partial(fields.choice, enum=MaterialKind),
    "url": fields.url,
    "tags": fields.tags,
}
NOT_NULL = ("daily_cap", "active", "tags", "kind")


def show_salesperson(person: Salesperson) -> dict[str, Any]:
    return {"id": person.id, "name": person.name, "team": person.team,
            "oa_openid": person.oa_openid, "wecom_userid": person.wecom_userid,
            "daily_cap": person.daily_cap, "active": person.active,
            "created_at": person.created_at.isoformat()}


def show_partner(partner: Partner) -> dict[str, Any]:
    return {"id": partner.id, "name": partner.name, "tags": partner.tags,
            "salesperson_id": partner.salesperson_id,  # type: ignore[attr-defined]
            "created_at": partner.created_at.isoformat()}


async def _contact(values: dict[str, Any]) -> dict[str, Any]:
    """A partner's contact salesperson must exist."""
    contact = values.get("salesperson_id")
    if contact is not None and not await Salesperson.exists(id=contact):
        raise NotFound(f"there is no salesperson {contact}", code="unknown_salesperson")
    return values


def show_material(material: Material) -> dict[str, Any]:
    return {"id": material.id, "title": material.title, "kind": material.kind.value,
            "url": material.url, "tags": material.tags,
            "created_at": material.created_at.isoformat()}


async def _shown(rows: Sequence[Any], show: Any) -> list[dict[str, Any]]:
    return [show(row) for row in rows]


async def _save(model: type[Model], values: Mapping[str, Any],
                instance: Model | None = None) -> Any:
    """Creates, or updates `instance` with, `values`; a taken WeChat id is a 409."""
    try:
        if instance is None:
            return await model.create(**values)
        instance.update_from_dict(dict(values))
        await instance.save(update_fields=list(values))
        return instance
    except IntegrityError:
        raise Conflict("another salesperson has this oa_openid or wecom_userid",
                       code="duplicate_salesperson") from None


async def _get(model: type[Model], request: web.Request, what: str) -> Any:
    found = await model.get_or_none(id=fields.parse_id(request.match_info["id"], what=what))
    if found is None:
        raise NotFound(f"there is no {what} {request.match_info['id']}")
    return found


# --- salespeople ------------------------------------------------------------------------------

async def create_salesperson(request: web.Request) -> web.Response:
    values = fields.read_form(await read_json(request), SALESPERSON, not_null=NOT_NULL)
    return reply(show_salesperson(await _save(Salesperson, values)), status=201)


async def edit_salesperson(request: web.Request) -> web.Response:
    person = await _get(Salesperson, request, "salesperson")
    values = fields.read_form(await read_json(request), SALESPERSON, partial=True,
                              not_null=NOT_NULL)
    return reply(show_salesperson(await _save(Salesperson, values, person)))


async def list_salespeople(request: web.Request) -> web.Response:
    fields.only(request.query, ("team", "active", "limit", "cursor"))
    query = Salesperson.all()
    if "team" in request.query:
        query = query.filter(team=fields.param(request.query, "team", 64))
    if "active" in request.query:
        query = query.filter(active=fields.flag(request.query["active"], "active"))
    return reply(await page(query, request.query, request.config_dict[keys.CURSORS],
                            partial(_shown, show=show_salesperson)))


async def hand_over(request: web.Request) -> web.Response:
    """A leaving salesperson's prospects and open opportunities go to `to_salesperson_id`."""
    person = await _get(Salesperson, request, "salesperson")
    data = await read_json(request)
    fields.only(data, ("to_salesperson_id",))
    to_id = fields.integer(data, "to_salesperson_id")
    if to_id is None:
        raise fields.invalid("to_salesperson_id", "is required", "missing_field")
    receiver = await Salesperson.get_or_none(id=to_id)
    if receiver is None:
        raise NotFound(f"there is no salesperson {to_id}", code="unknown_salesperson")
    if receiver.id == person.id or not receiver.active:
        raise Conflict("hand over to another, active salesperson", code="invalid_handover")
    moved = await handover(person, receiver, request.config_dict[keys.LEADS].messaging)
    if moved.pushed:
        request.config_dict[keys.SENDER].kick()
    return reply({"moved": moved.prospects, "prospects": moved.prospects,
                  "opportunities": moved.opportunities, "pushed": moved.pushed,
                  "from": show_salesperson(person), "to": show_salesperson(receiver)})


# --- partners and materials -------------------------------------------------------------------

async def create_partner(request: web.Request) -> web.Response:
    values = await _contact(fields.read_form(await read_json(request), PARTNER,
                                             not_null=NOT_NULL))
    return reply(show_partner(await Partner.create(**values)), status=201)


async def edit_partner(request: web.Request) -> web.Response:
    partner = await _get(Partner, request, "partner")
    values = await _contact(fields.read_form(await read_json(request), PARTNER, partial=True,
                                             not_null=NOT_NULL))
    await _save(Partner, values, partner)
    request.config_dict[keys.ATTRIBUTION].forget_all()  # its codes' scans give its tags
    return reply(show_partner(partner))


async def list_partners(request: web.Request) -> web.Response:
    fields.only(request.query, ("limit", "cursor"))
    return reply(await page(Partner.all(), request.query, request.config_dict[keys.CURSORS],
                            partial(_shown, show=show_partner)))


async def create_material(request: web.Request) -> web.Response:
    values = fields.read_form(await read_json(request), MATERIAL, not_null=NOT_NULL)
    return reply(show_material(await Material.create(**values)), status=201)


async def edit_material(request: web.Request) -> web.Response:
    material = await _get(Material, request, "material")
    values = fields.read_form(await read_json(request), MATERIAL, partial=True,
                              not_null=NOT_NULL)
    await _save(Material, values, material)
    request.config_dict[keys.ATTRIBUTION].forget_all()  # its codes' scans give its tags
    return reply(show_material(material))


async def list_materials(request: web.Request) -> web.Response:
    fields.only(request.query, ("kind", "limit", "cursor"))
    query = Material.all()
    if "kind" in request.query:
        query = query.filter(kind=fields.choice(request.query, "kind", MaterialKind))
    return reply(await page(query, request.query, request.config_dict[keys.CURSORS],
                            partial(_shown, show=show_material)))


async def create_share(request: web.Request) -> web.Response:
    """A salesperson's share of a material: what their card sends (the same one each time)."""
    data = await read_json(request)
    fields.only(data, ("material_id", "salesperson_id"))
    ids = {name: fields.integer(data, name) for name in ("material_id", "salesperson_id")}
    for name, value in ids.items():
        if value is None:
            raise fields.invalid(name, "is required", "missing_field")
    material = await Material.get_or_none(id=ids["material_id"])
    if material is None:
        raise NotFound(f"there is no material {ids['material_id']}", code="unknown_material")
    person = await Salesperson.get_or_none(id=ids["salesperson_id"])
    if person is None:
        raise NotFound(f"there is no salesperson {ids['salesperson_id']}",
                       code="unknown_salesperson")
    share = await content.salesperson_share(material, person)
    token = request.config_dict[keys.SHARES].issue(share.id)
    return reply({"share": token, "page": f"{MATERIAL_PAGE}?id={material.id}&share={token}",
                  "material": show_material(material), "salesperson": show_salesperson(person)},
                 status=201)


def setup_people_routes(admin: web.Application) -> None:
    admin.router.add_post("/salespeople", create_salesperson)
    admin.router.add_get("/salespeople", list_salespeople)
    admin.router.add_patch("/salespeople/{id}", edit_salesperson)
    admin.router.add_post("/salespeople/{id}/handover", hand_over)
    admin.router.add_post("/partners", create_partner)
    admin.router.add_get("/partners", list_partners)
    admin.router.add_patch("/partners/{id}", edit_partner)
    admin.router.add_post("/materials", create_material)
    admin.router.add_get("/materials", list_materials)
    admin.router.add_patch("/materials/{id}", edit_material)
    admin.router.add_post("/shares", create_share)
