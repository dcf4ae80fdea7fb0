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
    """The mini-program OpenID names the prospect; a UnionID makes them one with their OA and
    WeCom selves (merging the records when both exist)."""
    openid, unionid = str(signal.fields["openid"]), signal.fields.get("unionid")
    known = await prospects.find(IdentityKind.MP_OPENID, openid)
    if known is None and unionid:  # known from the OA or WeCom already: no second record
        known = await prospects.find(IdentityKind.UNIONID, str(unionid))
    if known is None:
        prospect_id = await prospects.resolve(IdentityKind.MP_OPENID, openid)
    else:
        prospect_id = await prospects.link(known, IdentityKind.MP_OPENID, openid)
    if unionid:
        prospect_id = await prospects.link(prospect_id, IdentityKind.UNIONID, str(unionid))
    if code is not None and code.id is not None:  # a mini-program code's scene: like a scan
        await attribution.touch(code.id, prospect_id)
    return Outcome(prospect_id=prospect_id)
