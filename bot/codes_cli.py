"""`python -m bot codes issue ...`: issue a batch through WeChat and print it, with progress."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from tqdm import tqdm

from bot.db import close_db, init_db, migrate
from bot.errors import ScrmError
from bot.settings import Settings
from bot.store import create_store
from bot.wechat import WeChat
from models import Code, CodeArtwork
from qr import render
from qr.images import caption, code_png, qr_source, with_source
from qr.issuing import CodeIssuer, parse_request
from qr.sheet import write_sheet_pdf


@asynccontextmanager
async def service(settings: Settings) -> AsyncIterator[WeChat]:
    """The database, the store and a WeChat client, as `serve` has them."""
    if settings.is_sqlite:
        await migrate(settings.database_url)
    await init_db(settings.database_url)
    store = create_store(settings.redis_url)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            yield WeChat(settings, store, session)
    finally:
        await store.close()
        await close_db()


def request_from(args: argparse.Namespace) -> dict[str, Any]:
    data: dict[str, Any] = {"kind": args.kind, "channel": args.channel, "count": args.count,
                            "permanent": args.permanent,
                            "tags": [t.strip() for t in args.tags.split(",") if t.strip()]}
    for name in ("campaign", "salesperson_id", "partner_id", "material_id", "team",
                 "backup_salesperson_id", "welcome", "page", "expire_days"):
        if getattr(args, name) is not None:
            data[name] = getattr(args, name)
    return data


def sheet_items(codes: list[Code], loop: asyncio.AbstractEventLoop, pool: Executor,
                wechat: WeChat | None = None,
                chunk: int = 200) -> Iterator[tuple[render.CodeImage, str]]:
    """The sheet's (QR, label) pairs for a PDF written in a thread: loaded a chunk at a time from
    the event loop, so memory stays flat however large the batch, and OA codes' QR drawn in
    `pool` one chunk ahead of the writer, so both cores work."""

    def prepare(part: list[Code]) -> tuple[list[Code], list[Any], Iterator[Any]]:
        loaded = asyncio.run_coroutine_threadsafe(_load(part, wechat), loop).result()
        urls = [code.url for code, (artwork, _) in zip(part, loaded, strict=True)
                if not (artwork and artwork.source) and code.url]
        return part, loaded, pool.map(render.qr_image, urls, chunksize=25)

    parts = [codes[start:start + chunk] for start in range(0, len(codes), chunk)]
    ahead = prepare(parts[0]) if parts else None
    for index in range(len(parts)):
        assert ahead is not None
        part, loaded, drawn = ahead
        ahead = prepare(parts[index + 1]) if index + 1 < len(parts) else None
        for code, (artwork, lines) in zip(part, loaded, strict=True):
            image = (bytes(artwork.source) if artwork and artwork.source else next(drawn)
                     if code.url else qr_source(code, artwork))
            yield image, lines[-1] if lines else code.scene


async def _load(codes: list[Code], wechat: WeChat | None
                ) -> list[tuple[CodeArtwork | None, list[str]]]:
    artworks = {a.code_id: a for a in await CodeArtwork.filter(  # type: ignore[attr-defined]
        code_id__in=[c.id for c in codes]).only("code_id", "source")}
    return [(await with_source(code, artworks.get(code.id), wechat), await caption(code))
            for code in codes]


async def issue_codes(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    try:
        code_request = parse_request(request_from(args))
        async with service(settings) as wechat:
            with tqdm(total=code_request.count, desc="issuing", unit="code",
                      file=sys.stderr) as bar:
                codes = await CodeIssuer(wechat).issue(code_request, progress=bar.update)
            if args.png:
                with open(args.png, "wb") as out:
                    out.write(await code_png(codes[0], wechat))
            if args.sheet:
                title = code_request.campaign or (await caption(codes[0]) or [None])[0]
                with ProcessPoolExecutor(max_workers=os.cpu_count() or 2) as pool, tqdm(
                        total=len(codes), desc="printing", unit="code", file=sys.stderr) as bar:
                    items = sheet_items(codes, asyncio.get_running_loop(), pool, wechat)

                    def progress(done: int) -> None:
                        bar.update(done - bar.n)
                    pages = await asyncio.to_thread(write_sheet_pdf, items, args.sheet,
                                                    title=title, progress=progress,
                                                    count=len(codes))
                print(f"sheet: {args.sheet} ({pages} pages)")
    except ScrmError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    report(codes)
    return 0


def report(codes: list[Code], listed: int = 20) -> None:
    """What was made, so that any one code can be fetched again later: each code's id and
    serial (a large batch as ranges, with where to list them)."""
    first, last = codes[0], codes[-1]
    expiry = (f", expiring {first.expires_at:%Y-%m-%d %H:%M} UTC" if first.expires_at
              else ", permanent" if first.permanent else "")
    print(f"issued {len(codes)} {first.kind.value} code(s) on {first.channel.value}"
          + (f", batch {first.batch}" if first.batch else "") + expiry)
    if len(codes) > listed:
        print(f"  ids {first.id}–{last.id}, serials {first.serial}–{last.serial}; list them with "
              f"GET /admin/codes?batch={first.batch}")
        return
    for code in codes:
        serial = f"No. {code.serial:04d}  " if code.serial is not None else ""
        print(f"  {serial}id {code.id}  scene {code.scene}  image /admin/codes/{code.id}/image.png")
