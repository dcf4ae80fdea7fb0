"""Render a code as a printable PNG: the QR (or WeChat's own code image) with a caption below."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise
from pathlib import Path

import qrcode  # type: ignore[import-untyped]
from PIL import Image, ImageChops, ImageDraw, ImageFont

FONT_PATH = Path(__file__).parent / "fonts" / "wqy-microhei.ttc"
PNG_DPI = 300

CodeImage = Image.Image | bytes

# An ASCII word with its trailing spaces, or any single other character (CJK breaks anywhere).
_BREAKS = re.compile(r"[\x21-\x7e]+ *| +|.")


@lru_cache(maxsize=128)
def font(size: int) -> ImageFont.FreeTypeFont:
    """WenQuanYi Micro Hei at `size` px: CJK and Latin in one face, shipped in `qr/fonts/`."""
    return ImageFont.truetype(str(FONT_PATH), size, index=0, layout_engine=ImageFont.Layout.BASIC)


def qr_image(content: str, *, box_size: int = 10, border: int = 4) -> Image.Image:
    """A black-on-white QR code (mode "1") of `content`, error correction M."""
    code = qrcode.QRCode(error_correction=_LEVEL, mask_pattern=0)
    code.add_data(content)
    code.make(fit=True)
    rows = _best_masked(code.version, _bits(code.modules))
    n = len(rows)
    modules = Image.frombytes("L", (n, n), "".join(rows).encode().translate(_PIXELS))
    framed = Image.new("L", (n + 2 * border, n + 2 * border), 255)
    framed.paste(modules, (border, border))
    side = framed.width * box_size
    return framed.resize((side, side), Image.Resampling.NEAREST).convert(
        "1", dither=Image.Dither.NONE
    )


# The mask is chosen as qrcode's `best_mask_pattern` does (ISO/IEC 18004 penalties, lowest wins,
# format and version areas light), but on rows of bits: 5.8 ms a code becomes ~2 ms.
_LEVEL = qrcode.constants.ERROR_CORRECT_M
_PIXELS = bytes.maketrans(b"01", b"\xff\x00")
_RUNS = re.compile(r"0{5,}|1{5,}")
_FINDER_LIKE = re.compile(r"(?=10111010000|00001011101)")


def _bits(matrix: list[list[bool | None]]) -> tuple[int, ...]:
    return tuple(int("".join("1" if cell else "0" for cell in row), 2) for row in matrix)


def _transposed(rows: tuple[int, ...], n: int) -> tuple[int, ...]:
    return tuple(
        int("".join(column), 2) for column in zip(*(f"{row:0{n}b}" for row in rows), strict=True)
    )


@dataclass(frozen=True)
class _Layout:
    info: tuple[int, ...]  # the format and version areas and the dark module, by row
    info_bits: tuple[tuple[int, ...], ...]  # their final value for each mask
    masks: tuple[tuple[int, ...], ...]  # the data modules each mask flips, by row
    mask_columns: tuple[tuple[int, ...], ...]  # the same by column


@lru_cache(maxsize=40)
def _layout(version: int) -> _Layout:
    probe = qrcode.QRCode(version=version, error_correction=_LEVEL)
    n = probe.modules_count = version * 4 + 17
    probe.modules = [[None] * n for _ in range(n)]
    for row, col in ((0, 0), (n - 7, 0), (0, n - 7)):
        probe.setup_position_probe_pattern(row, col)
    probe.setup_position_adjust_pattern()
    probe.setup_timing_pattern()
    patterns = _bits([[cell is not None for cell in row] for row in probe.modules])
    info_bits = []
    for mask in range(8):
        probe.setup_type_info(False, mask)
        if version >= 7:
            probe.setup_type_number(False)
        info_bits.append(_bits(probe.modules))
    probe.setup_type_info(True, 0)
    function = _bits([[cell is not None for cell in row] for row in probe.modules])
    masks = []
    for mask in range(8):
        flips = qrcode.util.mask_func(mask)
        masks.append(_bits([[cell is None and flips(r, c) for c, cell in enumerate(cells)]
                            for r, cells in enumerate(probe.modules)]))  # fmt: skip
    info = tuple(f & ~p for f, p in zip(function, patterns, strict=True))
    return _Layout(
        info=info,
        info_bits=tuple(
            tuple(b & i for b, i in zip(bits, info, strict=True)) for bits in info_bits
        ),
        masks=tuple(masks),
        mask_columns=tuple(_transposed(rows, n) for rows in masks),
    )


def _penalty(rows: tuple[int, ...], columns: tuple[int, ...], n: int) -> int:
    lines = "|".join(f"{line:0{n}b}" for line in (*rows, *columns))
    runs = sum(len(run) - 2 for run in _RUNS.findall(lines))
    inner = (1 << (n - 1)) - 1
    blocks = sum(
        (~((a ^ b) | ((a ^ b) >> 1) | (a ^ (a >> 1))) & inner).bit_count()
        for a, b in pairwise(rows)
    )
    dark = sum(row.bit_count() for row in rows) / n**2
    return (
        runs
        + 3 * blocks
        + 40 * len(_FINDER_LIKE.findall(lines))
        + int(abs(dark * 100 - 50) / 5) * 10
    )


def _best_masked(version: int, placed: tuple[int, ...]) -> list[str]:
    """Rows of "0"/"1" of the symbol under its best mask, from the symbol under mask 0."""
    layout = _layout(version)
    n = len(placed)
    data = tuple(r & ~i ^ m for r, i, m in zip(placed, layout.info, layout.masks[0], strict=True))
    data_columns = _transposed(data, n)
    candidates = [
        (
            tuple(d ^ m for d, m in zip(data, layout.masks[mask], strict=True)),
            tuple(d ^ m for d, m in zip(data_columns, layout.mask_columns[mask], strict=True)),
        )
        for mask in range(8)
    ]
    best = min(range(8), key=lambda mask: _penalty(*candidates[mask], n))
    final = zip(candidates[best][0], layout.info_bits[best], strict=True)
    return [f"{row | info:0{n}b}" for row, info in final]


def load_code(qr: CodeImage, *, draft: tuple[int, int] | None = None) -> Image.Image:
    """The code as mode "1", "L" or "RGB", anything transparent flattened onto white."""
    if isinstance(qr, bytes):
        qr = Image.open(io.BytesIO(qr))
        if draft is not None:
            qr.draft("RGB", draft)  # a large JPEG decodes at a reduced scale
    if qr.mode == "RGB" and _is_gray(qr):  # black codes come as RGB JPEGs; gray is 3× cheaper
        return qr.convert("L")
    if qr.mode in ("1", "L", "RGB"):
        return qr
    if qr.mode in ("LA", "RGBA", "PA") or "transparency" in qr.info:
        rgba = qr.convert("RGBA")
        flat = Image.new("RGB", rgba.size, "white")
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return qr.convert("L" if qr.mode in ("I", "I;16", "F") else "RGB")


def _is_gray(image: Image.Image) -> bool:
    sample = image.reduce(8) if min(image.size) >= 64 else image  # averages JPEG noise away
    red, green, blue = sample.split()
    spread = ImageChops.lighter(
        ImageChops.difference(red, green), ImageChops.difference(green, blue)
    )
    return spread.point(lambda value: 255 if value > 16 else 0).getbbox() is None


def scale_code(code: Image.Image, width: int) -> Image.Image:
    height = max(1, round(code.height * width / code.width))
    if code.mode == "1":
        return code.resize((width, height), Image.Resampling.NEAREST).convert("L")
    return code.resize((width, height), Image.Resampling.BICUBIC)


def _wrap(text: str, face: ImageFont.FreeTypeFont, width: int) -> list[str]:
    lines: list[str] = []
    line = ""
    for token in _BREAKS.findall(text):
        pieces = [token] if face.getlength(token.rstrip()) <= width else list(token)
        for piece in pieces:
            if line and face.getlength((line + piece).rstrip()) > width:
                lines.append(line.rstrip())
                line = piece.lstrip()
            else:
                line += piece
    if line.strip():
        lines.append(line.rstrip())
    return lines


def fit_text(
    text: str, width: int, size: int, *, min_size: int | None = None
) -> list[tuple[str, ImageFont.FreeTypeFont]]:
    """`text` at `size` px if it fits `width`, else shrunk to `min_size`, else wrapped there."""
    smallest = min_size or max(1, size * 3 // 4)
    length = font(size).getlength(text)
    if length <= width:
        return [(text, font(size))]
    shrunk = int(size * width / length)
    while shrunk >= smallest:
        if font(shrunk).getlength(text) <= width:
            return [(text, font(shrunk))]
        shrunk -= 1
    face = font(smallest)
    return [(line, face) for line in _wrap(text, face, width)]


def draw_lines(
    draw: ImageDraw.ImageDraw,
    lines: list[tuple[str, ImageFont.FreeTypeFont]],
    centre_x: float,
    top: float,
    *,
    spacing: float = 1.25,
    fill: int | str = 0,
) -> float:
    """Draw each line centred on `centre_x` from `top` down; the y below the last line."""
    y = top
    for text, face in lines:
        draw.text((centre_x, y), text, font=face, fill=fill, anchor="ma")
        y += face.size * spacing
    return y


def code_png(qr: CodeImage, caption_lines: list[str], *, size: int = 600) -> bytes:
    """A printable PNG `size` px wide: the code on white, the caption lines centred below it."""
    code = scale_code(load_code(qr, draft=(size, size)), size)
    margin = size // 20
    lines = [
        fitted
        for line in caption_lines
        if line.strip()
        for fitted in fit_text(line.strip(), size - 2 * margin, max(8, round(size * 0.055)))
    ]
    caption_height = (
        round(sum(face.size * 1.25 for _, face in lines)) + size // 50 + margin if lines else 0
    )
    canvas = Image.new(code.mode, (size, code.height + caption_height), "white")
    canvas.paste(code, (0, 0))
    if lines:
        draw_lines(ImageDraw.Draw(canvas), lines, size / 2, code.height + size // 50)
    out = io.BytesIO()
    canvas.save(out, "PNG", optimize=False, compress_level=1, dpi=(PNG_DPI, PNG_DPI))
    return out.getvalue()
