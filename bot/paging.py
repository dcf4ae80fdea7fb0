"""Cursor paging for the admin lists: newest first, keyed on the id, so a page never shifts when
rows are added. A cursor is the last id seen, signed: a tampered cursor is a 400, not a scan."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from tortoise.models import Model
from tortoise.queryset import QuerySet

from bot.errors import BadRequest

M = TypeVar("M", bound=Model)
DEFAULT_LIMIT, MAX_LIMIT = 50, 200


class Cursors:
    def __init__(self, secret_key: str) -> None:
        self._key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"scrm",
                         info=b"admin-cursor").derive(secret_key.encode())

    def _sign(self, body: bytes) -> bytes:
        return hmac.new(self._key, body, hashlib.sha256).digest()[:12]

    def encode(self, last_id: int) -> str:
        body = str(last_id).encode()
        return base64.urlsafe_b64encode(body + b"." + self._sign(body)).rstrip(b"=").decode()

    def decode(self, cursor: str) -> int:
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        except ValueError:  # not base64 (binascii.Error), or not ASCII
            raw = b""
        body, _, signature = raw.partition(b".")
        if (len(cursor) > 64 or not body.isdigit() or len(body) > 12
                or not hmac.compare_digest(self._sign(body), signature)
                or self.encode(int(body)) != cursor):  # base64 ignores a last char's spare bits
            raise BadRequest("`cursor` is not one this service gave out", code="invalid_cursor")
        return int(body)


def limit_of(query: Mapping[str, str]) -> int:
    raw = query.get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 3) or not 1 <= int(raw) <= MAX_LIMIT:
        raise BadRequest(f"`limit` must be an integer from 1 to {MAX_LIMIT}",
                         code="invalid_field")
    return int(raw)


async def page(query: QuerySet[M], params: Mapping[str, str], cursors: Cursors,
               show: Callable[[Sequence[M]], Awaitable[list[dict[str, Any]]]]
               ) -> dict[str, Any]:
    """`{"items": [...], "next": cursor | null}`: up to `limit` rows of `query`, newest first,
    after the row the cursor names."""
    limit = limit_of(params)
    if params.get("cursor"):
        query = query.filter(id__lt=cursors.decode(params["cursor"]))
    rows = await query.order_by("-id").limit(limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": await show(rows),
            "next": cursors.encode(rows[-1].pk) if more and rows else None}
