"""A code's printable image: rendered once, on first request, and kept (never on the callback
path). Rendering runs in a thread so the event loop keeps serving callbacks meanwhile."""

from __future__ import annotations

import asyncio

from bot.errors import WeChatAPIError
from bot.wechat import WeChat
from bot.wechat.client import WeChatTransportError
from models import Code, CodeArtwork, Material, Partner, Salesperson
from qr import render

FETCH_ATTEMPTS = 3
FETCH_BACKOFF = 0.5  # seconds before the second attempt; doubles


async def caption(code: Code) -> list[str]:
    """What a person reads under the code: campaign or material, who, and the serial."""
    lines: list[str] = []
    if code.campaign:
        lines.append(code.campaign)
    if code.material_id is not None:  # type: ignore[attr-defined]
        material = await Material.get_or_none(id=code.material_id)  # type: ignore[attr-defined]
        if material is not None and material.title not in lines:
            lines.append(material.title)
    if code.salesperson_id is not None:  # type: ignore[attr-defined]
        person = await Salesperson.get_or_none(id=code.salesperson_id)  # type: ignore[attr-defined]
        if person is not None:
            lines.append(" · ".join(p for p in (person.name, person.team) if p))
    elif code.team:
        lines.append(code.team)
    if code.partner_id is not None:  # type: ignore[attr-defined]
        partner = await Partner.get_or_none(id=code.partner_id)  # type: ignore[attr-defined]
        if partner is not None:
            lines.append(partner.name)
    if code.serial is not None:
        lines.append(f"No. {code.serial:04d}")
    return lines


def qr_source(code: Code, artwork: CodeArtwork | None) -> render.CodeImage:
    """The QR as WeChat drew it (mini-program, WeCom), or drawn from the OA code's URL."""
    if artwork is not None and artwork.source:
        return bytes(artwork.source)
    if code.url:
        return render.qr_image(code.url)
    raise ValueError(f"code {code.id} has neither an image nor a URL")


async def fetch_source(code: Code, wechat: WeChat) -> CodeArtwork:
    """The QR a WeCom contact way came with, fetched from WeCom's image host and kept: issuing
    leaves it for later when that host does not answer. Retried with backoff; a 502 when it
    still cannot be had (the next print tries again)."""
    for attempt in range(FETCH_ATTEMPTS):
        try:
            image = await wechat.http.request("GET", str(code.qr_code), raw=True)
            break
        except WeChatAPIError as exc:
            if attempt + 1 == FETCH_ATTEMPTS:
                raise WeChatTransportError("the code's image could not be fetched from WeCom "
                                           "yet; try again shortly", path=exc.path) from exc
            await asyncio.sleep(FETCH_BACKOFF * 2**attempt)
    artwork, _ = await CodeArtwork.update_or_create(defaults={"source": image}, code_id=code.id)
    return artwork


async def with_source(code: Code, artwork: CodeArtwork | None,
                      wechat: WeChat | None) -> CodeArtwork | None:
    """The code's artwork, with WeCom's QR fetched first if it is still missing."""
    if code.qr_code and not (artwork and artwork.source) and wechat is not None:
        return await fetch_source(code, wechat)
    return artwork


async def code_png(code: Code, wechat: WeChat | None = None) -> bytes:
    artwork = await CodeArtwork.get_or_none(code_id=code.id)
    if artwork is not None and artwork.png:
        return bytes(artwork.png)
    artwork = await with_source(code, artwork, wechat)
    lines = await caption(code)
    png = await asyncio.to_thread(render.code_png, qr_source(code, artwork), lines)
    if artwork is None:
        await CodeArtwork.create(code_id=code.id, png=png)
    else:
        await CodeArtwork.filter(code_id=code.id).update(png=png)
    return png
