"""A push from WeChat: guarded, parsed once, classified into a Signal, keyed for de-duplication."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any
from xml.etree import ElementTree

from bot.errors import BadRequest
from bot.signals import Signal

# A declaration anywhere (<!DOCTYPE, <!ENTITY, <!ELEMENT, <!ATTLIST, <!NOTATION) is refused before
# any parser sees the body: WeChat never sends one, and they are how XML bombs and XXE begin.
_DECLARATION = re.compile(rb"<!\s*(DOCTYPE|ENTITY|ELEMENT|ATTLIST|NOTATION)", re.IGNORECASE)
_PROCESSING = re.compile(rb"<\?(?!xml[\s?])", re.IGNORECASE)
QRSCENE = "qrscene_"


class MalformedPush(BadRequest):
    code = "malformed_push"


def guard(body: bytes) -> str:
    """The body as text, if it is UTF-8 without any declaration; else MalformedPush."""
    # WeChat sends UTF-8. In UTF-16/32 a declaration would slip past the byte patterns below and
    # expat would still read it, so any other encoding is refused first.
    if b"\x00" in body:
        raise MalformedPush("the body is not UTF-8")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedPush("the body is not UTF-8") from None
    if _DECLARATION.search(body) or _PROCESSING.search(body):
        raise MalformedPush("XML declarations (DOCTYPE, ENTITY, ...) are not accepted")
    return text


def parse_body(body: bytes | str, *, flat: bool = True) -> dict[str, Any]:
    """The fields of a push: XML (`<xml>...</xml>`) or, for JSON-configured OA pushes, JSON.
    `flat=False` skips the fast reading (see flat_fields) and goes to the XML parser."""
    raw = body.encode() if isinstance(body, str) else body
    text = guard(raw).strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except Exception:  # bad JSON, or nesting deep enough to exhaust the recursion limit
            raise MalformedPush("the body is neither well-formed XML nor JSON") from None
        if not isinstance(data, dict):
            raise MalformedPush("a JSON push must be an object")
        return {k: v if isinstance(v, str | dict | list) or v is None else str(v)
                for k, v in data.items()}
    fields = flat_fields(text) if flat else None
    if fields is not None:
        return fields
    try:
        root = ElementTree.fromstring(raw.strip())
        fields = element_fields(root) if root.tag == "xml" else None
    except Exception:  # expat's errors, or nesting deep enough to exhaust the recursion limit
        raise MalformedPush("the body is neither well-formed XML nor JSON") from None
    if not isinstance(fields, dict):
        raise MalformedPush("the body has no <xml> root element")
    return fields


# What WeChat nearly always sends: <xml> holding only leaves, each a CDATA section or plain text
# with nothing XML would transform (no entity, no \r to normalise, no character XML forbids).
# One regular-expression split reads such a document several times faster than an XML parser is
# built for it, and gives exactly what element_fields gives (tests compare the two on generated
# documents). Anything else goes to the XML parser.
_CHAR = "\x00-\x08\x0b\x0c\x0e-\x1f\r\ufffe\uffff"
# A CDATA section's text stops at "]]>" and, here, at another "<![CDATA[": without that stop,
# every unclosed section would be scanned to the end of the body from each of its starts —
# quadratic in the body's size. A push with a CDATA opening inside a CDATA section is read by
# the XML parser instead.
_FLAT_LEAF = re.compile(
    f"<([A-Za-z_][A-Za-z0-9_]*)>(?:<!\\[CDATA\\[([^\\]<{_CHAR}]*"
    f"(?:(?:\\](?!\\]>)|<(?!!\\[CDATA\\[))[^\\]<{_CHAR}]*)*)"
    f"\\]\\]>|([^<&\\]{_CHAR}]*))</\\1>")
_SPACE = " \t\r\n"


def flat_fields(text: str) -> dict[str, Any] | None:
    """The fields of a flat push (see above), or None when it is not one."""
    parts = _FLAT_LEAF.split(text)  # [gap, name, cdata, plain, gap, name, ..., gap]
    if (len(parts) < 5 or parts[0].rstrip(_SPACE) != "<xml>"
            or parts[-1].lstrip(_SPACE) != "</xml>" or "".join(parts[4:-1:4]).strip(_SPACE)):
        return None
    fields: dict[str, Any] = {}
    for name, cdata, plain in zip(parts[1::4], parts[2::4], parts[3::4], strict=True):
        _add(fields, name, (cdata or plain or "").strip() or None)
    return fields


def _add(fields: dict[str, Any], name: str, value: Any) -> None:
    """A child's value, as xmltodict keeps it: a repeated name becomes a list."""
    if name in fields:
        known = fields[name]
        fields[name] = [*known, value] if isinstance(known, list) else [known, value]
    else:
        fields[name] = value


def element_fields(node: ElementTree.Element) -> Any:
    """An element as xmltodict (which wechatpy parses with) would give it: stripped text for a
    leaf, a dict of children otherwise, a list for a repeated child. The C parser is several
    times faster; `guard` has already refused anything with a DTD, so no entity is expanded."""
    if len(node) == 0:
        return (node.text.strip() or None) if node.text is not None else None
    fields: dict[str, Any] = {}
    for child in node:
        _add(fields, child.tag, element_fields(child))
    return fields


def _text(fields: dict[str, Any], name: str) -> str:
    """A header field WeChat sends once, as text ("" when absent): a repeated or nested one is
    no push of WeChat's."""
    value = fields.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise MalformedPush(f"`{name}` must appear once, as text")
    return value


def classify(source: str, fields: dict[str, Any]) -> Signal:
    """The signal of a WeChat push from its fields."""
    msg_type = _text(fields, "MsgType").lower()
    if not msg_type:
        raise MalformedPush("the push has no MsgType")
    scene: str | None = None
    if msg_type == "event":
        event = _text(fields, "Event").lower()
        kind = f"event.{event}"
        key = _text(fields, "EventKey")
        if event == "subscribe" and key.startswith(QRSCENE):
            scene = key[len(QRSCENE):]
        elif event == "scan" and key:
            scene = key
        elif event == "change_external_contact":
            kind += "." + _text(fields, "ChangeType").lower()
            scene = _text(fields, "State") or None
    else:
        kind = f"message.{msg_type}"
    actor = (source == "wecom" and _text(fields, "ExternalUserID")) or _text(
        fields, "FromUserName")
    return Signal(source=source, kind=kind, dedup_key=dedup_key(fields), actor=actor or None,
                  scene=scene, fields=fields)


def dedup_key(fields: dict[str, Any]) -> str:
    """WeChat retries a push with the same MsgId, or for events the same FromUserName +
    CreateTime (docs/wechat.md §2.1); Event and its details are added so that two events of one
    person in one second are not taken for one."""
    if msg_id := _text(fields, "MsgId"):
        return f"msg:{msg_id}"
    parts = [str(fields.get(name) or "") for name in (
        "FromUserName", "CreateTime", "Event", "EventKey", "ChangeType", "UserID",
        "ExternalUserID", "MsgID", "AgentID")]
    return "evt:" + hashlib.sha1("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()
