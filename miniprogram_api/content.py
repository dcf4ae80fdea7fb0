"""Content in the mini-program: a material as a reader sees it (with the card of whoever shared
it, and a share of their own for passing it on), and reads timed by the server."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from bot import fields, keys
from bot.api import read_json, reply
from bot.beats import Beat
from bot.errors import NotFound
from bot.signals import Signal
from domain import content
from domain.merging import family
from miniprogram_api.people import visitor
from models import Material, Prospect, Read, Salesperson, Share

ACTIONS = ("open", "heartbeat", "close")


def card(person: Salesperson | None) -> dict[str, Any] | None:
    """A salesperson's card, as their shares show it."""
    if person is None or not person.active:
        return None
    return {"salesperson_id": person.id, "name": person.name, "team": person.team,
            "wecom_userid": person.wecom_userid}


async def _share(request: web.Request, token: str | None,
                 material_id: int) -> Share | None:
    """The share a token names, if it is genuine and of this material; otherwise none (the
    view or read still counts, without a sharer)."""
    share_id = request.config_dict[keys.SHARES].read(token)
    if share_id is None:
        return None
    return await Share.get_or_none(id=share_id, material_id=material_id)


async def _material(raw: str) -> Material:
    material_id = fields.parse_id(raw, "id", "material")
    material = await Material.get_or_none(id=material_id)
    if material is None:
        raise NotFound(f"there is no material {material_id}", code="unknown_material")
    return material


async def view_material(request: web.Request) -> web.Response:
    viewer = await visitor(request)  # the session first: a token naming nobody is a 401
    fields.only(request.query, ("share",))
    material = await _material(request.match_info["id"])
    came_through = await _share(request, request.query.get("share"), material.id)
    shared_by, sales_card = None, None
    if came_through is not None:
        links = await content.chain(came_through)
        root = links[-1]
        person = (await Salesperson.get_or_none(id=root.salesperson_id)  # type: ignore[attr-defined]
                  if root.salesperson_id else None)  # type: ignore[attr-defined]
        sales_card = card(person)
        if came_through.salesperson_id is not None:  # type: ignore[attr-defined]
            shared_by = {"kind": "salesperson", "name": person.name if person else None,
                         "salesperson_id": came_through.salesperson_id}  # type: ignore[attr-defined]
        else:  # a reader passing it on: not named to others
            shared_by = {"kind": "prospect", "name": None, "hops": len(links) - 1}
    own = await content.reader_share(material.id, viewer.id, came_through)
    return reply({"id": material.id, "title": material.title, "kind": material.kind.value,
                  "url": material.url, "tags": material.tags, "shared_by": shared_by,
                  "card": sales_card, "share": request.config_dict[keys.SHARES].issue(own.id)})


async def read(request: web.Request) -> web.Response:
    """`open` starts a read (its id back); `heartbeat` and `close` name it. Seconds are the
    server's own count; progress only rises; a read closed twice counts once."""
    data = await read_json(request)
    fields.only(data, ("material_id", "action", "read_id", "progress", "share"))
    action = data.get("action")
    if action not in ACTIONS:
        raise fields.invalid("action", "must be one of " + ", ".join(ACTIONS))
    progress = data.get("progress")
    if progress is not None and (isinstance(progress, bool)
                                 or not isinstance(progress, int | float)
                                 or not 0.0 <= progress <= 1.0):
        raise fields.invalid("progress", "must be a number from 0.0 to 1.0")
    read_id = fields.integer(data, "read_id", high=2**62)
    now = datetime.now(UTC)
    if action == "open":
        return reply(await _open(request, data, await visitor(request), now, progress))
    if read_id is None:
        raise fields.invalid("read_id", "is required to " + str(action), "missing_field")
    if action == "heartbeat" and await request.config_dict[keys.BEATS].beat(
            Beat(read_id, request["session"].prospect_id, progress, now)):
        return reply({"read_id": read_id})  # the usual heartbeat: one shared UPDATE
    # a close, or a read the fast path did not take (closed, of a merged record, or none)
    viewer = await visitor(request)
    read_row = await Read.get_or_none(id=read_id, prospect_id__in=await family(viewer.id))
    if read_row is None:  # not theirs, or not at all
        raise NotFound(f"there is no read {read_id} of yours", code="unknown_read")
    if read_row.closed_at is None:
        before = read_row.seen_at
        content.advance(read_row, now, progress)
        if action == "close":  # the finished read is stored first (once, whatever retries
            # come), then the read closed: a failure between the two is mended by a retry or
            # by the worker closing it, never lost
            await request.config_dict[keys.INGEST].receive(await content.finished(read_row),
                                                           wait=0)
        await content.save_progress(read_row, before, closing=action == "close")
    return reply({"read_id": read_row.id})


async def _open(request: web.Request, data: dict[str, Any], viewer: Prospect, now: datetime,
                progress: float | None) -> dict[str, Any]:
    material_id = fields.integer(data, "material_id")
    if material_id is None:
        raise fields.invalid("material_id", "is required", "missing_field")
    if not await Material.exists(id=material_id):
        raise NotFound(f"there is no material {material_id}", code="unknown_material")
    share_token = fields.text(data, "share", limit=64)
    came_through = await _share(request, share_token, material_id)
    started = await Read.create(prospect_id=viewer.id, material_id=material_id,
                                share=came_through, opened_at=now, seen_at=now,
                                progress=progress or 0.0)
    if came_through is not None and came_through.prospect_id not in (None, viewer.id):  # type: ignore[attr-defined]
        # a reader passed it on: that is something the sharer did
        await request.config_dict[keys.INGEST].receive(Signal(
            source="mp", kind="mp.forward",
            dedup_key=f"forward:{came_through.id}:{viewer.id}", actor=None, scene=None,
            fields={"prospect_id": came_through.prospect_id, "material_id": material_id,  # type: ignore[attr-defined]
                    "share_id": came_through.id, "to_prospect_id": viewer.id}), wait=0)
    return {"read_id": started.id}


def setup_content_routes(app: web.Application) -> None:
    app.router.add_get("/materials/{id}", view_material)
    app.router.add_post("/reads", read)
