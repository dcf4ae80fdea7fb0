"""Reactions to Official Account pushes (docs/wechat.md §2.3)."""

from __future__ import annotations

import logging

from wechatpy.replies import TextReply

from bot.dispatch import Router
from bot.errors import (
    InvalidCredential,
    MissingSetting,
    QuotaExceeded,
    SystemBusy,
    WeChatAPIError,
)
from bot.signals import CodeRef, Outcome, Signal
from bot.wechat import WeChat
from bot.wechat.client import WeChatTransportError
from domain.attribution import Attribution, welcome_text
from domain.identity import Prospects
from domain.merging import family
from domain.outbox import Sender, delivery_report
from models import Code, Identity, IdentityKind

log = logging.getLogger(__name__)
router = Router("oa")

WELCOME_BACK = "欢迎回来！有任何问题，欢迎随时在这里留言。"


async def _bound(signal: Signal, prospects: Prospects) -> int | None:
    if not signal.actor:
        return None
    return await prospects.resolve(IdentityKind.OA_OPENID, signal.actor)


@router.on("oa", "event.subscribe")
async def followed(signal: Signal, code: CodeRef | None, prospects: Prospects,
                   attribution: Attribution, wechat: WeChat) -> Outcome:
    """A follow, through a code (`qrscene_…`) or not: attributed, welcomed by a passive reply;
    then, after the reply, the follower's UnionID (the follow is complete once it is known)."""
    prospect_id = await _bound(signal, prospects)
    touched = await _touch(code, prospect_id, attribution)
    outcome = Outcome(prospect_id=prospect_id,
                      reply=TextReply(message=signal.message, content=welcome_text(touched)))
    if prospect_id is not None and signal.actor:
        openid = signal.actor

        async def union() -> None:
            outcome.prospect_id = await link_unionid(openid, prospect_id, prospects, wechat)

        outcome.then = union
    return outcome


async def link_unionid(openid: str, prospect_id: int, prospects: Prospects,
                       wechat: WeChat) -> int:
    """The follower's UnionID from `user/info` (docs/wechat.md §3.4), which makes them one with
    their mini-program and WeCom selves; the prospect they are now. WeChat being busy or
    unreachable, busy or out of quota raises (the follow is retried; it is attributed already);
    WeChat refusing for good (the openid, the account's permissions) ends it."""
    try:
        info = await wechat.oa.user_info(openid)
    except MissingSetting:  # no OA secret: no UnionIDs (serve said so at startup)
        return prospect_id
    except (WeChatTransportError, SystemBusy, QuotaExceeded, InvalidCredential):
        raise  # for now: the follow is retried
    except WeChatAPIError as exc:  # for good: an openid refused, an account without the API
        log.info("no UnionID for a follower: %r", exc)
        return prospect_id
    unionid = info.get("unionid")
    if not isinstance(unionid, str) or not unionid:
        return prospect_id  # the account is not bound to a WeChat open platform account
    return await prospects.link(prospect_id, IdentityKind.UNIONID, unionid)


@router.on("oa", "event.scan")
async def scanned(signal: Signal, code: CodeRef | None, prospects: Prospects,
                  attribution: Attribution, wechat: WeChat) -> Outcome:
    """A follower scanning a code: a touch and the code's tags; the owner stays. A follower
    from before (whose UnionID was never fetched) gets it after the reply, as a new one does."""
    prospect_id = await _bound(signal, prospects)
    touched = await _touch(code, prospect_id, attribution)
    outcome = Outcome(prospect_id=prospect_id, reply=TextReply(
        message=signal.message, content=welcome_text(touched, WELCOME_BACK)))
    if prospect_id is not None and signal.actor:
        openid = signal.actor

        async def union() -> None:  # after the reply: a scan's answer waits for no lookup
            if not await Identity.exists(prospect_id__in=await family(prospect_id),
                                         kind=IdentityKind.UNIONID):
                outcome.prospect_id = await link_unionid(openid, prospect_id, prospects,
                                                         wechat)

        outcome.then = union
    return outcome


async def _touch(code: CodeRef | None, prospect_id: int | None,
                 attribution: Attribution) -> Code | None:
    if code is None or code.id is None or prospect_id is None:
        return None
    return await attribution.touch(code.id, prospect_id)


@router.on("oa", "event.unsubscribe")
async def unfollowed(signal: Signal, prospects: Prospects) -> Outcome:
    return Outcome(prospect_id=await _bound(signal, prospects))


async def _wrote(signal: Signal, prospects: Prospects) -> Outcome:
    """A message, a menu click: the person did it, so it is theirs (and on their timeline).
    The periodic LOCATION report is not: it stays off this path, stored and nothing more."""
    return Outcome(prospect_id=await _bound(signal, prospects))


for _kind in ("message.text", "message.image", "message.voice", "message.video",
              "message.shortvideo", "message.location", "message.link", "message.file",
              "event.click", "event.view", "event.view_miniprogram"):
    router.on("oa", _kind)(_wrote)


@router.on("oa", "event.templatesendjobfinish")
async def template_delivered(signal: Signal, sender: Sender) -> None:
    """A delivery report: `MsgID` (capital D) is the msgid template/send returned; a message
    that did not reach the salesperson falls back to WeCom (domain/outbox.py)."""
    msgid = signal.get("MsgID") or ""
    if not await delivery_report(msgid, signal.get("Status", "") or "", sender):
        log.info("delivery report for an unknown template message %s", msgid)
