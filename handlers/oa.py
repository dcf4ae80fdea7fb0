"""Reactions to Official Account pushes (docs/wechat.md §2.3)."""

from __future__ import annotations

import logging

from wechatpy.replies import TextReply

from bot.dispatch import Router
from bot.pushes import Push
from handlers.attribution import Attribution, welcome_text
from handlers.prospects import Prospects
from models import Code, IdentityKind, OutboundMessage, OutboundStatus

log = logging.getLogger(__name__)
router = Router("oa")

WELCOME_BACK = "欢迎回来！有任何问题，欢迎随时在这里留言。"


async def _bind(push: Push, prospects: Prospects) -> None:
    if push.actor:
        push.prospect_id = await prospects.resolve(IdentityKind.OA_OPENID, push.actor)


async def _touched(push: Push, prospects: Prospects, attribution: Attribution) -> Code | None:
    """Binds the follower and applies the code they scanned, if any; the code."""
    await _bind(push, prospects)
    if push.prospect_id is None:
        return None
    return await attribution.touch(push.code_id, push.prospect_id)


@router.on("oa", "event.subscribe")
async def followed(push: Push, prospects: Prospects, attribution: Attribution) -> TextReply:
    """A follow, through a code (`qrscene_…`) or not: attributed, welcomed by a passive reply."""
    code = await _touched(push, prospects, attribution)
    return TextReply(message=push.message, content=welcome_text(code))


@router.on("oa", "event.scan")
async def scanned(push: Push, prospects: Prospects, attribution: Attribution) -> TextReply:
    """A follower scanning a code: a touch and the code's tags; the owner stays."""
    code = await _touched(push, prospects, attribution)
    return TextReply(message=push.message, content=welcome_text(code, WELCOME_BACK))


@router.on("oa", "event.unsubscribe")
async def unfollowed(push: Push, prospects: Prospects) -> None:
    await _bind(push, prospects)


@router.on("oa", "message.text")
async def wrote(push: Push, prospects: Prospects) -> None:
    await _bind(push, prospects)


@router.on("oa", "event.templatesendjobfinish")
async def template_delivered(push: Push) -> None:
    """A delivery report: `MsgID` (capital D) is the msgid template/send returned."""
    status = push.get("Status", "")
    outcome = OutboundStatus.DELIVERED if status == "success" else OutboundStatus.FAILED
    updated = await OutboundMessage.filter(
        channel="oa_template", wechat_msgid=push.get("MsgID")
    ).update(status=outcome, last_error=None if status == "success" else status[:500])
    if not updated:
        log.info("delivery report for an unknown template message %s", push.get("MsgID"))
