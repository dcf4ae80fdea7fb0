"""Reactions to mini-program signals (login first; phone, profile and reads follow)."""

from __future__ import annotations

from bot.dispatch import Router
from bot.pushes import Push
from handlers.attribution import Attribution
from handlers.prospects import Prospects
from models import IdentityKind

router = Router("mp")


@router.on("mp", "mp.login")
async def logged_in(push: Push, prospects: Prospects, attribution: Attribution) -> None:
    """The mini-program OpenID names the prospect; a UnionID ties them to their OA and WeCom
    selves when it is already known."""
    openid = str(push.fields["openid"])
    unionid = push.fields.get("unionid")
    known = await prospects.find(IdentityKind.MP_OPENID, openid)
    if known is None and unionid:
        known = await prospects.find(IdentityKind.UNIONID, str(unionid))
    if known is None:
        known = await prospects.resolve(IdentityKind.MP_OPENID, openid)
    await prospects.link(known, IdentityKind.MP_OPENID, openid)
    if unionid:
        await prospects.link(known, IdentityKind.UNIONID, str(unionid))
    push.prospect_id = known
    await attribution.touch(push.code_id, known)  # a mini-program code's scene: like a scan
