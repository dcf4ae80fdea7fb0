"""A code's printable image: rendered once, on first request, and kept (never on the callback
path). Rendering runs in a thread so the event loop keeps serving callbacks meanwhile."""

from __future__ import annotations

import asyncio

from models import Code, CodeArtwork, Material, Partner, Salesperson
from qr import render


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


async def code_png(code: Code) -> bytes:
    artwork = await CodeArtwork.get_or_none(code_id=code.id)
    if artwork is not None and artwork.png:
        return bytes(artwork.png)
    lines = await caption(code)
    png = await asyncio.to_thread(render.code_png, qr_source(code, artwork), lines)
    if artwork is None:
        await CodeArtwork.create(code_id=code.id, png=png)
    else:
        await CodeArtwork.filter(code_id=code.id).update(png=png)
    return png
