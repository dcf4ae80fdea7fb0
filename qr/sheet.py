"""A4 PDF sheets of a batch of codes: a grid of cells, each with its serial label and crop marks.

Pages are written one at a time and nothing of a finished page is kept, so memory stays flat for
10,000 codes. Codes are embedded as images at their own resolution (QR modules stay sharp at any
printer resolution), labels and titles as 300 dpi grayscale, crop marks as vector lines.
"""

from __future__ import annotations

import io
import math
import os
import zlib
from collections.abc import Callable, Iterable, Iterator, Sized
from dataclasses import dataclass
from itertools import chain, islice
from typing import BinaryIO

from PIL import Image, ImageDraw

from qr.render import CodeImage, draw_lines, fit_text, load_code

MM = 72 / 25.4
A4 = (210 * MM, 297 * MM)
RASTER_DPI = 300
MARGIN, GUTTER, PADDING = 12 * MM, 8 * MM, 2 * MM
MARK_GAP, MARK_LENGTH = 1 * MM, 2.5 * MM
LABEL_PT, TITLE_PT, PAGE_NUMBER_PT = 9.0, 14.0, 8.0
# Helvetica advance widths (per 1000 em) of what a page number is made of.
_HELVETICA = {**dict.fromkeys("0123456789", 556), " ": 278, "/": 278}

Item = tuple[CodeImage, str]


def _px(points: float) -> int:
    return round(points * RASTER_DPI / 72)


def _pt(pixels: int) -> float:
    return pixels * 72 / RASTER_DPI


@dataclass(frozen=True)
class _Grid:
    columns: int
    rows: int
    top: float  # y of the first row's top cut line, PDF coordinates (origin bottom left)
    cell_width: float
    cell_height: float

    @property
    def code_side(self) -> float:
        inner_width = self.cell_width - 2 * PADDING
        return min(inner_width, self.cell_height - 2 * PADDING - LABEL_PT * 1.25)

    def cell(self, index: int) -> tuple[float, float]:
        """The bottom-left corner of cell `index` (row by row from the top left)."""
        row, column = divmod(index, self.columns)
        x = MARGIN + column * (self.cell_width + GUTTER)
        return x, self.top - (row + 1) * self.cell_height - row * GUTTER


def _grid(columns: int, rows: int, title_height: float) -> _Grid:
    if columns < 1 or rows < 1:
        raise ValueError(f"a sheet needs at least one column and one row, not {columns}×{rows}")
    top = A4[1] - MARGIN - (title_height + 7 * MM if title_height else 0)
    bottom = MARGIN + 2 * MM
    width = (A4[0] - 2 * MARGIN - (columns - 1) * GUTTER) / columns
    height = (top - bottom - (rows - 1) * GUTTER) / rows
    grid = _Grid(columns, rows, top, width, height)
    if grid.code_side < 10 * MM:
        raise ValueError(f"{columns}×{rows} codes do not fit on an A4 page")
    return grid


def _text_image(text: str, width: float, points: float, *, max_lines: int) -> Image.Image:
    """`text` as 300 dpi grayscale, shrunk or wrapped to `width` points, cropped to its lines."""
    lines = fit_text(text, _px(width), _px(points), min_size=_px(points * 0.65))[:max_lines]
    line_width = max((face.getlength(line) for line, face in lines), default=0)
    size = (math.ceil(line_width) + 2, round(sum(face.size * 1.25 for _, face in lines)) or 1)
    image = Image.new("L", size, 255)
    draw_lines(ImageDraw.Draw(image), lines, size[0] / 2, 0)
    return image


def _crop_marks(x: float, y: float, width: float, height: float) -> list[str]:
    """Short lines in line with each cut edge, starting just outside each corner."""
    near, far = MARK_GAP, MARK_GAP + MARK_LENGTH
    lines = []
    for cx, sx in ((x, -1), (x + width, 1)):
        for cy, sy in ((y, -1), (y + height, 1)):
            lines.append(f"{cx + sx * near:.2f} {cy:.2f} m {cx + sx * far:.2f} {cy:.2f} l")
            lines.append(f"{cx:.2f} {cy + sy * near:.2f} m {cx:.2f} {cy + sy * far:.2f} l")
    return lines


