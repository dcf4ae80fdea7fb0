"""Hostile HTTP: compressed bodies, malformed JSON and values, clients that leave or stall
mid-body, non-ASCII headers. Each is a 4xx in the JSON error envelope, never a 500, and nothing
is stored."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gzip
import json
import logging
import zlib
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest
from aiohttp import web

from bot.app import create_app
from bot.settings import Settings
from models import Code, Interaction, Material, Partner, Prospect, Salesperson
from tests.bot.kit import eventually
from tests.conftest import ADMIN_TOKEN

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
AUTH_LINE = f"Authorization: Bearer {ADMIN_TOKEN}".encode()
GUARD = 10.0  # seconds a raw socket waits for the server: a guard against hanging, not a bound
MP_OPENID = "oGZUI0egBJY1zhBYw2KhdUfwVJJE"


# --- helpers ------------------------------------------------------------------------------------

async def refused(response: Any, status: int, code: str) -> str:
    """Asserts a `status` answer in the error envelope with `code`; returns its message."""
    assert response.status == status, (response.status, await response.text())
    return envelope(await response.json(), code)


def envelope(body: Any, code: str) -> str:
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["code"] == code, body
    assert body["error"]["message"]
    return str(body["error"]["message"])


@functools.cache
def gzip_bomb() -> bytes:
    """About 1 MiB of gzip that inflates to 1 GiB of zeros."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(1 << 20)
    return b"".join([*(compressor.compress(zeros) for _ in range(1024)), compressor.flush()])


def compressed(kind: str) -> tuple[str, bytes]:
    """(Content-Encoding, body); once inflated, the body is a valid salesperson or login."""
    plain = b'{"name": "x", "code": "c"}'
    return {
        "gzip": ("gzip", gzip.compress(plain)),
        "gzip-bomb": ("gzip", gzip_bomb()),
        "gzip-invalid": ("gzip", b"this is not gzip at all"),
        "deflate": ("deflate", zlib.compress(plain)),
        "br": ("br", b"\x8b\x0c\x80" + plain + b"\x03"),
    }[kind]


async def nothing_stored() -> None:
    assert await Salesperson.all().count() == 0
    assert await Partner.all().count() == 0
    assert await Material.all().count() == 0
    assert await Interaction.all().count() == 0
    assert await Prospect.all().count() == 0


async def healthy(client: Any) -> None:
    assert (await client.get("/healthz")).status == 200


def raw_head(method: str, path: str, *lines: bytes) -> bytes:
    start = f"{method} {path} HTTP/1.1".encode()
    return b"\r\n".join([start, b"Host: scrm.test", *lines, b"", b""])


