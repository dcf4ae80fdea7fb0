"""Checking what callers send, before any of it reaches a query or a shared batch.

Every value from outside is bounded and typed here: text is a `str` that UTF-8 can encode, without
NUL (PostgreSQL refuses it) and, on one-line fields, without control characters; ids are ASCII
digits in the columns' range; an unknown field is named back to the caller. Each refusal is a
`BadRequest` naming the field.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from enum import StrEnum
from typing import Any, TypeVar
from urllib.parse import urlsplit

from bot.errors import BadRequest, NotFound

E = TypeVar("E", bound=StrEnum)
MAX_ID = 2**31 - 1
MAX_TAGS, TAG_LIMIT = 50, 32
# Control characters, and the noncharacters XML cannot carry (text may end up in a WeChat reply).
_CONTROL = re.compile(r"[\x00-\x1f\x7f\ufffe\uffff]")
_CONTROL_MULTILINE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")


def invalid(name: str, message: str, code: str = "invalid_field") -> BadRequest:
    return BadRequest(f"`{name}` {message}", code=code)


def only(data: Mapping[str, Any], allowed: Iterable[str]) -> None:
    """An unknown field is a 400 naming it and the fields allowed (a typo must not pass)."""
    allowed = tuple(allowed)
    unknown = [key for key in data if key not in allowed]
    if unknown:
        takes = f"allowed: {', '.join(allowed)}" if allowed else "none is taken here"
        raise BadRequest(f"unknown field {shown(unknown[0])}; {takes}", code="unknown_field")


def shown(name: str, limit: int = 40) -> str:
    """A caller's field name fit to quote back: printable, encodable, short."""
    clean = "".join(c if c.isprintable() else "?" for c in name[:limit])  # surrogates too
    return f"`{clean}`" + ("…" if len(name) > limit else "")


def check_text(value: str, name: str, limit: int, *, multiline: bool = False) -> str:
    """`value` stripped, if it is storable text of at most `limit` characters."""
    if len(value) > limit:
        raise invalid(name, f"is longer than {limit} characters")
    if (_CONTROL_MULTILINE if multiline else _CONTROL).search(value):
        raise invalid(name, "holds control characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, from a JSON "\ud800" escape
        raise invalid(name, "is not valid Unicode text") from None
    return value.strip()


def text(data: Mapping[str, Any], name: str, *, limit: int = 200, required: bool = False,
         multiline: bool = False) -> str | None:
    """A non-empty string field, stripped; None when absent (or a 400 when `required`)."""
    value = data.get(name)
    if value is None:
        if required:
            raise invalid(name, "is required", "missing_field")
        return None
    if not isinstance(value, str):
        raise invalid(name, "must be a string")
    value = check_text(value, name, limit, multiline=multiline)
    if not value:
        raise invalid(name, "must not be empty")
    return value


def integer(data: Mapping[str, Any], name: str, default: int | None = None, *, low: int = 1,
            high: int = MAX_ID) -> int | None:
    value = data.get(name, default)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():  # 19.0 is an integer to JSON Schema
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise invalid(name, f"must be an integer from {low} to {high}")
    return value


def boolean(data: Mapping[str, Any], name: str, default: bool = False) -> bool:
    value = data.get(name, default)
    if not isinstance(value, bool):
        raise invalid(name, "must be true or false")
    return value


def param(query: Mapping[str, str], name: str, limit: int) -> str:
    """A query string's text filter: not empty, at most `limit` characters."""
    value = check_text(query[name], name, limit)
    if not value:
        raise invalid(name, "must not be empty")
    return value


def flag(value: str, name: str) -> bool:
    """A query string's true or false."""
    if value.lower() not in ("true", "false"):
        raise invalid(name, "must be true or false")
    return value.lower() == "true"


def choice(data: Mapping[str, Any], name: str, enum: type[E], *,
           code: str = "invalid_field") -> E:
    value = data.get(name)
    allowed = [member.value for member in enum]
    if not isinstance(value, str) or value not in allowed:
        raise invalid(name, f"must be one of {', '.join(allowed)}", code)
    return enum(value)


def tags(data: Mapping[str, Any], name: str = "tags") -> list[str]:
    """Distinct, stripped, non-empty one-line strings of at most 32 characters; at most 50."""
    value = data.get(name, [])
    if not isinstance(value, list) or len(value) > MAX_TAGS:
        raise invalid(name, f"must be a list of at most {MAX_TAGS} strings")
    cleaned = []
    for tag in value:
        if not isinstance(tag, str) or not (tag := check_text(tag, name, TAG_LIMIT)):
            raise invalid(name, f"must hold non-empty strings of at most {TAG_LIMIT} characters")
        cleaned.append(tag)
    return list(dict.fromkeys(cleaned))


def url(data: Mapping[str, Any], name: str, *, limit: int = 1024) -> str | None:
    """An absolute http(s) URL with a host."""
    value = text(data, name, limit=limit)
    if value is None:
        return None
    try:
        parts = urlsplit(value)
        valid = (parts.scheme in ("http", "https") and bool(parts.hostname)
                 and parts.port != 0)  # .port raises ValueError past 65535 or for "0x50"
    except ValueError:  # a bad port or bracketed host
        valid = False
    if not valid or any(c.isspace() for c in value):
        raise invalid(name, "must be an http:// or https:// URL")
    return value


def parse_id(raw: str, name: str = "id", what: str = "row", maximum: int = MAX_ID) -> int:
    """An id from a path or query string: ASCII digits (`str.isdigit` would take '²' and
    Arabic-Indic digits, and int() refuses past 4,300 digits). A positive number past the
    columns' range names nothing: 404."""
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 20 or int(raw) == 0:
        raise invalid(name, "must be a positive integer")
    value = int(raw)
    if value > maximum:
        raise NotFound(f"there is no {what} {value}")
    return value


Reader = Callable[[Mapping[str, Any], str], Any]


def read_form(data: Mapping[str, Any], spec: Mapping[str, Reader], *, partial: bool = False,
              not_null: Iterable[str] = ()) -> dict[str, Any]:
    """The values of a create (every field of `spec`, each reader applying its default) or, with
    `partial`, of an edit (the fields sent, at least one). A field in `not_null` cannot be
    cleared with null."""
    only(data, spec)
    if partial and not data:
        raise BadRequest(f"nothing to change: send any of {', '.join(spec)}",
                         code="nothing_to_change")
    values = {name: read(data, name) for name, read in spec.items()
              if not partial or name in data}
    for name in not_null:
        if name in values and values[name] is None:
            raise invalid(name, "cannot be null")
    return values