class _PdfWriter:
    """Just enough PDF 1.4: objects written as they come, one cross-reference table at the end."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.position = 0
        self.offsets: dict[int, int] = {}
        self.last_id = 0
        self._write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")

    def _write(self, data: bytes) -> None:
        self.out.write(data)
        self.position += len(data)

    def reserve(self) -> int:
        self.last_id += 1
        return self.last_id

    def put(self, body: str, stream: bytes | None = None, *, ref: int | None = None) -> int:
        ref = ref or self.reserve()
        self.offsets[ref] = self.position
        if stream is None:
            self._write(f"{ref} 0 obj\n{body}\nendobj\n".encode())
        else:
            head = f"{ref} 0 obj\n<< {body} /Length {len(stream)} >>\nstream\n".encode()
            self._write(head + stream + b"\nendstream\nendobj\n")
        return ref

    def image(self, code: CodeImage, max_side: int) -> tuple[int, tuple[int, int]]:
        """An image XObject of `code`, at most `max_side` px; a small enough JPEG goes in as is."""
        if isinstance(code, bytes) and code.startswith(b"\xff\xd8"):
            with Image.open(io.BytesIO(code)) as jpeg:
                if jpeg.mode in ("L", "RGB") and max(jpeg.size) <= max_side:
                    space = "/DeviceGray" if jpeg.mode == "L" else "/DeviceRGB"
                    return self._image(jpeg.size, space, 8, "/DCTDecode", code), jpeg.size
        image = load_code(code, draft=(max_side, max_side))
        if max(image.size) > max_side:
            scale = max_side / max(image.size)
            size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
            image = image.convert("L" if image.mode == "1" else image.mode).resize(size)
        space = "/DeviceRGB" if image.mode == "RGB" else "/DeviceGray"
        bits = 1 if image.mode == "1" else 8
        data = zlib.compress(image.tobytes())
        return self._image(image.size, space, bits, "/FlateDecode", data), image.size

    def _image(self, size: tuple[int, int], space: str, bits: int, codec: str, data: bytes) -> int:
        head = f"/Type /XObject /Subtype /Image /Width {size[0]} /Height {size[1]}"
        return self.put(
            f"{head} /ColorSpace {space} /BitsPerComponent {bits} /Filter {codec}", data
        )

    def close(self, root: int, info: str) -> None:
        info_ref = self.put(info)
        xref = self.position
        size = self.last_id + 1
        rows = "".join(f"{self.offsets[ref]:010d} 00000 n \n" for ref in range(1, size))
        self._write(f"xref\n0 {size}\n0000000000 65535 f \n{rows}".encode())
        trailer = f"<< /Size {size} /Root {root} 0 R /Info {info_ref} 0 R >>"
        self._write(f"trailer\n{trailer}\nstartxref\n{xref}\n%%EOF\n".encode())


def _page_number(text: str, centre_x: float, y: float) -> str:
    width = sum(_HELVETICA[char] for char in text) * PAGE_NUMBER_PT / 1000
    return f"BT /F1 {PAGE_NUMBER_PT} Tf {centre_x - width / 2:.2f} {y:.2f} Td ({text}) Tj ET"


def _chunks(items: Iterable[Item], size: int) -> Iterator[list[Item]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


class _Sheet:
    def __init__(self, pdf: _PdfWriter, title: str | None, columns: int, rows: int) -> None:
        self.pdf = pdf
        self.catalog, self.pages = pdf.reserve(), pdf.reserve()
        self.font = pdf.put("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
        self.kids: list[int] = []
        self.title: tuple[int, float, float] | None = None
        if title:
            image = _text_image(title, A4[0] - 2 * MARGIN, TITLE_PT, max_lines=2)
            ref, _ = pdf.image(image, max(image.size))
            self.title = ref, _pt(image.width), _pt(image.height)
        self.grid = _grid(columns, rows, self.title[2] if self.title else 0)

    def page(self, chunk: list[Item], number: str, done: Callable[[], None]) -> None:
        grid, pdf = self.grid, self.pdf
        side = grid.code_side
        objects: list[str] = []
        content = ["0 g 0 G 0.3 w"]
        if self.title:
            ref, width, height = self.title
            objects.append(f"/T {ref} 0 R")
            content.append(
                f"q {width:.2f} 0 0 {height:.2f} {(A4[0] - width) / 2:.2f}"
                f" {A4[1] - MARGIN - height:.2f} cm /T Do Q"
            )
        marks: list[str] = []
        for index, (code, label) in enumerate(chunk):
            x, y = grid.cell(index)
            centre = x + grid.cell_width / 2
            code_top = y + (grid.cell_height + side + LABEL_PT * 1.25) / 2
            ref, (width_px, height_px) = pdf.image(code, _px(side) * 2)
            scale = side / max(width_px, height_px)
            width, height = width_px * scale, height_px * scale
            objects.append(f"/C{index} {ref} 0 R")
            content.append(
                f"q {width:.2f} 0 0 {height:.2f} {centre - width / 2:.2f}"
                f" {code_top - (side + height) / 2:.2f} cm /C{index} Do Q"
            )
            if label.strip():
                image = _text_image(
                    label.strip(), grid.cell_width - 2 * PADDING, LABEL_PT, max_lines=2
                )
                ref, _ = pdf.image(image, max(image.size))
                width, height = _pt(image.width), _pt(image.height)
                objects.append(f"/L{index} {ref} 0 R")
                content.append(
                    f"q {width:.2f} 0 0 {height:.2f} {centre - width / 2:.2f}"
                    f" {code_top - side - height:.2f} cm /L{index} Do Q"
                )
            marks += _crop_marks(x, y, grid.cell_width, grid.cell_height)
            done()
        content += [*marks, "S", _page_number(number, A4[0] / 2, MARGIN / 2)]
        contents = pdf.put("", "\n".join(content).encode())
        resources = f"/XObject << {' '.join(objects)} >> /Font << /F1 {self.font} 0 R >>"
        self.kids.append(
            pdf.put(
                f"<< /Type /Page /Parent {self.pages} 0 R /MediaBox [0 0 {A4[0]:.2f} {A4[1]:.2f}]"
                f" /Resources << {resources} >> /Contents {contents} 0 R >>"
            )
        )

    def close(self, title: str | None) -> None:
        kids = " ".join(f"{kid} 0 R" for kid in self.kids)
        self.pdf.put(f"<< /Type /Pages /Kids [{kids}] /Count {len(self.kids)} >>", ref=self.pages)
        self.pdf.put(f"<< /Type /Catalog /Pages {self.pages} 0 R >>", ref=self.catalog)
        info = f"/Title <FEFF{title.encode('utf-16-be').hex()}> " if title else ""
        self.pdf.close(self.catalog, f"<< {info}/Producer (scrm qr.sheet) >>")


def write_sheet_pdf(
    items: Iterable[Item],
    out: BinaryIO | str | os.PathLike[str],
    *,
    title: str | None = None,
    columns: int = 4,
    rows: int = 5,
    progress: Callable[[int], None] | None = None,
    count: int | None = None,
) -> int:
    """Write the sheet to a binary file or a path (complete or not at all); the number of pages.

    `progress(done)` follows each code laid out; `count` numbers pages "3 / 25" for a generator.
    """
    if isinstance(out, str | os.PathLike):
        partial = f"{os.fspath(out)}.part"
        try:
            with open(partial, "wb") as file:
                pages = write_sheet_pdf(items, file, title=title, columns=columns, rows=rows,
                                        progress=progress, count=count)  # fmt: skip
            os.replace(partial, out)
        finally:
            if os.path.exists(partial):
                os.remove(partial)
        return pages
    per_page = columns * rows
    chunks = _chunks(items, per_page)
    first = next(chunks, None)
    if first is None:
        raise ValueError("a sheet needs at least one code")
    if count is None and isinstance(items, Sized):
        count = len(items)
    total = -(-count // per_page) if count else None
    sheet = _Sheet(_PdfWriter(out), title, columns, rows)
    laid_out = 0

    def done() -> None:
        nonlocal laid_out
        laid_out += 1
        if progress is not None:
            progress(laid_out)

    for number, chunk in enumerate(chain([first], chunks), start=1):
        sheet.page(chunk, f"{number} / {total}" if total else str(number), done)
    sheet.close(title)
    return len(sheet.kids)


def batch_sheet_pdf(
    items: Iterable[Item],
    *,
    title: str | None = None,
    columns: int = 4,
    rows: int = 5,
    progress: Callable[[int], None] | None = None,
    count: int | None = None,
) -> bytes:
    """The sheet as bytes; for thousands of codes prefer `write_sheet_pdf` to a file."""
    out = io.BytesIO()
    write_sheet_pdf(
        items, out, title=title, columns=columns, rows=rows, progress=progress, count=count
    )
    return out.getvalue()
