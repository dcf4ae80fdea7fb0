"""Actions a prospect takes in the mini-program that the scoring rules may count — a demo or a
pricing request, a webinar sign-up or attendance, a form — each stored as an interaction
(`mp.action`) like every other signal. A form's fields may be personal: they are taken only
from someone whose consent is recorded, kept sealed, and erased when it is withdrawn."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from aiohttp import web

from bot import fields, keys
from bot.api import read_json, reply
from bot.errors import Conflict, NotFound
from bot.signals import Signal
from miniprogram_api.people import visitor
from models import Material

KINDS = ("demo_request", "pricing_request", "webinar_signup", "webinar_attend", "form_submit")
MAX_FIELDS, VALUE_LIMIT = 20, 500
FIELD_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,31}")


def form_fields(data: dict[str, Any]) -> dict[str, Any] | None:
    """The `fields` of an action: at most 20, each named like an identifier, each value a short
    text, a number or true/false."""
    value = data.get("fields")
    if value is None:
        return None
    if not isinstance(value, dict):
        raise fields.invalid("fields", "must be an object")
    if len(value) > MAX_FIELDS:
        raise fields.invalid("fields", f"holds more than {MAX_FIELDS} fields")
    checked: dict[str, Any] = {}
    for name, item in value.items():
        if not FIELD_NAME.fullmatch(name):
            raise fields.invalid("fields", f"has a field named {fields.shown(name)}: names are "
                                           "letters, digits and _, at most 32")
        if isinstance(item, str):
            checked[name] = fields.check_text(item, f"fields.{name}", VALUE_LIMIT,
                                              multiline=True)
            if not checked[name]:
                raise fields.invalid(f"fields.{name}", "must not be blank (leave it out)")
        elif item is None or isinstance(item, bool) or (
                isinstance(item, int | float) and abs(item) < 1e15):
            checked[name] = item
        else:
            raise fields.invalid(f"fields.{name}", "must be text, a number or true/false")
    return checked


async def act(request: web.Request) -> web.Response:
    viewer = await visitor(request)
    data = await read_json(request)
    fields.only(data, ("kind", "material_id", "fields"))
    kind = data.get("kind")
    if kind not in KINDS:
        raise fields.invalid("kind", "must be one of " + ", ".join(KINDS))
    material_id = fields.integer(data, "material_id")
    if material_id is not None and not await Material.exists(id=material_id):
        raise NotFound(f"there is no material {material_id}", code="unknown_material")
    given = form_fields(data)
    payload: dict[str, Any] = {"prospect_id": viewer.id, "action": kind,
                               "material_id": material_id}
    if given:  # what a form says may be personal: kept only with consent, and sealed
        if viewer.consent_version is None:
            raise Conflict("record the person's consent first (POST /mp/profile with "
                           "consent_version) to send a form's fields", code="consent_required")
        payload["sealed"] = request.config_dict[keys.SEALER].seal(
            json.dumps(given, ensure_ascii=False))
    signal = Signal(source="mp", kind="mp.action", dedup_key=f"mp.action:{uuid.uuid4().hex}",
                    actor=request["session"].openid, scene=None, fields=payload)
    received = await request.config_dict[keys.INGEST].receive(signal, wait=0)
    return reply({"id": received.interaction_id}, status=201)


def setup_action_routes(app: web.Application) -> None:
    app.router.add_post("/actions", act)
