"""One way out: every message to a salesperson (a new opportunity, the read radar) is an outbox
row, written in the transaction that decided to send it and sent by the worker.

Sending is at-least-once made exactly-once: a sender claims a row for a lease before calling
WeChat, and the call carries an id WeChat de-duplicates on — `client_msg_id` for a template
message (one message per openid and id within 10 minutes), `enable_duplicate_check` for a WeCom
app message (the same JSON within 30 minutes) — so a sender that dies after WeChat accepted, and
the retry after its lease, still deliver once. WeChat busy (-1), out of the minute's quota
(45011), a 5xx or a timeout: retried with capped exponential backoff and jitter. Out of the
day's quota (45009, which lasts until the next day in China): a template message falls back to
WeCom at once when the salesperson has a WeCom userid, else it is tried again just after
midnight. A template the salesperson cannot receive (40003 not a follower's openid, 43004 not
following, 40037 template gone): never retried; the message falls back to a WeCom app message
when the salesperson has a WeCom userid, else it fails with the reason. Every attempt is kept in
the row's history.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Protocol

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F, Q
from tortoise.transactions import in_transaction

from bot.background import Loop
from bot.errors import WeChatAPIError
from models import Opportunity, OutboundMessage, OutboundStatus, Salesperson

log = logging.getLogger(__name__)

OA_TEMPLATE, WECOM_APP = "oa_template", "wecom_app"
# busy, out of quota; a token refused even after the client's one refresh (another process
# refreshing at the same moment) may pass too
RETRY = frozenset({-1, 45009, 45011, 40001, 40014, 42001})
FALL_BACK = frozenset({40003, 43004, 40037})
DAILY_QUOTA = 45009  # WeChat blocks the API until the next day (docs/wechat.md §6)
CHINA = timezone(timedelta(hours=8))
AFTER_MIDNIGHT = 600.0  # seconds over which tomorrow's first tries are spread
MAX_ATTEMPTS = 8
BACKOFF = 2.0  # seconds before the first retry, doubling
BACKOFF_CAP = 600.0
LEASE = 60.0  # well inside WeChat's 10-minute client_msg_id window
DUPLICATE_WINDOW = 1800  # seconds WeCom drops a repeated app message


class Sends(Protocol):
    """What the sender needs of the WeChat client (bot.wechat.WeChat)."""

    oa: Any
    wecom: Any


@dataclass(frozen=True)
class Route:
    channel: str
    recipient: str


def routes(person: Salesperson, *, template_id: str | None, wecom_agent: bool) -> list[Route]:
    """How a salesperson can be told, best first: a template message to their OA openid, then
    a WeCom app message."""
    found = []
    if person.oa_openid and template_id:
        found.append(Route(OA_TEMPLATE, person.oa_openid))
    if person.wecom_userid and wecom_agent:
        found.append(Route(WECOM_APP, person.wecom_userid))
    return found


async def enqueue(purpose: str, person: Salesperson, payload: dict[str, Any], *,
                  template_id: str | None, wecom_agent: bool,
                  opportunity_id: int | None = None) -> OutboundMessage | None:
    """The message for `purpose` to `person` (inside the caller's transaction), on the best
    route; a message nobody can receive is recorded as failed with the reason, never dropped.
    None when a message for this purpose exists already."""
    found = routes(person, template_id=template_id, wecom_agent=wecom_agent)
    fields: dict[str, Any] = {"purpose": purpose[:64], "payload": payload,
                              "salesperson_id": person.id, "opportunity_id": opportunity_id}
    if found:
        fields.update(channel=found[0].channel, recipient=found[0].recipient,
                      status=OutboundStatus.PENDING)
    else:
        fields.update(channel="none", recipient="", status=OutboundStatus.FAILED,
                      last_error=f"salesperson {person.id} ({person.name}) has no way to be "
                                 "told: no OA openid with a template configured, no WeCom "
                                 "userid with the WeCom app configured")
    if await OutboundMessage.exists(purpose=fields["purpose"]):
        return None
    try:  # in a savepoint: a lost race must not abort the caller's transaction (PostgreSQL)
        async with in_transaction():
            return await OutboundMessage.create(**fields)
    except IntegrityError:
        return None


def backoff(attempts: int, rng: Callable[[], float] = random.random) -> float:
    """Seconds before retry number `attempts` (1-based): doubling, capped, with jitter."""
    doublings = min(max(attempts - 1, 0), 32)  # past the cap long before; no float overflow
    return min(BACKOFF_CAP, BACKOFF * 2 ** doublings) * (0.5 + rng() / 2)


def until_tomorrow(now: datetime, rng: Callable[[], float] = random.random) -> float:
    """Seconds from `now` to a moment within AFTER_MIDNIGHT after the next midnight in China,
    when a day's quota is WeChat's to give again."""
    local = now.astimezone(CHINA)
    midnight = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return (midnight - local).total_seconds() + rng() * AFTER_MIDNIGHT


def utc_now() -> datetime:
    return datetime.now(UTC)


class Sender(Loop):
    """Sends what is due every `poll` seconds, and at once when kicked (a message was just
    committed)."""

    def __init__(self, wechat: Sends, *, template_id: str | None, wecom_agent: bool,
                 lease: float = LEASE, poll: float = 1.0,
                 rng: Callable[[], float] = random.random,
                 clock: Callable[[], datetime] = utc_now) -> None:
        super().__init__("outbox", log, "sending outbound messages", poll)
        self.wechat = wechat
        self.template_id = template_id
        self.wecom_agent = wecom_agent
        self.lease = lease
        self.poll = poll
        self.rng = rng
        self.clock = clock  # tests move time with it

    async def round(self) -> None:
        while await self.send_due():  # until nothing is due
            pass

    async def send_due(self, limit: int = 20) -> int:
        """Sends what is due (claimed one by one, so several senders share the work); how
        many this sender claimed."""
        now = self.clock()
        due = await (OutboundMessage.filter(status=OutboundStatus.PENDING,
                                            channel__in=(OA_TEMPLATE, WECOM_APP))
                     .filter(Q(next_attempt_at=None) | Q(next_attempt_at__lte=now))
                     .filter(Q(claimed_until=None) | Q(claimed_until__lt=now))
                     .order_by("id").limit(limit).values_list("id", flat=True))
        claimed = 0
        for message_id in due:
            if await self.claim(message_id):
                claimed += 1
                await self.send(await OutboundMessage.get(id=message_id))
        return claimed

    async def claim(self, message_id: int) -> bool:
        """Takes a message that is due and that nobody holds, for a lease from now. Checked
        again here, not only when the batch was listed: meanwhile another sender may have
        tried it and put it off (a retry's backoff), and the batch's earlier sends took time
        (a lease counted from the listing could be over before the call starts)."""
        now = self.clock()
        return bool(await (
            OutboundMessage.filter(id=message_id, status=OutboundStatus.PENDING)
            .filter(Q(next_attempt_at=None) | Q(next_attempt_at__lte=now))
            .filter(Q(claimed_until=None) | Q(claimed_until__lt=now))
            .update(claimed_until=now + timedelta(seconds=self.lease),
                    attempts=F("attempts") + 1)))

    async def send(self, message: OutboundMessage) -> None:
        """One attempt at a claimed message, and what it leads to."""
        if message.attempts > MAX_ATTEMPTS:  # claimed again and again, never an outcome
            await self._failed(message, f"given up: {message.attempts - 1} attempts ended "
                                        "without an outcome (the sender died each time)")
            return
        try:
            msgid = await self._call(message)
        except WeChatAPIError as exc:
            await self._failed(message, f"errcode {exc.errcode}: {exc.errmsg}",
                               errcode=exc.errcode)
            return
        except Exception as exc:  # no answer from WeChat (a bad payload, the store down)
            log.exception("outbound message %d: sending raised", message.id)
            await self._failed(message, f"{type(exc).__name__}: {exc}", transient=True)
            return
        now = self.clock()
        message.history = [*message.history, {"at": now.isoformat(), "channel": message.channel,
                                               "result": "sent", "msgid": msgid}]
        # Still pending: a sender that took over after the lease may have recorded it already.
        await OutboundMessage.filter(id=message.id, status=OutboundStatus.PENDING).update(
            status=OutboundStatus.SENT, sent_at=now, wechat_msgid=msgid, claimed_until=None,
            last_error=None, history=message.history)
        if message.opportunity_id is not None:  # type: ignore[attr-defined]
            await Opportunity.filter(id=message.opportunity_id,  # type: ignore[attr-defined]
                                     reached_at=None).update(reached_at=now)
        log.info("outbound message %d (%s) sent by %s", message.id, message.purpose,
                 message.channel)

    async def _call(self, message: OutboundMessage) -> str:
        payload = message.payload
        if message.channel == OA_TEMPLATE:
            template = payload["template"]
            msgid = await self.wechat.oa.send_template(
                message.recipient, template.get("template_id") or self.template_id,
                template["data"], url=template.get("url"),
                client_msg_id=f"scrm-{message.id}")
            return str(msgid)
        if "textcard" in payload:
            answer = await self.wechat.wecom.send_app_message(
                [message.recipient], textcard=payload["textcard"],
                duplicate_check=DUPLICATE_WINDOW)
        else:
            answer = await self.wechat.wecom.send_app_message(
                [message.recipient], text=payload["text"], duplicate_check=DUPLICATE_WINDOW)
        refused = {u for u in str(answer.get("invaliduser") or "").split("|") if u}
        if message.recipient.lower() in refused:  # accepted for others, refused for this one
            raise WeChatAPIError(81013, f"invalid user {message.recipient}",
                                 path="/cgi-bin/message/send")
        return str(answer.get("msgid") or "")

    async def _failed(self, message: OutboundMessage, reason: str, *,
                      errcode: int | None = None, transient: bool = False) -> None:
        """An attempt that did not send: retried later when the cause may pass (WeChat busy or
        out of quota, no answer, an exception) and attempts are left, else failed for good."""
        now = self.clock()
        reason = reason[:500]
        # The day's quota is gone: WeCom now rather than the template tomorrow, when it can.
        over_for_today = errcode == DAILY_QUOTA
        switch = over_for_today and await self._wecom_route(message) is not None
        retry = ((transient or errcode in RETRY) and not switch
                 and message.attempts < MAX_ATTEMPTS)
        entry = {"at": now.isoformat(), "channel": message.channel,
                 "result": "retry" if retry else "failed", "errcode": errcode,
                 "error": reason}
        history = [*message.history, entry]
        # Only while the claim is still this sender's (no claim since: attempts unchanged): an
        # answer that came after the lease must not undo, or release, another sender's attempt.
        mine = OutboundMessage.filter(id=message.id, status=OutboundStatus.PENDING,
                                      attempts=message.attempts)
        if retry:
            delay = (until_tomorrow(now, self.rng) if over_for_today
                     else backoff(message.attempts, self.rng))
            if not await mine.update(claimed_until=None,
                                     next_attempt_at=now + timedelta(seconds=delay),
                                     last_error=reason, history=history):
                log.info("outbound message %d: %s, after another sender took it over",
                         message.id, reason)
                return
            log.info("outbound message %d: %s; retry %d in %.0fs", message.id, reason,
                     message.attempts, delay)
            return
        async with in_transaction():  # failed and its fallback queued, or neither
            if not await mine.update(status=OutboundStatus.FAILED, claimed_until=None,
                                     last_error=reason, history=history):
                log.info("outbound message %d: %s, after another sender took it over",
                         message.id, reason)
                return
            fell_back = (errcode in FALL_BACK or switch) and await self.fall_back(message)
        if fell_back:
            return
        log.warning("outbound message %d (%s) failed for good: %s", message.id,
                    message.purpose, reason)

    async def _wecom_route(self, message: OutboundMessage) -> Salesperson | None:
        """The salesperson, when a template message to them can go as a WeCom app message."""
        if message.channel != OA_TEMPLATE or not self.wecom_agent:
            return None
        person = await Salesperson.get_or_none(id=message.salesperson_id)  # type: ignore[attr-defined]
        return person if person is not None and person.wecom_userid else None

    async def fall_back(self, message: OutboundMessage) -> bool:
        """The same message as a WeCom app message, when the salesperson has a WeCom userid and
        it was not one already; True when a fallback was queued."""
        person = await self._wecom_route(message)
        if person is None:
            return False
        if await OutboundMessage.exists(purpose=message.purpose, channel=WECOM_APP):
            return True  # queued already
        try:  # in a savepoint: a lost race must not abort the caller's transaction
            async with in_transaction():
                await OutboundMessage.create(
                    purpose=message.purpose, channel=WECOM_APP, recipient=person.wecom_userid,
                    payload=message.payload, salesperson_id=person.id,
                    opportunity_id=message.opportunity_id)  # type: ignore[attr-defined]
        except IntegrityError:
            return True  # queued already
        log.info("outbound message %d falls back to a WeCom app message", message.id)
        self.kick()
        return True


async def sending_templates() -> bool:
    """Whether a template message is being sent right now (claimed, not yet recorded): a
    delivery report may come back before its send records the msgid."""
    return await OutboundMessage.exists(status=OutboundStatus.PENDING, channel=OA_TEMPLATE,
                                        claimed_until__gt=utc_now())


async def delivery_report(msgid: str, status: str, sender: Sender | None) -> bool:
    """TEMPLATESENDJOBFINISH: the template message `msgid` reached the salesperson, or not
    (`failed:user block`, `failed: system failed`); a message that did not falls back to WeCom.
    False when no message has that msgid."""
    message = await OutboundMessage.get_or_none(channel=OA_TEMPLATE, wechat_msgid=msgid)
    if message is None:
        return False
    delivered = status == "success"
    entry = {"at": datetime.now(UTC).isoformat(), "channel": OA_TEMPLATE,
             "result": "delivered" if delivered else "report", "status": status[:100]}
    await OutboundMessage.filter(id=message.id).update(
        status=OutboundStatus.DELIVERED if delivered else OutboundStatus.FAILED,
        last_error=None if delivered else status[:500],  # WeChat's words: "failed:user block"
        history=[*message.history, entry])
    if not delivered and sender is not None:
        await sender.fall_back(message)
    return True
