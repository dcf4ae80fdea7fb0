"""A signal — a WeChat push, a mini-program call, a read — as the handlers see it, and what a
handler learned from it.

Every signal is stored once as an interaction (source, kind, dedup key, actor, scene, fields)
and dispatched by its kind; the worker dispatches a stored one again from exactly these.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from wechatpy.enterprise.events import EVENT_TYPES as WECOM_EVENTS
from wechatpy.enterprise.messages import MESSAGE_TYPES as WECOM_MESSAGES
from wechatpy.events import EVENT_TYPES as OA_EVENTS
from wechatpy.messages import MESSAGE_TYPES as OA_MESSAGES
from wechatpy.messages import BaseMessage, UnknownMessage


@dataclass(frozen=True)
class Signal:
    """`kind` is `message.<type>` or `event.<event>` for WeChat pushes (WeCom contact changes
    `event.change_external_contact.<ChangeType>`), `mp.<what>` for the mini-program; `scene` is
    the code's scene a scan carried (the `qrscene_` prefix removed)."""

    source: str  # oa | wecom | mp
    kind: str
    dedup_key: str
    actor: str | None
    scene: str | None
    fields: dict[str, Any]
    interaction_id: int | None = None

    def get(self, name: str, default: str | None = None) -> str | None:
        value = self.fields.get(name)
        return default if value is None else str(value)

    @property
    def message(self) -> BaseMessage:
        """The wechatpy message object of a WeChat push, for building replies."""
        fields = dict(self.fields)
        msg_type = str(fields.get("MsgType", "")).lower()
        if msg_type == "event":
            events = OA_EVENTS if self.source == "oa" else WECOM_EVENTS
            event = str(fields.get("Event", "")).lower()
            if self.source == "oa" and event == "subscribe" and self.scene is not None:
                event, fields["EventKey"] = "subscribe_scan", self.scene
            cls = events.get(event, UnknownMessage)
        else:
            messages = OA_MESSAGES if self.source == "oa" else WECOM_MESSAGES
            cls = messages.get(msg_type, UnknownMessage)
        return cls(fields)


class NotYet(Exception):
    """Raised by a handler whose signal depends on something not recorded yet (a delivery
    report that came before its send was recorded): the signal is left unfinished, with a line
    at info level rather than an error, and the worker tries it again later."""


@dataclass(frozen=True)
class CodeRef:
    """The code a signal's scene names: `kind` is the code's kind, "expired" for a code past
    its expiry (recorded, not attributed: `id` None) or "unknown" for a scene no code has."""

    id: int | None
    kind: str


@dataclass
class Outcome:
    """What a handler learned: the prospect behind the signal, the code it is attributed to,
    the reply to send (a passive reply to a WeChat push, an answer to a mini-program call),
    and work that may finish after the reply (`then`, steps run in order): the signal is
    complete only once they all succeed, so the worker retries it otherwise. When a step fails,
    the prospect learned before it is recorded on the interaction (bot.dispatch)."""

    prospect_id: int | None = None
    code_id: int | None = None
    reply: Any = None
    then: tuple[Callable[[], Awaitable[None]], ...] = ()
