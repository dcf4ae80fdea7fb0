"""Logging that never carries a full phone number, a session_key, a token or a key.

Every record passes through one filter that masks phones (however they are written),
secret-looking query parameters, bearer tokens and every secret the service was configured
with — in the message, in a formatted traceback and in a stack. The access log shows paths and
query strings decoded, then scrubbed.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import parse_qsl

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.http_exceptions import HttpProcessingError

from bot.privacy import mask_phone, mask_phones, normalize_phone

# name=value where the name says secret, whatever surrounds it: session_token, sessionToken,
# x-auth, corpsecret, msg_signature, aes_key …; code, key, iv, ticket alone or as a suffix
# (js_code, auth_code — not errcode).
SENSITIVE = re.compile(
    r"(?i)\b([\w-]*?(?:token|secret|signature|password|passwd|auth|jwt|bearer|credential"
    r"|encrypt|session_key|aes_key)[\w-]*|(?:[\w-]*_)?(?:code|key|iv|ticket|echostr))"
    r"=([^&\s\"']+)")
# Something shaped like a signed token (ours, a JWT): two or three long base64url parts.
TOKEN_SHAPED = re.compile(r"\b[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{16,}(?:\.[A-Za-z0-9_-]{16,})?\b")
# The opportunity page's link: its token lets whoever holds it see and accept the opportunity.
PAGE_LINK = re.compile(r"(/o/)[A-Za-z0-9_=-]{8,}")
BEARER = re.compile(r"(?i)\b(bearer)\s+[^\s\"',;]+")
AUTHORIZATION = re.compile(r"(?i)(authorization['\"]?\s*[:=,]\s*['\"]?)[^\r\n'\"]+")
PERCENT_DIGIT = re.compile(r"%3([0-9])")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_secrets: set[str] = set()
_formatter = logging.Formatter()


def protect(*values: object) -> None:
    """Secrets of the running service (tokens, keys): never shown in a log line, wherever they
    turn up (a malformed header echoed in an error, a URL, a traceback)."""
    _secrets.update(str(v) for v in values if v is not None and len(str(v)) >= 8)


def scrub(text: str) -> str:
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, "***")
    if "%3" in text:  # percent-encoded digits are still a phone number
        text = PERCENT_DIGIT.sub(r"\1", text)
    text = SENSITIVE.sub(lambda m: f"{m.group(1)}=***", text)
    text = TOKEN_SHAPED.sub("***", text)
    if "/o/" in text:
        text = PAGE_LINK.sub(r"\1***", text)
    text = BEARER.sub(lambda m: f"{m.group(1)} ***", text)
    text = AUTHORIZATION.sub(lambda m: f"{m.group(1)}***", text)
    return mask_phones(text)


class ScrubFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "scrubbed", False):
            return True
        message = record.getMessage()
        clean = scrub(message)
        if clean != message or record.args:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:  # formatters reuse exc_text once it is set
            record.exc_text = _formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        return True


class ProtocolErrorFilter(logging.Filter):
    """aiohttp logs a request it cannot parse (a header over 8 KiB, a bad request line) with a
    traceback that quotes the raw bytes. It is the client's mistake: one line, no bytes."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            remote = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
            record.msg, record.args = "refused a malformed HTTP request from %s (%s %s)", (
                remote, exc.code, type(exc).__name__)
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def _identities_masked(query: str) -> str:
    """`identity=phone:…` normalised the way the lookup reads it, then masked: the regex
    of mask_phones need not guess every way a person can write a number."""
    if "phone" not in query:
        return query
    pairs = parse_qsl(query, keep_blank_values=True)
    return "&".join(
        f"{name}=phone:{mask_phone(normalize_phone(value[6:]))}"
        if name == "identity" and value.lower().startswith("phone:") else f"{name}={value}"
        for name, value in pairs)


# aiohttp's server logger for our applications (see bot.api.SERVER_OPTIONS).
SERVER_LOG = logging.getLogger("bot.server")
SERVER_LOG.addFilter(ProtocolErrorFilter())


QUIET = "/mp/reads"  # every open page beats every few seconds; the read keeps the record


class AccessLogger(AbstractAccessLogger):
    """One line a request. A WeChat push answered 200 is already on record as an interaction,
    and so is a read's heartbeat, so their lines are DEBUG (at the rates booths and readers
    produce them, INFO lines cost a fifth of the path); callbacks are logged without their query
    string (nothing but signatures and nonces); other paths and query strings are logged
    decoded and scrubbed, here, once."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        path = request.path
        callback = path.startswith("/wechat/")
        quiet = callback or path == QUIET  # on record already, and many a second
        level = logging.DEBUG if quiet and response.status == 200 else logging.INFO
        if not self.logger.isEnabledFor(level):
            return
        if callback:
            target = path
        else:
            query = request.query_string
            target = scrub(f"{path}?{_identities_masked(query)}" if query else path)
            if CONTROL.search(target):  # a decoded %0A must not start a forged line
                target = CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", target)
        self.logger.log(level, '%s "%s %s" %s %.1fms', request.remote, request.method, target,
                        response.status, time * 1000, extra={"scrubbed": True})

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)


def setup_logging(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(ScrubFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("tortoise", "aiosqlite", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
