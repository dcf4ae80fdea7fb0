"""Reactions to WeCom customer-contact pushes (wechat-api.md §5.3)."""

from __future__ import annotations

from bot.dispatch import Router
from bot.pushes import Push
from handlers.prospects import Prospects
from models import IdentityKind

router = Router("wecom")
CONTACT = "event.change_external_contact"


async def _bind(push: Push, prospects: Prospects) -> None:
    if push.actor:
        push.prospect_id = await prospects.resolve(IdentityKind.EXTERNAL_USERID, push.actor)


@router.on("wecom", f"{CONTACT}.add_external_contact")
async def contact_added(push: Push, prospects: Prospects) -> None:
    await _bind(push, prospects)


@router.on("wecom", f"{CONTACT}.add_half_external_contact")
async def contact_half_added(push: Push, prospects: Prospects) -> None:
    await _bind(push, prospects)


@router.on("wecom", f"{CONTACT}.del_follow_user")
async def contact_left(push: Push, prospects: Prospects) -> None:
    """The customer deleted the salesperson: kept as a touch; scoring reads it later."""
    await _bind(push, prospects)


@router.on("wecom", f"{CONTACT}.del_external_contact")
async def contact_removed(push: Push, prospects: Prospects) -> None:
    await _bind(push, prospects)
