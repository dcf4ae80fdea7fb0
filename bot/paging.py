"""Cursor paging for the admin lists: newest first, keyed on the id, so a page never shifts when
rows are added. A cursor is the last id seen, signed: a tampered cursor is a 400, not a scan."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from tortoise.models import Model
from tortoise.queryset import QuerySet

from bot.errors import BadRequest
from bot.signing import SignedIds

M = TypeVar("M", bound=Model)
DEFAULT_LIMIT, MAX_LIMIT = 50, 200


class Cursors(SignedIds):
    def __init__(self, secret_key: str) -> None:
        super().__init__(secret_key, b"admin-cursor")

    def encode(self, last_id: int) -> str:
        return self.issue(last_id)

    def decode(self, cursor: str) -> int:
        last_id = self.read(cursor)
        if last_id is None:
            raise BadRequest("`cursor` is not one this service gave out", code="invalid_cursor")
        return last_id


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
