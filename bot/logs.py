"""Logging that never carries a full phone number, a session_key, a token or a key.

Every record passes through one filter that masks phones and secret-looking query parameters,
and the access log shows query strings with their sensitive values masked.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from bot.privacy import mask_phones

SENSITIVE = re.compile(
    r"(?i)\b(access_token|token|secret|corpsecret|session_key|signature|msg_signature|echostr"
    r"|code|js_code|encrypt|key|password|authorization)=([^&\s\"']+)"
)
BEARER = re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]+")


def scrub(text: str) -> str:
    text = SENSITIVE.sub(lambda m: f"{m.group(1)}=***", text)
    text = BEARER.sub(lambda m: f"{m.group(1)} ***", text)
    return mask_phones(text)


class ScrubFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "scrubbed", False):
            return True
        message = record.getMessage()
        clean = scrub(message)
        if clean != message or record.args:
            record.msg, record.args = clean, None
        return True


class AccessLogger(AbstractAccessLogger):
    """One line a request. A WeChat push answered 200 is already on record as an interaction,
    so its line is DEBUG (at the rate booths produce them, INFO lines cost a fifth of the
    callback path); callbacks are logged without their query string (nothing but signatures
    and nonces); other query strings are scrubbed here, once."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        path = request.path
        callback = path.startswith("/wechat/")
        level = logging.DEBUG if callback and response.status == 200 else logging.INFO
        if not self.logger.isEnabledFor(level):
            return
        target = path if callback or not request.query_string else scrub(request.path_qs)
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


def access_log_args() -> dict[str, Any]:
    return {"access_log_class": AccessLogger}
