from __future__ import annotations

import io
import re
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from qr.render import qr_image
from qr.sheet import _grid, batch_sheet_pdf, write_sheet_pdf

CODES = [qr_image(f"https://work.weixin.qq.com/ca/cawcde{n:04d}") for n in range(20)]


def items(count: int) -> Iterator[tuple[Image.Image, str]]:
    for n in range(count):
        yield CODES[n % len(CODES)], f"No. {n + 1:04d}"


def pages(pdf: bytes) -> int:
    return len(re.findall(rb"/Type /Page(?!s)", pdf))


def check_structure(pdf: bytes) -> None:
    """Header, trailer and a cross-reference table whose every offset starts its object."""
    assert pdf.startswith(b"%PDF-1.4\n")
    assert pdf.endswith(b"%%EOF\n")
    xref = int(re.search(rb"startxref\n(\d+)\n%%EOF\n$", pdf).group(1))  # type: ignore[union-attr]
    table = pdf[xref:].split(b"trailer")[0].splitlines()
    assert table[0] == b"xref"
    count = int(table[1].split()[1])
    assert count == len(table) - 2  # the free entry 0 and objects 1…
    for ref, row in enumerate(table[3:], start=1):
        offset = int(row.split()[0])
        assert pdf[offset:].startswith(b"%d 0 obj\n" % ref)


@pytest.mark.parametrize(("count", "expected"), [(1, 1), (20, 1), (21, 2), (45, 3)])
def test_one_page_per_twenty_codes(count: int, expected: int) -> None:
    pdf = batch_sheet_pdf(list(items(count)), title="2026 上海工博会 宣传册")
    check_structure(pdf)
    assert pages(pdf) == expected
    assert b"/Count %d" % expected in pdf
    assert b"(%d / %d) Tj" % (expected, expected) in pdf
    assert pdf.count(b"/Subtype /Image") == 2 * count + 1  # code and label per cell, one title


def test_the_grid_is_configurable_and_a_generator_is_enough() -> None:
    pdf = batch_sheet_pdf(items(25), columns=3, rows=4)
    check_structure(pdf)
    assert pages(pdf) == 3
    assert b"(3) Tj" in pdf  # the total is unknown for a generator
    assert pdf.count(b"/Subtype /Image") == 2 * 25  # no title
    assert b"(3 / 3) Tj" in batch_sheet_pdf(items(25), columns=3, rows=4, count=25)


def test_progress_counts_every_code() -> None:
    seen: list[int] = []
    batch_sheet_pdf(items(53), progress=seen.append)
    assert seen == list(range(1, 54))


def test_crop_marks_sit_outside_every_cut_line() -> None:
    pdf = batch_sheet_pdf(items(20))
    segments = [
        tuple(map(float, match))
        for match in re.findall(rb"([\d.]+) ([\d.]+) m ([\d.]+) ([\d.]+) l", pdf)
    ]
    assert len(segments) == 20 * 8
    grid = _grid(4, 5, 0)
    cells = [(*grid.cell(index), grid.cell_width, grid.cell_height) for index in range(20)]
    corners = {(x + dx, y + dy) for x, y, w, h in cells for dx in (0, w) for dy in (0, h)}
    for x1, y1, x2, y2 in segments:
        for x, y, w, h in cells:
            for px, py in ((x1, y1), (x2, y2), ((x1 + x2) / 2, (y1 + y2) / 2)):
                assert not (x < px < x + w and y < py < y + h)
        # in line with a corner's cut edge, starting a little away from it
        assert any(
            (abs(x1 - cx) < 0.01 or abs(y1 - cy) < 0.01) and 2 < abs(x1 - cx) + abs(y1 - cy) < 4
            for cx, cy in corners
        )


def test_a_wechat_jpeg_is_embedded_as_is() -> None:
    buffer = io.BytesIO()
    CODES[0].convert("RGB").resize((430, 430)).save(buffer, "JPEG", quality=90)
    jpeg = buffer.getvalue()
    pdf = batch_sheet_pdf([(jpeg, "小程序码 No. 0001")])
    check_structure(pdf)
    assert b"/DCTDecode" in pdf and jpeg in pdf


def test_writing_to_a_path_is_all_or_nothing(tmp_path: Path) -> None:
    target = tmp_path / "brochures.pdf"
    assert write_sheet_pdf(items(30), target, title="宣传册") == 2
    check_structure(target.read_bytes())

    def failing() -> Iterator[tuple[Image.Image, str]]:
        yield from items(25)
        raise RuntimeError("WeChat refused")

    broken = tmp_path / "broken.pdf"
    with pytest.raises(RuntimeError):
        write_sheet_pdf(failing(), broken)
    assert list(tmp_path.iterdir()) == [target]


def test_bad_batches_are_refused() -> None:
    with pytest.raises(ValueError, match="at least one code"):
        batch_sheet_pdf([])
    with pytest.raises(ValueError, match="do not fit"):
        batch_sheet_pdf(items(1), columns=30)


class Sink(io.BytesIO):
    def write(self, data: bytes) -> int:  # type: ignore[override]
        return len(data)


def peak_memory(count: int) -> int:
    tracemalloc.start()
    try:
        write_sheet_pdf(items(count), Sink(), title="宣传册")
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_stays_flat_as_the_batch_grows() -> None:
    small, large = peak_memory(40), peak_memory(400)
    # each code adds ~3 kB of PDF: holding on to pages would add well over 1 MB here
    assert large - small < 300_000
