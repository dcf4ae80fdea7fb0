"""What every route shares: the error envelope, reading a body safely, JSON in and out, bearer
tokens, and the server's own limits. The callbacks, `/admin` and `/mp` all use this module, and
none of them imports another."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from aiohttp import web

from bot import keys
from bot.errors import (
    BadRequest,
    IncompleteBody,
    PayloadTooLarge,
    RequestTimeout,
    ScrmError,
    UnsupportedEncoding,
)
from bot.faults import as_caller_error, is_outage
from bot.logs import SERVER_LOG, AccessLogger

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
JSON_LIMIT = 64 * 1024  # every JSON body the API takes is far smaller

# Keyword arguments of aiohttp's request handler, carried by the application itself
# (`web.Application(handler_args=...)`) so that every server of it — `serve`, the demo, the
# tests — gets them.
SERVER_OPTIONS: dict[str, Any] = {
    # Never inflate a request body: WeChat never compresses a push, and an inflated body is read
    # on the event loop (a 1 MB gzip bomb is 1 GiB). Compressed bodies are refused (415) below.
    "auto_decompress": False,
    # An idle connection, or one still sending its headers, is closed after this long.
    "keepalive_timeout": 15.0,
    # A body nobody reads (a refused request) is discarded raw for at most this long, so that
    # the client can still read its answer, and never more.
    "lingering_time": 2.0,
    "logger": SERVER_LOG,
    "access_log_class": AccessLogger,
}


def error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    return {"error": {"code": code, "message": message}}


_dumps = partial(json.dumps, ensure_ascii=False, separators=(",", ":"))


def reply(data: Any, status: int = 200) -> web.Response:
    """JSON in UTF-8, non-ASCII written as is (never `\\uXXXX`)."""
    return web.json_response(data, status=status, dumps=_dumps)


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuses compressed bodies; turns domain errors and aiohttp's own 4xx into the JSON error
    envelope, an unavailable database or store into a 503, and anything else into a 500 that
    says nothing of its cause to the caller."""
    try:
        if "Content-Encoding" in request.headers and any(
                coding.strip().lower() not in ("", "identity")
                for value in request.headers.getall("Content-Encoding")
                for coding in value.split(",")):
            raise UnsupportedEncoding("compressed request bodies are not accepted; send the "
                                      "body uncompressed")
        return await handler(request)
    except ScrmError as exc:
        if exc.status >= 500:
            log.warning("%s %s: %r", request.method, request.path, exc)
        return _error(request, exc.status, exc.code, exc.message)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = (exc.reason or "error").lower().replace(" ", "_").replace("-", "_")
        response = _error(request, exc.status, code, exc.reason or "error")
        if "Allow" in exc.headers:  # a 405 says which methods the path takes
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except Exception as exc:
        if is_outage(exc):
            log.warning("%s %s: a service is unavailable (%s: %s)", request.method,
                        request.path, type(exc).__name__, exc)
            return _error(request, 503, "service_unavailable",
                          "the service is briefly unavailable; try again shortly")
        caller = as_caller_error(exc)
        if caller is not None:
            log.info("%s %s: %s (%s)", request.method, request.path, caller.message,
                     type(exc).__name__)
            return _error(request, caller.status, caller.code, caller.message)
        log.exception("%s %s failed", request.method, request.path)
        return _error(request, 500, "internal_error", "the service failed; it is logged")


def _error(request: web.Request, status: int, code: str, message: str) -> web.Response:
    message = message.encode("utf-8", "replace").decode()  # whatever a caller's text held
    response = reply(error_body(code, message), status=status)
    if not request.content.is_eof():  # a body left unread: do not wait for the rest of it
        response.force_close()
    return response


async def read_body(request: web.Request, limit: int) -> bytes:
    """The whole body, at most `limit` bytes (413 past it), within the settings' body timeout
    (408: a client that announces 1,000 bytes and sends 3 holds nothing for long)."""
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"the body is over {limit // 1024} KiB")
    content = request.content
    if content.is_eof():  # the usual push: it came with its headers, all of it is here
        body: bytes = content.read_nowait(-1)
        if len(body) > limit:
            raise PayloadTooLarge(f"the body is over {limit // 1024} KiB")
        return body
    try:
        async with asyncio.timeout(request.config_dict[keys.SETTINGS].body_timeout):
            return await _read(content, limit)
    except TimeoutError:
        raise RequestTimeout("the body did not arrive in time") from None


async def _read(content: Any, limit: int) -> bytes:
    chunks, size = [], 0
    try:
        async for chunk in content.iter_chunked(16 * 1024):
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"the body is over {limit // 1024} KiB")
            chunks.append(chunk)
    except (ConnectionError, web.RequestPayloadError):  # the client left mid-body
        raise IncompleteBody("the connection closed before the whole body arrived") from None
    return b"".join(chunks)


async def read_json(request: web.Request) -> dict[str, Any]:
    """A JSON object body (UTF-8), or a 400 saying what is wrong with it."""
    raw = await read_body(request, JSON_LIMIT)
    try:
        data = json.loads(raw.decode("utf-8")) if raw.strip() else None
    except (ValueError, RecursionError):  # bad JSON or UTF-8; nesting deeper than Python goes
        raise BadRequest("the body is not valid JSON", code="malformed_json") from None
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object", code="malformed_json")
    return data


def bearer(request: web.Request) -> str | None:
    """The token of `Authorization: Bearer TOKEN`; None when absent or not printable ASCII."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or not token.isascii() or not token.isprintable():
        return None
    return token
