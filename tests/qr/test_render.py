from __future__ import annotations

import io
import random
import string
import time

import pytest
import qrcode  # type: ignore[import-untyped]
from PIL import Image

from qr.render import FONT_PATH, code_png, fit_text, font, qr_image

URL = "http://weixin.qq.com/q/02abcDEFghiJKL0000w03x"
ALPHABET = string.ascii_letters + string.digits + "/:.?=&_-上海工博会展台"
CAPTION = ["2026 上海工博会 A馆 3号展台", "王芳 · 华东大区", "No. 0042"]


def matrix(content: str, border: int = 4) -> list[list[bool]]:
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=border)
    code.add_data(content)
    code.make(fit=True)
    modules: list[list[bool]] = code.get_matrix()
    return modules


def sampled(image: Image.Image, n: int, side: int) -> list[list[bool]]:
    """Dark or light at the centre of each of n×n modules in the top `side` px square."""
    gray = image.convert("L")
    pixels, pitch = gray.tobytes(), side / n
    return [
        [
            pixels[int((y + 0.5) * pitch) * gray.width + int((x + 0.5) * pitch)] < 128
            for x in range(n)
        ]
        for y in range(n)
    ]


def open_png(data: bytes) -> Image.Image:
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def caption_area(data: bytes, size: int = 600) -> Image.Image:
    image = open_png(data).convert("L")
    return image.crop((0, size, image.width, image.height))


def dark_pixels(image: Image.Image) -> int:
    return sum(image.convert("L").point(lambda v: 255 if v < 128 else 0).histogram()[255:])


def test_qr_image_is_the_qr_matrix() -> None:
    image = qr_image(URL, box_size=4, border=2)
    expected = matrix(URL, border=2)
    assert image.mode == "1"
    assert image.size == (len(expected) * 4, len(expected) * 4)
    assert sampled(image, len(expected), image.width) == expected


@pytest.mark.parametrize("length", [1, 17, 40, 90, 150, 230, 320, 500, 800])
def test_qr_image_picks_the_mask_qrcode_would(length: int) -> None:
    for seed in range(6):
        content = "".join(random.Random(seed * 1000 + length).choices(ALPHABET, k=length))
        expected = matrix(content)
        image = qr_image(content, box_size=1)
        assert sampled(image, len(expected), image.width) == expected, content


@pytest.mark.parametrize("size", [600, 400])
def test_code_png_is_a_png_of_the_width_with_the_qr_intact(size: int) -> None:
    image = open_png(code_png(qr_image(URL), CAPTION, size=size))
    expected = matrix(URL)
    assert image.width == size
    assert image.height > size
    assert image.info["dpi"] == pytest.approx((300, 300), abs=0.01)
    assert sampled(image, len(expected), size) == expected


def test_without_caption_the_png_is_just_the_code() -> None:
    image = open_png(code_png(qr_image(URL), ["", "  "]))
    assert image.size == (600, 600)


def test_chinese_glyphs_are_drawn() -> None:
    qr = qr_image(URL)
    wang = caption_area(code_png(qr, ["王芳"]))
    li = caption_area(code_png(qr, ["李明"]))
    assert dark_pixels(wang) > 200
    assert wang.tobytes() != li.tobytes()  # a font without CJK would draw the same two tofu boxes


def test_the_font_and_its_license_ship_with_the_package() -> None:
    assert FONT_PATH.is_file()
    license_text = (FONT_PATH.parent / "LICENSE-wqy-microhei.txt").read_text()
    assert "Apache-2.0" in license_text
    assert font(20).getname()[0] == "WenQuanYi Micro Hei"


def test_a_long_line_is_wrapped_and_stays_inside_the_margins() -> None:
    long_line = "2026 上海国际工业博览会 新材料与智能制造专区 A馆 3号展台 欢迎扫码咨询"
    short = open_png(code_png(qr_image(URL), ["王芳"]))
    wrapped = open_png(code_png(qr_image(URL), [long_line, "王芳"]))
    assert wrapped.height > short.height + 30
    caption = caption_area(code_png(qr_image(URL), [long_line]))
    left, _, right, _ = caption.point(lambda v: 255 if v < 128 else 0).getbbox() or (0, 0, 0, 0)
    assert left >= 20 and right <= 580


def test_fit_text_shrinks_then_wraps() -> None:
    assert [(text, face.size) for text, face in fit_text("No. 0042", 500, 40)] == [("No. 0042", 40)]
    shrunk = fit_text("王芳 · 华东大区 销售经理", 400, 40)
    assert len(shrunk) == 1 and 30 <= shrunk[0][1].size < 40
    assert shrunk[0][1].getlength(shrunk[0][0]) <= 400
    wrapped = fit_text("上海国际工业博览会 Smart Manufacturing Expo", 300, 40)
    assert len(wrapped) > 1
    assert "".join(text for text, _ in wrapped).replace(" ", "") == (
        "上海国际工业博览会SmartManufacturingExpo"
    )
    assert all(face.getlength(text) <= 300 for text, face in wrapped)


def test_image_bytes_from_wechat_are_accepted() -> None:
    jpeg = io.BytesIO()
    qr_image(URL).convert("RGB").resize((430, 430)).save(jpeg, "JPEG", quality=90)
    image = open_png(code_png(jpeg.getvalue(), ["王芳"]))
    expected = matrix(URL)
    assert image.mode == "L"  # a black code in an RGB JPEG is kept as gray
    assert sampled(image, len(expected), 600) == expected

    transparent = io.BytesIO()
    Image.new("RGBA", (280, 280), (0, 0, 0, 0)).save(transparent, "PNG")
    flat = open_png(code_png(transparent.getvalue(), []))
    assert flat.convert("L").getextrema() == (255, 255)


def test_fonts_are_loaded_once_and_a_call_costs_milliseconds() -> None:
    qr = qr_image(URL)
    code_png(qr, CAPTION)
    misses = font.cache_info().misses
    started = time.perf_counter()
    for _ in range(20):
        code_png(qr, CAPTION)
    per_call = (time.perf_counter() - started) / 20
    assert font.cache_info().misses == misses
    assert per_call < 0.05  # about 3 ms here; generous for slow CI machines