async def read_response(reader: asyncio.StreamReader) -> tuple[int, Any]:
    """(status, JSON body) of one response read off a raw connection."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), GUARD)
    status = int(head.split(b" ", 2)[1])
    headers = dict(line.split(b":", 1) for line in head.split(b"\r\n")[1:] if b":" in line)
    length = int({k.strip().lower(): v for k, v in headers.items()}[b"content-length"])
    return status, json.loads(await asyncio.wait_for(reader.readexactly(length), GUARD))


async def closed_by_server(reader: asyncio.StreamReader) -> bool:
    """Whether the server closes the connection (nothing more comes, then EOF)."""
    return await asyncio.wait_for(reader.read(), GUARD) == b""


@contextlib.asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[tuple[str, int]]:
    """The service on a real port as `python -m bot serve` runs it (aiohttp's runner with its
    defaults: a client that leaves does not cancel its handler, unlike the test client's
    server), without the worker; yields its (host, port)."""
    runner = web.AppRunner(create_app(settings, worker=False))
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        host, port = runner.addresses[0][:2]
        yield host, port
    finally:
        await runner.cleanup()


async def connect(address: tuple[str, int]) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(*address)


async def exchange(address: tuple[str, int], head: bytes) -> tuple[int, Any]:
    """(status, JSON body) of one request without a body on a connection of its own."""
    reader, writer = await connect(address)
    try:
        writer.write(head)
        await writer.drain()
        return await read_response(reader)
    finally:
        writer.close()


async def healthy_at(address: tuple[str, int]) -> None:
    status, body = await exchange(address, raw_head("GET", "/healthz", b"Connection: close"))
    assert (status, body["status"]) == (200, "ok")


# --- 1. compressed bodies ---------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["gzip", "gzip-bomb", "gzip-invalid", "deflate", "br"])
@pytest.mark.parametrize("path", ["/healthz", "/admin/salespeople", "/mp/login", "/wechat/oa"])
async def test_compressed_bodies_are_refused_with_415_and_nothing_is_stored(client, path, kind):
    encoding, body = compressed(kind)
    response = await client.post(path, data=body, headers={
        **AUTH, "Content-Encoding": encoding, "Content-Type": "application/json"})
    message = await refused(response, 415, "unsupported_content_encoding")
    assert "compressed" in message
    await nothing_stored()
    await healthy(client)  # the service answers the next request


async def test_a_gzip_bomb_is_refused_unread_and_the_connection_closed(app_settings, store):
    bomb = gzip_bomb()
    assert len(bomb) < 1100 * 1024  # 1 MiB on the wire, 1 GiB once inflated
    async with serving(app_settings) as address:
        reader, writer = await connect(address)
        try:
            writer.write(raw_head("POST", "/admin/salespeople", AUTH_LINE,
                                  b"Content-Type: application/json", b"Content-Encoding: gzip",
                                  f"Content-Length: {len(bomb)}".encode()))
            writer.write(bomb)
            await writer.drain()
            status, body = await read_response(reader)
            assert status == 415
            envelope(body, "unsupported_content_encoding")
            assert await closed_by_server(reader)
        finally:
            writer.close()
        await nothing_stored()
        await healthy_at(address)


# --- 2. caller mistakes: a 4xx envelope, never a 500 ---------------------------------------------

@pytest.mark.parametrize("body", ["[" * 50_000, '{"a":' * 12_000], ids=["arrays", "objects"])
@pytest.mark.parametrize("path", ["/admin/salespeople", "/mp/login"])
async def test_json_nested_deeper_than_python_goes_is_malformed_json(client, path, body):
    assert len(body) < 64 * 1024  # within the JSON body limit: the parser sees it all
    response = await client.post(path, data=body.encode(), headers={
        **AUTH, "Content-Type": "application/json"})
    await refused(response, 400, "malformed_json")
    await nothing_stored()


@pytest.mark.parametrize("body", ["[" * 100_000, '{"a":' * 100_000], ids=["arrays", "objects"])
@pytest.mark.parametrize("path", ["/admin/salespeople", "/mp/login"])
async def test_json_nested_100000_deep_is_refused_as_too_large(client, path, body):
    response = await client.post(path, data=body.encode(), headers={
        **AUTH, "Content-Type": "application/json"})
    await refused(response, 413, "payload_too_large")  # over the 64 KiB of any JSON body
    await nothing_stored()
    await healthy(client)


NOT_UTF8 = [  # one JSON text, its "x" values made non-ASCII where the encoding needs it
    lambda text: text.replace('"x"', '"caf\xe9"').encode("latin-1"),
    lambda text: text.encode("utf-16"),
    lambda text: text.encode("utf-16-le"),
    lambda text: text.encode("utf-32"),
    lambda text: text.encode().replace(b'"x"', b'"x\xed\xa0\x80"'),  # UTF-8 of a surrogate
]


@pytest.mark.parametrize("path", ["/admin/salespeople", "/mp/login"])
async def test_a_body_that_is_not_utf8_is_malformed_json(client, wechat, path):
    for encode in NOT_UTF8:
        fields = ({"name": "x"} if path == "/admin/salespeople"  # a valid wx.login code below
                  else {"code": wechat.issue_login_code(MP_OPENID), "scene": "x"})
        response = await client.post(path, data=encode(json.dumps(fields)), headers={
            **AUTH, "Content-Type": "application/json"})
        await refused(response, 400, "malformed_json")
    await nothing_stored()


async def test_an_id_past_the_int_digit_limit_is_400(client):
    for path in ("/admin/prospects/" + "9" * 5000, "/admin/codes/" + "9" * 5000 + "/image.png",
                 "/admin/opportunities?salesperson_id=" + "9" * 5000):
        await refused(await client.get(path, headers=AUTH), 400, "invalid_field")


async def test_a_superscript_digit_is_not_an_id(client):
    await refused(await client.get("/admin/prospects/%C2%B2", headers=AUTH), 400,
                  "invalid_field")


async def test_an_arabic_indic_digit_is_not_prospect_1(client):
    prospect = await Prospect.create()
    assert prospect.id == 1
    assert (await client.get("/admin/prospects/1", headers=AUTH)).status == 200
    await refused(await client.get("/admin/prospects/%D9%A1", headers=AUTH), 400,
                  "invalid_field")


async def test_an_over_long_identity_is_400(client):
    response = await client.get("/admin/prospects", headers=AUTH,
                                params={"identity": "oa_openid:" + "x" * 5000})
    await refused(response, 400, "invalid_field")


async def test_a_phone_identity_without_digits_is_400(client):
    response = await client.get("/admin/prospects", headers=AUTH,
                                params={"identity": "phone:abc"})
    await refused(response, 400, "invalid_identity")


async def test_a_material_kind_that_is_a_list_is_400(client):
    response = await client.post("/admin/materials", headers=AUTH,
                                 json={"title": "t", "kind": ["article"]})
    await refused(response, 400, "invalid_field")
    await nothing_stored()


LONE_SURROGATE = b'{"name": "x\\ud800"}'  # the JSON escape, as a caller may write it


@pytest.mark.parametrize("path", ["/admin/salespeople", "/admin/partners"])
async def test_a_lone_surrogate_in_a_name_is_400_and_nothing_is_stored(client, path):
    response = await client.post(path, data=LONE_SURROGATE, headers={
        **AUTH, "Content-Type": "application/json"})
    assert "name" in await refused(response, 400, "invalid_field")
    await nothing_stored()
    await healthy(client)


async def test_a_lone_surrogate_in_the_login_scene_is_400_and_nothing_is_stored(client, wechat):
    code = wechat.issue_login_code(MP_OPENID)
    body = b'{"code": "%s", "scene": "booth\\udfff"}' % code.encode()
    response = await client.post("/mp/login", data=body,
                                 headers={"Content-Type": "application/json"})
    assert "scene" in await refused(response, 400, "invalid_field")
    await nothing_stored()
    await healthy(client)


@pytest.mark.parametrize("path", ["/admin/salespeople", "/admin/partners"])
async def test_a_nul_in_a_name_is_400_and_nothing_is_stored(client, path):
    response = await client.post(path, headers=AUTH, json={"name": "x\u0000y"})
    assert "name" in await refused(response, 400, "invalid_field")
    await nothing_stored()


@pytest.mark.parametrize("tags", [["x" * 33], [f"t{i}" for i in range(51)]],
                         ids=["tag-over-32-characters", "51-tags"])
@pytest.mark.parametrize("path", ["/admin/partners", "/admin/materials"])
async def test_tags_over_32_characters_or_more_than_50_are_400(client, path, tags):
    response = await client.post(path, headers=AUTH,
                                 json={"name": "p", "tags": tags} if path.endswith("partners")
                                 else {"title": "t", "kind": "article", "tags": tags})
    assert "tags" in await refused(response, 400, "invalid_field")
    await nothing_stored()


async def test_a_material_url_must_be_http_or_https_with_a_host(client):
    for url in ("javascript:alert(1)", "ftp://x", "http://", "https://", "//example.com/a",
                "data:text/html,<b>x</b>"):
        response = await client.post("/admin/materials", headers=AUTH,
                                     json={"title": "t", "kind": "article", "url": url})
        assert "url" in await refused(response, 400, "invalid_field"), url
    await nothing_stored()
    response = await client.post("/admin/materials", headers=AUTH, json={
        "title": "t", "kind": "article", "url": "https://example.com/a"})
    assert response.status == 201
    assert (await response.json())["url"] == "https://example.com/a"


async def test_an_unknown_salesperson_field_is_named_back(client):
    response = await client.post("/admin/salespeople", headers=AUTH,
                                 json={"name": "x", "tem": "A"})
    assert "`tem`" in await refused(response, 400, "unknown_field")
    await nothing_stored()


async def test_an_unknown_code_field_is_named_back(client):
    created = await client.post("/admin/salespeople", headers=AUTH, json={"name": "x"})
    person = (await created.json())["id"]
    response = await client.post("/admin/codes", headers=AUTH, json={
        "kind": "salesperson", "channel": "oa", "salesperson_id": person, "welcom": "hi"})
    assert "`welcom`" in await refused(response, 400, "unknown_field")
    assert await Code.all().count() == 0


# --- 3. a client that leaves mid-body -----------------------------------------------------------

def access_line(caplog: pytest.LogCaptureFixture, request_line: str) -> bool:
    return any(request_line in record.getMessage() for record in caplog.records
               if record.name == "aiohttp.access")


async def test_a_client_leaving_mid_body_stores_nothing_and_logs_no_traceback(
        app_settings, store, caplog):
    caplog.set_level(logging.INFO)
    async with serving(app_settings) as address:
        reader, writer = await connect(address)
        writer.write(raw_head("POST", "/admin/salespeople", AUTH_LINE, b"Expect: 100-continue",
                              b"Content-Type: application/json", b"Content-Length: 1000"))
        await writer.drain()
        continued = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), GUARD)
        assert continued.startswith(b"HTTP/1.1 100")  # the service is handling the request
        writer.write(b'{"name": "')  # 10 of the 1,000 bytes announced
        await writer.drain()
        writer.close()
        await writer.wait_closed()

        async def answered() -> bool:  # its access line is written once its handler is done
            return access_line(caplog, "POST /admin/salespeople")

        await eventually(answered)
        await healthy_at(address)
        await nothing_stored()
    tracebacks = [r for r in caplog.records if r.levelno >= logging.ERROR and r.exc_info]
    assert tracebacks == [], [r.getMessage() for r in tracebacks]


# --- 4. a client that stalls mid-body -----------------------------------------------------------

async def test_a_client_stalling_mid_body_gets_408_and_is_disconnected(app_settings, store):
    async with serving(replace(app_settings, body_timeout=0.3)) as address:
        reader, writer = await connect(address)
        try:
            writer.write(raw_head("POST", "/admin/salespeople", AUTH_LINE,
                                  b"Content-Type: application/json", b"Content-Length: 1000"))
            writer.write(b'{"n')  # 3 of the 1,000 bytes announced, and nothing more
            await writer.drain()
            status, body = await read_response(reader)
            assert status == 408
            envelope(body, "request_timeout")
            assert await closed_by_server(reader)
        finally:
            writer.close()
        await nothing_stored()
        await healthy_at(address)


# --- 5. authorization headers that are not ASCII ------------------------------------------------

async def test_a_non_ascii_authorization_header_is_401(app_settings, store):
    token = b"Authorization: Bearer " + ADMIN_TOKEN.encode() + b"\xff\xfe"
    async with serving(app_settings) as address:
        for path in ("/admin/prospects/1", "/mp/materials/1"):
            status, body = await exchange(address, raw_head("GET", path, token,
                                                            b"Connection: close"))
            assert status == 401, (path, body)
            envelope(body, "unauthorized")
        await healthy_at(address)


# --- 6. JSON answers in UTF-8 -------------------------------------------------------------------

async def test_json_answers_write_non_ascii_as_is(client):
    response = await client.post("/admin/salespeople", headers=AUTH,
                                 json={"name": "王芳", "team": "华东"})
    assert response.status == 201
    raw = await response.read()
    assert "王芳".encode() in raw and "华东".encode() in raw
    assert b"\\u" not in raw
    assert response.charset == "utf-8"
