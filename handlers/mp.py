"""Reactions to mini-program signals: login, phone, profile and consent, reads and forwards."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from tortoise.expressions import Q

from bot.dispatch import Router
from bot.privacy import Sealer
from bot.signals import CodeRef, Outcome, Signal
from domain.attribution import Attribution, add_tags
from domain.identity import Prospects
from domain.merging import family, load, locked
from models import (
    Identity,
    IdentityKind,
    Interaction,
    Material,
    Opportunity,
    OutboundMessage,
    OutboundStatus,
    Prospect,
)

router = Router("mp")
PROFILE_FIELDS = ("name", "company", "title", "department", "industry", "company_size",
                  "email")


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


@router.on("mp", "mp.phone")
async def bound_phone(signal: Signal, prospects: Prospects, sealer: Sealer) -> Outcome:
    """A phone is an identity: the same phone on two records makes them one person. Kept only
    while the person's consent is: checked again once bound, as a withdrawal may have come
    in between."""
    phone = sealer.unseal(str(signal.fields.get("sealed") or ""))
    prospect = await load(int(signal.fields["prospect_id"]))
    if phone is None or signal.fields.get("erased") or prospect.consent_version is None:
        return Outcome(prospect_id=prospect.id)  # erased since: nothing to bind
    prospect_id = await prospects.link(prospect.id, IdentityKind.PHONE, phone)
    if (await load(prospect_id)).consent_version is None:  # withdrawn meanwhile
        digest = prospects.lookup_value(IdentityKind.PHONE, phone)
        await Identity.filter(kind=IdentityKind.PHONE, value=digest).delete()
        prospects.erased(IdentityKind.PHONE, [digest])
    return Outcome(prospect_id=prospect_id)


@router.on("mp", "mp.profile")
async def profiled(signal: Signal, sealer: Sealer) -> Outcome:
    """The fields given, and the consent with its version and time. A profile the worker
    replays is not applied over a newer one, nor after the consent was withdrawn."""
    at = datetime.fromisoformat(str(signal.fields["at"]))
    async with locked(int(signal.fields["prospect_id"])) as prospect:
        if signal.fields.get("erased") or (prospect.consent_at and prospect.consent_at > at):
            return Outcome(prospect_id=prospect.id)
        values: dict[str, Any] = {name: signal.fields[name] for name in PROFILE_FIELDS
                                  if signal.fields.get(name) is not None}
        personal = sealer.unseal(str(signal.fields.get("sealed") or ""))
        if personal:
            values.update(json.loads(personal))
        values.update(consent_version=signal.fields.get("consent_version"), consent_at=at)
        prospect.update_from_dict(values)
        await prospect.save(update_fields=list(values))
    return Outcome(prospect_id=prospect.id)


@router.on("mp", "mp.consent_withdrawn")
async def consent_withdrawn(signal: Signal, prospects: Prospects) -> Outcome:
    """Erases the person's personal fields and phones, and what signals kept of them (sealed),
    under the lock a merge takes: no record of theirs can join or leave meanwhile. The
    interactions stay, anonymous; a profile or phone signal still pending is never applied."""
    async with locked(int(signal.fields["prospect_id"])) as prospect:
        everyone = await family(prospect.id)
        await Prospect.filter(id__in=everyone).update(
            **dict.fromkeys(PROFILE_FIELDS), consent_version=None, consent_at=None)
        phones = Identity.filter(prospect_id__in=everyone, kind=IdentityKind.PHONE)
        prospects.erased(IdentityKind.PHONE, list(await phones.values_list("value", flat=True)))
        await phones.delete()
        # by who sent them, too: a signal processed a moment ago may not name its prospect yet
        openids = await Identity.filter(prospect_id__in=everyone, kind=IdentityKind.MP_OPENID
                                        ).values_list("value", flat=True)
        personal = (Q(prospect_id__in=everyone) | Q(source="mp", actor__in=openids)) & Q(
            kind__in=("mp.phone", "mp.profile", "mp.action"))
        for row in await Interaction.filter(personal):
            kept = {k: v for k, v in row.payload.items()  # a form's `fields` too
                    if k not in ("sealed", "phone", "fields", *PROFILE_FIELDS)}
            await Interaction.filter(id=row.id).update(payload={**kept, "erased": True})
        # what was written to tell salespeople about them: names in pushes not yet sent are
        # not sent, and none is kept
        told = Q(opportunity_id__in=await Opportunity.filter(prospect_id__in=everyone)
                 .values_list("id", flat=True))
        for member in everyone:
            told |= Q(purpose__startswith=f"radar:p{member}:")
        await OutboundMessage.filter(told, status=OutboundStatus.PENDING).update(
            status=OutboundStatus.FAILED, last_error="consent withdrawn: not sent")
        await OutboundMessage.filter(told).update(payload={"erased": True})
    return Outcome(prospect_id=prospect.id)


@router.on("mp", "mp.read")
async def read(signal: Signal) -> Outcome:
    """A finished read: the reader gets the material's tags (as a scan of its code gives)."""
    material = await Material.get_or_none(id=int(signal.fields["material_id"]))
    prospect_id = int(signal.fields["prospect_id"])
    if material is not None and material.tags:
        prospect_id = await add_tags(prospect_id, material.tags)
    return Outcome(prospect_id=(await load(prospect_id)).id)


@router.on("mp", "mp.action")
async def acted(signal: Signal) -> Outcome:
    """A demo or pricing request, a webinar, a form: the person did it (the scoring rules
    count it)."""
    return Outcome(prospect_id=(await load(int(signal.fields["prospect_id"]))).id)


@router.on("mp", "mp.forward")
async def forwarded(signal: Signal) -> Outcome:
    """A reader's share opened by someone else: the sharer passed it on."""
    return Outcome(prospect_id=(await load(int(signal.fields["prospect_id"]))).id)


