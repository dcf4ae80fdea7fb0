"""Issuing codes: validate, ask WeChat, store — all or nothing.

A code's scene is a short random token mapped in the database, so nobody can forge attribution
by guessing a salesperson's id. One alphabet fits all three channels: OA `scene_str` (≤ 64),
mini-program `scene` (≤ 32 of a restricted set) and WeCom `state` (≤ 30).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import string
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.transactions import in_transaction

from bot import fields
from bot.errors import BadRequest, Conflict, NotFound, WeChatAPIError
from bot.wechat import WeChat
from models import (
    Code,
    CodeArtwork,
    CodeChannel,
    CodeKind,
    Material,
    Partner,
    Salesperson,
)

log = logging.getLogger(__name__)
SCENE_ALPHABET = string.ascii_letters + string.digits
SCENE_LENGTH = 12  # 71 bits: not guessable, well inside every channel's limit
PERMANENT_OA_LIMIT = 100_000
PERMANENT_EXHAUSTED = 45029  # WeChat's "qrcode count out of limit" (codes made elsewhere count)
MAX_TEMPORARY_DAYS = 30
DEFAULT_PAGE = "pages/index/index"
MAX_BATCH = 10_000
CHUNK = 200


def new_scene() -> str:
    return "".join(secrets.choice(SCENE_ALPHABET) for _ in range(SCENE_LENGTH))


@dataclass
class CodeRequest:
    kind: CodeKind
    channel: CodeChannel
    campaign: str | None = None
    salesperson_id: int | None = None
    partner_id: int | None = None
    material_id: int | None = None
    team: str | None = None
    backup_id: int | None = None
    tags: list[str] = field(default_factory=list)
    permanent: bool = False
    expire_days: int = MAX_TEMPORARY_DAYS
    welcome: str | None = None
    page: str = DEFAULT_PAGE
    count: int = 1


FIELDS = ("kind", "channel", "campaign", "salesperson_id", "partner_id", "material_id", "team",
          "backup_salesperson_id", "tags", "permanent", "expire_days", "welcome", "page", "count")


def parse_request(data: dict[str, Any]) -> CodeRequest:
    """A code request from JSON, or a 400 naming what is wrong."""
    fields.only(data, FIELDS)
    request = CodeRequest(
        kind=fields.choice(data, "kind", CodeKind, code="invalid_kind"),
        channel=fields.choice(data, "channel", CodeChannel, code="invalid_channel"),
        campaign=fields.text(data, "campaign", limit=128),
        salesperson_id=fields.integer(data, "salesperson_id"),
        partner_id=fields.integer(data, "partner_id"),
        material_id=fields.integer(data, "material_id"),
        team=fields.text(data, "team", limit=64),
        backup_id=fields.integer(data, "backup_salesperson_id"),
        tags=fields.tags(data),
        permanent=fields.boolean(data, "permanent"),
        expire_days=fields.integer(data, "expire_days", MAX_TEMPORARY_DAYS,
                                   high=MAX_TEMPORARY_DAYS) or MAX_TEMPORARY_DAYS,
        welcome=fields.text(data, "welcome", limit=600, multiline=True),
        page=fields.text(data, "page", limit=256) or DEFAULT_PAGE,
        count=fields.integer(data, "count", 1, high=MAX_BATCH) or 1,
    )
    needs = {
        CodeKind.SALESPERSON: "salesperson_id",
        CodeKind.PARTNER: "partner_id",
        CodeKind.MATERIAL: "material_id",
        CodeKind.BOOTH: "campaign",
    }
    if getattr(request, needs[request.kind]) is None:
        raise BadRequest(
            f"a {request.kind.value} code needs `{needs[request.kind]}`",
            code="missing_field",
        )
    if request.kind is CodeKind.BOOTH and not (request.salesperson_id or request.team):
        raise BadRequest(
            "a booth code needs `salesperson_id` or a booth `team`",
            code="missing_field",
        )
    if request.count > 1 and request.kind is not CodeKind.MATERIAL:
        raise BadRequest(
            "only material codes come in batches (`count` > 1)", code="invalid_field"
        )
    if request.permanent and request.channel is not CodeChannel.OA:
        raise BadRequest(
            "`permanent` applies to OA codes (mini-program and WeCom codes do not "
            "expire)",
            code="invalid_field",
        )
    return request


@dataclass
class Refs:
    salesperson: Salesperson | None = None
    partner: Partner | None = None
    material: Material | None = None
    backup: Salesperson | None = None
    wecom_users: list[str] = field(default_factory=list)


async def _get(model: Any, pk: int | None, what: str) -> Any:
    if pk is None:
        return None
    found = await model.get_or_none(id=pk)
    if found is None:
        raise NotFound(
            f"there is no {what} {pk}", code=f"unknown_{what.replace(' ', '_')}"
        )
    return found


async def resolve_refs(request: CodeRequest) -> Refs:
    refs = Refs(
        salesperson=await _get(Salesperson, request.salesperson_id, "salesperson"),
        partner=await _get(Partner, request.partner_id, "partner"),
        material=await _get(Material, request.material_id, "material"),
        backup=await _get(Salesperson, request.backup_id, "salesperson"),
    )
    if (
        request.team is not None
        and not await Salesperson.filter(team=request.team, active=True).exists()
    ):
        raise NotFound(
            f"nobody active is in the team {request.team!r}", code="unknown_team"
        )
    if request.channel is CodeChannel.WECOM:
        people = (
            [refs.salesperson]
            if refs.salesperson
            else await Salesperson.filter(team=request.team, active=True)
            .order_by("id")
            .limit(100)
        )
        refs.wecom_users = [p.wecom_userid for p in people if p and p.wecom_userid]
        if not refs.wecom_users:
            raise BadRequest(
                "a WeCom code needs a salesperson with `wecom_userid`",
                code="no_wecom_user",
            )
    if request.channel is CodeChannel.OA and request.permanent:
        used = await Code.filter(channel=CodeChannel.OA, permanent=True).count()
        if used + request.count > PERMANENT_OA_LIMIT:
            raise Conflict(
                f"the account's {PERMANENT_OA_LIMIT:,} permanent OA codes would be "
                f"exhausted ({used:,} used); issue temporary codes instead",
                code="permanent_codes_exhausted",
            )
    return refs


class CodeIssuer:
    def __init__(self, wechat: WeChat, concurrency: int = 16) -> None:
        self.wechat = wechat
        self.concurrency = concurrency

    async def _ask_wechat(
        self, request: CodeRequest, refs: Refs, scene: str, caption: str
    ) -> dict[str, Any]:
        """What WeChat issued for one scene: the fields of the Code and its source image."""
        if request.channel is CodeChannel.OA:
            expire = None if request.permanent else request.expire_days * 86400
            try:
                issued = await self.wechat.oa.create_qrcode(
                    scene, permanent=request.permanent, expire_seconds=expire
                )
            except WeChatAPIError as exc:
                if exc.errcode != PERMANENT_EXHAUSTED:
                    raise
                raise Conflict(
                    "WeChat says the account's permanent OA codes are exhausted "
                    "(errcode 45029); issue temporary codes instead",
                    code="permanent_codes_exhausted",
                ) from exc
            seconds = issued.get("expire_seconds")
            return {
                "ticket": issued["ticket"],
                "url": issued["url"],
                "expires_at": datetime.now(UTC) + timedelta(seconds=int(seconds))
                if seconds and not request.permanent
                else None,
                "source": None,
            }
        if request.channel is CodeChannel.MP:
            image = await self.wechat.mp.get_unlimited_code(scene, request.page)
            return {"page": request.page, "source": image}
        way = await self.wechat.wecom.add_contact_way(
            users=refs.wecom_users, state=scene, remark=caption[:30] or None
        )
        try:
            image = await self.wechat.http.request("GET", way["qr_code"], raw=True)
        except WeChatAPIError as exc:  # the way exists in WeCom now: keep it, draw it later
            log.warning("the image of contact way %s is not available yet (%r); it is fetched "
                        "when the code is first printed", way["config_id"], exc)
            image = None
        return {
            "config_id": way["config_id"],
            "qr_code": way["qr_code"],
            "source": image,
        }

    async def issue(
        self, request: CodeRequest, progress: Callable[[int], None] | None = None
    ) -> list[Code]:
        """Issues `request.count` codes; on any failure none of them remains."""
        refs = await resolve_refs(request)
        batch = uuid.uuid4().hex[:16] if request.count > 1 else None
        caption = (
            request.campaign or (refs.material.title if refs.material else "") or ""
        )
        common = dict(
            kind=request.kind,
            channel=request.channel,
            campaign=request.campaign,
            salesperson=refs.salesperson,
            partner=refs.partner,
            material=refs.material,
            team=request.team,
            backup=refs.backup,
            tags=request.tags,
            permanent=request.permanent,
            welcome_text=request.welcome,
            batch=batch,
            ready=batch is None,
        )
        limit = asyncio.Semaphore(self.concurrency)

        async def one(serial: int | None) -> tuple[Code, bytes | None]:
            scene = new_scene()
            async with limit:
                issued = await self._ask_wechat(request, refs, scene, caption)
            source = issued.pop("source")
            return Code(scene=scene, serial=serial, **common, **issued), source

        codes: list[Code] = []
        try:
            for start in range(0, request.count, CHUNK):
                serials = range(start + 1, min(start + CHUNK, request.count) + 1)
                made = await asyncio.gather(
                    *(one(s if batch else None) for s in serials)
                )
                async with in_transaction() as tx:
                    await Code.bulk_create([code for code, _ in made], using_db=tx)
                    ids = dict(await Code.filter(scene__in=[c.scene for c, _ in made])
                               .using_db(tx).values_list("scene", "id"))
                    for code, _ in made:
                        code.id = ids[code.scene]
                    await CodeArtwork.bulk_create(
                        [CodeArtwork(code_id=code.id, source=source) for code, source in made
                         if source is not None], using_db=tx)
                codes.extend(code for code, _ in made)
                if progress is not None:
                    progress(len(made))
            if batch is not None:
                await Code.filter(batch=batch).update(ready=True)
        except BaseException:
            if batch is not None:
                await Code.filter(batch=batch).delete()
            raise
        return codes
