"""Reactions to Official Account pushes (docs/wechat.md §2.3)."""

from __future__ import annotations

import logging

from wechatpy.replies import TextReply

from bot.dispatch import Router
from bot.signals import CodeRef, Outcome, Signal
from domain.attribution import Attribution, welcome_text
from domain.identity import Prospects
from models import Code, IdentityKind, OutboundMessage, OutboundStatus

log = logging.getLogger(__name__)
router = Router("oa")

WELCOME_BACK = "欢迎回来！有任何问题，欢迎随时在这里留言。"


async def _bound(signal: Signal, prospects: Prospects) -> int | None:
    if not signal.actor:
        return None
    return await prospects.resolve(IdentityKind.OA_OPENID, signal.actor)


@router.on("oa", "event.subscribe")
async def followed(signal: Signal, code: CodeRef | None, prospects: Prospects,
                   attribution: Attribution) -> Outcome:
    """A follow, through a code (`qrscene_…`) or not: attributed, welcomed by a passive reply."""
    prospect_id = await _bound(signal, prospects)
    touched = await _touch(code, prospect_id, attribution)
    return Outcome(prospect_id=prospect_id,
                   reply=TextReply(message=signal.message, content=welcome_text(touched)))


@router.on("oa", "event.scan")
async def scanned(signal: Signal, code: CodeRef | None, prospects: Prospects,
                  attribution: Attribution) -> Outcome:
    """A follower scanning a code: a touch and the code's tags; the owner stays."""
    prospect_id = await _bound(signal, prospects)
    touched = await _touch(code, prospect_id, attribution)
    return Outcome(prospect_id=prospect_id, reply=TextReply(
        message=signal.message, content=welcome_text(touched, WELCOME_BACK)))


async def _touch(code: CodeRef | None, prospect_id: int | None,
                 attribution: Attribution) -> Code | None:
    if code is None or code.id is None or prospect_id is None:
        return None
    return await attribution.touch(code.id, prospect_id)


@router.on("oa", "event.unsubscribe")
async def unfollowed(signal: Signal, prospects: Prospects) -> Outcome:
    return Outcome(prospect_id=await _bound(signal, prospects))


@router.on("oa", "message.text")
async def wrote(signal: Signal, prospects: Prospects) -> Outcome:
    return Outcome(prospect_id=await _bound(signal, prospects))


@router.on("oa", "event.templatesendjobfinish")
async def template_delivered(signal: Signal) -> None:
    """A delivery report: `MsgID` (capital D) is the msgid template/send returned."""
    status = signal.get("Status", "")
    outcome = OutboundStatus.DELIVERED if status == "success" else OutboundStatus.FAILED
    updated = await OutboundMessage.filter(
        channel="oa_template", wechat_msgid=signal.get("MsgID")
    ).update(status=outcome, last_error=None if status == "success" else status[:500])
    if not updated:
        log.info("delivery report for an unknown template message %s", signal.get("MsgID"))
