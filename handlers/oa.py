"""Reactions to Official Account pushes (docs/wechat.md §2.3)."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from wechatpy.replies import TextReply

from bot.dispatch import Router
from bot.errors import (
    InvalidCredential,
    QuotaExceeded,
    SystemBusy,
    WeChatAPIError,
)
from bot.signals import CodeRef, NotYet, Outcome, Signal
from bot.wechat import WeChat
from bot.wechat.client import WeChatTransportError
from domain.attribution import Attribution, welcome_text
from domain.identity import Prospects
from domain.outbox import Sender, delivery_report, sending_templates
from models import Code, IdentityKind

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
    """A follow, through a code (`qrscene_…`) or not: welcomed by a passive reply from the
    code alone (cached); the follower's prospect, the code's attribution and then their UnionID
    (the follow is complete once it is known) come after the reply."""
    outcome = Outcome(reply=_text(signal, welcome_text(await _code(code, attribution))))
    if signal.actor:
        openid = signal.actor
        bind = _binding(outcome, openid, code, prospects, attribution)

        async def union() -> None:
            assert outcome.prospect_id is not None
            outcome.prospect_id = await link_unionid(openid, outcome.prospect_id, prospects,
                                                     wechat)

        outcome.then = (bind, union)
    return outcome


async def link_unionid(openid: str, prospect_id: int, prospects: Prospects,
                       wechat: WeChat) -> int:
    """The follower's UnionID from `user/info` (docs/wechat.md §3.4), which makes them one with
    their mini-program and WeCom selves; the prospect they are now. WeChat being busy or
    unreachable, busy or out of quota raises (the follow is retried; it is attributed already);
    WeChat refusing for good (the openid, the account's permissions) ends it."""
    if not wechat.oa.configured:  # no OA secret: no UnionIDs (serve said so at startup)
        return prospect_id
    try:
        info = await wechat.oa.user_info(openid)
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
    """A follower scanning a code: answered from the code alone (cached); after the reply, a
    touch and the code's tags (the owner stays), and for a follower from before whose UnionID
    was never fetched, that too."""
    outcome = Outcome(reply=_text(signal, welcome_text(await _code(code, attribution),
                                                       WELCOME_BACK)))
    if signal.actor:
        openid = signal.actor
        bind = _binding(outcome, openid, code, prospects, attribution)

        async def union() -> None:
            prospect_id = outcome.prospect_id
            assert prospect_id is not None
            if wechat.oa.configured and not await prospects.has(prospect_id,
                                                                 IdentityKind.UNIONID):
                outcome.prospect_id = await link_unionid(openid, prospect_id, prospects, wechat)

        outcome.then = (bind, union)
    return outcome


def _binding(outcome: Outcome, openid: str, code: CodeRef | None, prospects: Prospects,
             attribution: Attribution) -> Callable[[], Awaitable[None]]:
    """The step after a scan's reply that finds (or creates) the follower's prospect and
    attributes the scan; what it learns counts at once, however long the UnionID takes."""

    async def bind() -> None:
        outcome.prospect_id = await attribution.arrive(
            prospects, IdentityKind.OA_OPENID, openid, code and code.id)

    return bind


def _text(signal: Signal, content: str) -> TextReply:
    """A passive text reply to the push's sender (wechatpy's reply; the addresses taken from the
    push's fields rather than from a wechatpy message object built for the purpose)."""
    return TextReply(source=signal.get("ToUserName"), target=signal.actor, content=content)


async def _code(code: CodeRef | None, attribution: Attribution) -> Code | None:
    """The code a scan names, from the cache: all a passive reply needs."""
    if code is None or code.id is None:
        return None
    return (await attribution.code(code.id))[0]


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


REPORT_PATIENCE = 300  # seconds a report for an unknown msgid may wait for its send


@router.on("oa", "event.templatesendjobfinish")
async def template_delivered(signal: Signal, sender: Sender) -> None:
    """A delivery report: `MsgID` (capital D) is the msgid template/send returned; a message
    that did not reach the salesperson falls back to WeCom (domain/outbox.py). A report may
    come back before the send that caused it has recorded its msgid: while a template send is
    in flight and the report is young, an unknown msgid waits for the worker's next try. Past
    that it is someone else's message (another tool sending on the same account)."""
    msgid = signal.get("MsgID") or ""
    if await delivery_report(msgid, signal.get("Status", "") or "", sender):
        return
    if _young(signal) and await sending_templates():
        raise NotYet(f"a delivery report for template message {msgid}, whose send is not "
                     "recorded yet")
    log.info("delivery report for an unknown template message %s", msgid)


def _young(signal: Signal) -> bool:
    """Sent by WeChat (CreateTime) within REPORT_PATIENCE seconds."""
    created = signal.get("CreateTime") or ""
    return created.isdigit() and time.time() - int(created) < REPORT_PATIENCE
