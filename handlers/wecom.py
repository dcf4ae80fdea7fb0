"""Reactions to WeCom customer-contact pushes (docs/wechat.md §5.3)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from tortoise.exceptions import IntegrityError

from bot.dispatch import Router
from bot.errors import WeChatAPIError
from bot.signals import CodeRef, Outcome, Signal
from bot.wechat import WeChat
from domain.attribution import DEFAULT_CONTACT_WELCOME, Attribution, welcome_text
from domain.identity import Prospects
from domain.merging import locked
from models import Code, IdentityKind, OutboundMessage, OutboundStatus

log = logging.getLogger(__name__)
router = Router("wecom")
CONTACT = "event.change_external_contact"


async def _bound(signal: Signal, prospects: Prospects) -> int | None:
    if not signal.actor:
        return None
    return await prospects.resolve(IdentityKind.EXTERNAL_USERID, signal.actor)


async def welcome(signal: Signal, code: Code | None, wechat: WeChat) -> None:
    """The welcome message, within WeChat's 20 seconds and once per WelcomeCode: the outbound
    row's unique purpose stops a retried push from sending it twice."""
    welcome_code = signal.get("WelcomeCode")
    if not welcome_code:
        return  # the member has a console welcome, or the chat has started
    text = welcome_text(code, DEFAULT_CONTACT_WELCOME)
    try:
        message = await OutboundMessage.create(
            purpose=f"welcome:{welcome_code}"[:64], channel="wecom_welcome",
            recipient=signal.actor or "", payload={"text": text}, attempts=1)
    except IntegrityError:
        return
    try:
        await wechat.wecom.send_welcome_msg(welcome_code, text)
    except WeChatAPIError as exc:
        message.status, message.last_error = OutboundStatus.FAILED, str(exc)[:500]
    else:
        message.status, message.sent_at = OutboundStatus.SENT, datetime.now(UTC)
    await message.save(update_fields=["status", "last_error", "sent_at"])


async def enrich(signal: Signal, prospect_id: int, prospects: Prospects, wechat: WeChat) -> int:
    """Name, company, position and UnionID from `externalcontact/get` (docs/wechat.md §5.5);
    the prospect the contact is now (a known UnionID makes them one with their other selves)."""
    if signal.actor is None:
        return prospect_id
    try:
        found = await wechat.wecom.get_external_contact(signal.actor)
    except WeChatAPIError as exc:
        log.warning("external contact details unavailable: %r", exc)
        return prospect_id
    contact = found.get("external_contact") or {}
    async with locked(prospect_id) as prospect:  # never onto a record merged away meanwhile
        changed = []
        for field, value in (("name", contact.get("name")), ("title", contact.get("position")),
                             ("company", contact.get("corp_full_name")
                              or contact.get("corp_name"))):
            if value and not getattr(prospect, field):
                setattr(prospect, field, str(value)[:128 if field == "company" else 64])
                changed.append(field)
        if changed:
            await prospect.save(update_fields=changed)
    if contact.get("unionid"):
        return await prospects.link(prospect.id, IdentityKind.UNIONID, str(contact["unionid"]))
    return prospect.id


@router.on("wecom", f"{CONTACT}.add_external_contact")
async def contact_added(signal: Signal, code: CodeRef | None, prospects: Prospects,
                        attribution: Attribution, wechat: WeChat) -> Outcome:
    """A prospect added a salesperson (through a 「联系我」 code when `State` is set)."""
    prospect_id = await _bound(signal, prospects)
    touched = None
    if prospect_id is not None and code is not None and code.id is not None:
        touched = await attribution.touch(code.id, prospect_id, signal.get("UserID"))
    await welcome(signal, touched, wechat)
    if prospect_id is not None:
        prospect_id = await enrich(signal, prospect_id, prospects, wechat)
    return Outcome(prospect_id=prospect_id)


@router.on("wecom", f"{CONTACT}.add_half_external_contact")
async def contact_half_added(signal: Signal, code: CodeRef | None, prospects: Prospects,
                             attribution: Attribution, wechat: WeChat) -> Outcome:
    return await contact_added(signal, code, prospects, attribution, wechat)


@router.on("wecom", f"{CONTACT}.del_follow_user")
async def contact_left(signal: Signal, prospects: Prospects) -> Outcome:
    """The customer deleted the salesperson: kept as a touch; scoring reads it later."""
    return Outcome(prospect_id=await _bound(signal, prospects))


@router.on("wecom", f"{CONTACT}.del_external_contact")
async def contact_removed(signal: Signal, prospects: Prospects) -> Outcome:
    return Outcome(prospect_id=await _bound(signal, prospects))
