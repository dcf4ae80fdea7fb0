"""Reactions to mini-program signals (login first; phone, profile and reads follow)."""

from __future__ import annotations

from bot.dispatch import Router
from bot.signals import CodeRef, Outcome, Signal
from domain.attribution import Attribution
from domain.identity import Prospects
from models import IdentityKind

router = Router("mp")


@router.on("mp", "mp.login")
async def logged_in(signal: Signal, code: CodeRef | None, prospects: Prospects,
                    attribution: Attribution) -> Outcome:
    """The mini-program OpenID names the prospect; a UnionID ties them to their OA and WeCom
    selves when it is already known."""
    openid = str(signal.fields["openid"])
    unionid = signal.fields.get("unionid")
    known = await prospects.find(IdentityKind.MP_OPENID, openid)
    if known is None and unionid:
        known = await prospects.find(IdentityKind.UNIONID, str(unionid))
    if known is None:
        known = await prospects.resolve(IdentityKind.MP_OPENID, openid)
    await prospects.link(known, IdentityKind.MP_OPENID, openid)
    if unionid:
        await prospects.link(known, IdentityKind.UNIONID, str(unionid))
    if code is not None and code.id is not None:  # a mini-program code's scene: like a scan
        await attribution.touch(code.id, known)
    return Outcome(prospect_id=known)
