"""The outbox (domain/outbox.py) against the sandbox: a message is sent once, retried with
backoff on what may pass, never retried on what will not (falling back to WeCom when it can),
sent once even when a sender dies after WeChat accepted, and delivery reports arrive through
the real OA callback. Time is moved with the sender's clock (or an UPDATE), never waited for."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tortoise.transactions import in_transaction

from bot import keys
from bot.sandbox import Sandbox, events
from bot.sandbox.records import new_openid
from bot.wechat import WeChat, WeChatTransportError
from bot.worker import Worker
from domain import outbox
from domain.opportunities import push_payload
from domain.outbox import (
    BACKOFF,
    BACKOFF_CAP,
    DUPLICATE_WINDOW,
    LEASE,
    MAX_ATTEMPTS,
    OA_TEMPLATE,
    WECOM_APP,
    Sender,
    backoff,
)
from handlers.oa import REPORT_PATIENCE
from models import (
    Interaction,
    Opportunity,
    OutboundMessage,
    OutboundStatus,
    Prospect,
    Salesperson,
)
from tests.bot.kit import eventually

TEMPLATE_SEND = "/cgi-bin/message/template/send"
APP_SEND = "/cgi-bin/message/send"
TEMPLATE_ID = "tpl-opportunity-0001"  # tests/conftest.py base_settings
LINK = "http://scrm.test/o/opaque-token"
PAYLOAD = push_payload(title="新商机：张伟（上海某某科技）", person="张伟（上海某某科技）",
                       matter="新商机 评分88", note="读完白皮书 · 总监级职位",
                       at=datetime(2026, 12, 2, 1, 30, tzinfo=UTC), url=LINK,
                       detail="CTO · 500-999人 · 制造业")
SENT_DATA = {key: {"value": value} for key, value in PAYLOAD["template"]["data"].items()}


def zero() -> float:
    return 0.0


class Clock:
    """The sender's time, moved by hand."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def sender_for(client: Any, wechat_client: WeChat | None = None, **options: Any) -> Sender:
    """A sender like the service's (its settings, its WeChat client unless another is given)."""
    settings = client.app[keys.SETTINGS]
    return Sender(wechat_client or client.app[keys.WECHAT],
                  template_id=settings.oa_opportunity_template_id,
                  wecom_agent=settings.wecom_agent_id is not None, **options)


def impatient(client: Any, timeout: float = 0.3) -> WeChat:
    """The service's WeChat client, giving up after `timeout` seconds."""
    app = client.app
    return WeChat(app[keys.SETTINGS], app[keys.STORE], app[keys.HTTP], timeout=timeout)


async def salesperson(wechat: Sandbox | None, *, name: str = "王芳", openid: str | None = "new",
                      follows: bool = True, wecom: str | None = None) -> Salesperson:
    """A salesperson with a new OA openid (a follower unless `follows` is False) or `openid`,
    and WeCom userid `wecom`."""
    if openid == "new":
        openid = new_openid()
    if openid and follows and wechat is not None:
        wechat.add_follower(openid)
    return await Salesperson.create(name=name, oa_openid=openid, wecom_userid=wecom)


async def opportunity_for(person: Salesperson) -> Opportunity:
    prospect = await Prospect.create(name="张伟", company="上海某某科技")
    return await Opportunity.create(prospect=prospect, salesperson=person, score=88)


async def pushed(person: Salesperson) -> tuple[Opportunity, OutboundMessage]:
    """An opportunity for `person`, and its push."""
    opportunity = await opportunity_for(person)
    return opportunity, await enqueue(person, f"opportunity:{opportunity.id}",
                                      opportunity_id=opportunity.id)


async def enqueue(person: Salesperson, purpose: str = "opportunity:1",
                  payload: dict[str, Any] | None = None, *, template_id: str | None = TEMPLATE_ID,
                  wecom_agent: bool = True,
                  opportunity_id: int | None = None) -> OutboundMessage:
    message = await outbox.enqueue(purpose, person, PAYLOAD if payload is None else payload,
                                   template_id=template_id, wecom_agent=wecom_agent,
                                   opportunity_id=opportunity_id)
    assert message is not None
    return message


async def row(message: OutboundMessage) -> OutboundMessage:
    return await OutboundMessage.get(id=message.id)


def results(message: OutboundMessage) -> list[tuple[str, str, int | None]]:
    """(channel, result, errcode) of each attempt in the history."""
    return [(e["channel"], e["result"], e.get("errcode")) for e in message.history]


def at(entry: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(entry["at"])


async def make_due(message: OutboundMessage) -> None:
    """Time passes (for a sender on the real clock): the retry is due now."""
    await OutboundMessage.filter(id=message.id).update(
        next_attempt_at=datetime.now(UTC) - timedelta(seconds=1))


# --- 1. sent once ---------------------------------------------------------------------------------

async def test_a_template_message_is_sent_once_and_reaches_the_opportunity(client, wechat):
    sender = client.app[keys.SENDER]
    person = await salesperson(wechat, wecom="wangfang")
    opportunity, message = await pushed(person)
    assert (message.status, message.channel, message.recipient, message.attempts) == (
        OutboundStatus.PENDING, OA_TEMPLATE, person.oa_openid, 0)

    assert await sender.send_due() == 1

    [sent] = wechat.template_messages
    assert sent["touser"] == person.oa_openid and sent["template_id"] == TEMPLATE_ID
    assert sent["data"] == SENT_DATA and sent["url"] == LINK
    assert sent["client_msg_id"] == f"scrm-{message.id}"
    stored = await row(message)
    assert stored.status == OutboundStatus.SENT and stored.wechat_msgid == str(sent["msgid"])
    assert (stored.attempts, stored.last_error, stored.claimed_until) == (1, None, None)
    assert stored.sent_at is not None
    assert results(stored) == [(OA_TEMPLATE, "sent", None)]
    assert stored.history[0]["msgid"] == str(sent["msgid"])
    reached = await Opportunity.get(id=opportunity.id)
    assert reached.reached_at == stored.sent_at

    assert await sender.send_due() == 0  # nothing is sent twice
    assert wechat.count(TEMPLATE_SEND) == 1 and len(wechat.template_messages) == 1
    assert wechat.count(APP_SEND) == 0 and wechat.app_messages == []
    assert await OutboundMessage.all().count() == 1


async def test_a_wecom_only_salesperson_gets_one_textcard_with_the_duplicate_check(client,
                                                                                   wechat):
    sender = client.app[keys.SENDER]
    person = await salesperson(wechat, openid=None, wecom="lisi")
    message = await enqueue(person)
    assert (message.channel, message.recipient) == (WECOM_APP, "lisi")

    assert await sender.send_due() == 1
    assert await sender.send_due() == 0

    [sent] = wechat.app_messages
    assert sent["touser"] == ["lisi"] and sent["msgtype"] == "textcard"
    assert sent["content"] == PAYLOAD["textcard"]
    assert sent["body"]["enable_duplicate_check"] == 1
    assert sent["body"]["duplicate_check_interval"] == DUPLICATE_WINDOW
    assert sent["body"]["agentid"] == 1000002
    stored = await row(message)
    assert (stored.status, stored.wechat_msgid, stored.attempts) == (
        OutboundStatus.SENT, sent["msgid"], 1)
    assert results(stored) == [(WECOM_APP, "sent", None)]
    assert wechat.count(APP_SEND) == 1 and wechat.count(TEMPLATE_SEND) == 0


async def test_a_text_payload_goes_as_a_text_app_message(client, wechat):
    person = await salesperson(wechat, openid=None, wecom="zhaoliu")
    radar = {"template": {"data": {"thing1": "张伟"}, "url": None}, "text": "张伟阅读了《白皮书》"}
    message = await enqueue(person, "radar:p1:m1:1", radar)
    assert await client.app[keys.SENDER].send_due() == 1
    [sent] = wechat.app_messages
    assert (sent["msgtype"], sent["content"]) == ("text", {"content": "张伟阅读了《白皮书》"})
    assert (await row(message)).status == OutboundStatus.SENT


# --- 2. retries -----------------------------------------------------------------------------------

@pytest.mark.parametrize("errcode", [-1, 45011])
async def test_busy_or_out_of_quota_is_retried_once_after_the_backoff(client, wechat, errcode,
                                                                      monkeypatch):
    # A long first backoff, so that "not due yet" cannot depend on how fast the test runs.
    monkeypatch.setattr(outbox, "BACKOFF", 300.0)
    clock = Clock()
    sender = sender_for(client, clock=clock, rng=zero)
    person = await salesperson(wechat)
    message = await enqueue(person)
    wechat.fail(TEMPLATE_SEND, errcode)

    assert await sender.send_due() == 1
    stored = await row(message)
    assert (stored.status, stored.attempts, stored.claimed_until) == (
        OutboundStatus.PENDING, 1, None)
    assert stored.last_error is not None and stored.last_error.startswith(f"errcode {errcode}: ")
    assert results(stored) == [(OA_TEMPLATE, "retry", errcode)]
    assert stored.history[0]["error"] == stored.last_error
    assert stored.next_attempt_at == at(stored.history[0]) + timedelta(
        seconds=backoff(1, zero))

    assert await sender.send_due() == 0  # not before its time
    assert wechat.count(TEMPLATE_SEND) == 1 and wechat.template_messages == []

    clock.advance(backoff(1, zero))
    assert await sender.send_due() == 1
    stored = await row(message)
    [sent] = wechat.template_messages
    assert (stored.status, stored.attempts, stored.last_error) == (OutboundStatus.SENT, 2, None)
    assert stored.wechat_msgid == str(sent["msgid"])
    assert results(stored) == [(OA_TEMPLATE, "retry", errcode), (OA_TEMPLATE, "sent", None)]
    assert wechat.count(TEMPLATE_SEND) == 2
    assert await sender.send_due() == 0


async def test_out_of_the_days_template_quota_it_goes_by_wecom_at_once(client, wechat):
    sender = client.app[keys.SENDER]
    person = await salesperson(wechat, wecom="hanmeimei")
    opportunity, message = await pushed(person)
    wechat.fail(TEMPLATE_SEND, 45009)

    assert await sender.send_due() == 1
    stored = await row(message)
    assert (stored.status, stored.next_attempt_at) == (OutboundStatus.FAILED, None)
    assert results(stored) == [(OA_TEMPLATE, "failed", 45009)]
    assert await sender.send_due() == 1  # the fallback, due at once
    fallback = await OutboundMessage.get(channel=WECOM_APP)
    [sent] = wechat.app_messages
    assert sent["touser"] == ["hanmeimei"] and sent["content"] == PAYLOAD["textcard"]
    assert (fallback.status, fallback.wechat_msgid) == (OutboundStatus.SENT, sent["msgid"])
    assert (await Opportunity.get(id=opportunity.id)).reached_at == fallback.sent_at
    assert wechat.count(TEMPLATE_SEND) == 1 and wechat.template_messages == []


@pytest.mark.parametrize("channel", [OA_TEMPLATE, WECOM_APP])
async def test_out_of_the_days_quota_with_no_other_way_it_waits_for_tomorrow(client, wechat,
                                                                            channel):
    clock = Clock()
    clock.now = datetime(2026, 12, 7, 15, 30, tzinfo=UTC)  # 23:30 in China
    sender = sender_for(client, clock=clock, rng=zero)
    if channel == OA_TEMPLATE:
        message = await enqueue(await salesperson(wechat))
    else:
        message = await enqueue(await salesperson(wechat, openid=None, wecom="hanmeimei"))
    path = TEMPLATE_SEND if channel == OA_TEMPLATE else APP_SEND
    wechat.fail(path, 45009)

    assert await sender.send_due() == 1
    stored = await row(message)
    assert (stored.status, stored.attempts) == (OutboundStatus.PENDING, 1)
    assert results(stored) == [(channel, "retry", 45009)]
    assert stored.next_attempt_at == datetime(2026, 12, 7, 16, 0, tzinfo=UTC)  # midnight
    clock.advance(29 * 60)
    assert await sender.send_due() == 0  # not before the day is over
    assert wechat.count(path) == 1

    clock.advance(60)
    assert await sender.send_due() == 1
    stored = await row(message)
    assert (stored.status, stored.attempts) == (OutboundStatus.SENT, 2)
    assert results(stored) == [(channel, "retry", 45009), (channel, "sent", None)]
    assert await OutboundMessage.all().count() == 1


def test_tomorrow_is_the_next_midnight_in_china_spread_over_ten_minutes():
    late = datetime(2026, 12, 7, 15, 59, tzinfo=UTC)  # 23:59 in China
    assert outbox.until_tomorrow(late, zero) == 60
    assert outbox.until_tomorrow(late, lambda: 1.0) == 60 + outbox.AFTER_MIDNIGHT
    early = datetime(2026, 12, 7, 16, 0, 1, tzinfo=UTC)  # 00:00:01 in China: a whole day
    assert outbox.until_tomorrow(early, zero) == 24 * 3600 - 1
    morning = datetime(2026, 12, 7, 23, 0, tzinfo=UTC)  # 07:00 on the 8th in China
    assert outbox.until_tomorrow(morning, zero) == 17 * 3600


async def test_a_retry_on_the_real_clock_once_time_has_passed(client, wechat):
    """The service's own sender, time moved with an UPDATE."""
    sender = client.app[keys.SENDER]
    message = await enqueue(await salesperson(wechat))
    wechat.fail(TEMPLATE_SEND, -1)
    assert await sender.send_due() == 1
    assert (await row(message)).status == OutboundStatus.PENDING
    await make_due(message)
    assert await sender.send_due() == 1
    stored = await row(message)
    assert stored.status == OutboundStatus.SENT and stored.attempts == 2
    assert len(wechat.template_messages) == 1 and wechat.count(TEMPLATE_SEND) == 2


async def test_no_answer_at_all_is_retried(client, wechat):
    """A transport error (nothing listening: the token fetch fails to connect) is errcode -1."""
    app = client.app
    nowhere = replace(app[keys.SETTINGS], wechat_api_base="http://127.0.0.1:9",
                      wecom_api_base="http://127.0.0.1:9")
    unreachable = WeChat(nowhere, app[keys.STORE], app[keys.HTTP])
    clock = Clock()
    message = await enqueue(await salesperson(wechat))

    assert await sender_for(client, unreachable, clock=clock, rng=zero).send_due() == 1
    stored = await row(message)
    assert stored.status == OutboundStatus.PENDING and results(stored) == [
        (OA_TEMPLATE, "retry", -1)]
    assert stored.last_error is not None and "ClientConnector" in stored.last_error
    assert wechat.calls == []

    clock.advance(backoff(1, zero))
    assert await sender_for(client, clock=clock).send_due() == 1
    stored = await row(message)
    assert stored.status == OutboundStatus.SENT and stored.attempts == 2
    assert len(wechat.template_messages) == 1


async def test_after_max_attempts_the_message_fails_with_the_reason(client, wechat):
    clock = Clock()
    sender = sender_for(client, clock=clock, rng=zero)
    message = await enqueue(await salesperson(wechat))
    wechat.fail(TEMPLATE_SEND, -1, times=MAX_ATTEMPTS + 5)

    for attempt in range(1, MAX_ATTEMPTS + 1):
        assert await sender.send_due() == 1
        stored = await row(message)
        assert stored.attempts == attempt
        if attempt < MAX_ATTEMPTS:
            assert stored.status == OutboundStatus.PENDING
            assert stored.next_attempt_at == at(stored.history[-1]) + timedelta(
                seconds=backoff(attempt, zero))
        clock.advance(BACKOFF_CAP)

    stored = await row(message)
    assert stored.status == OutboundStatus.FAILED and stored.attempts == MAX_ATTEMPTS
    assert stored.last_error is not None and stored.last_error.startswith("errcode -1: ")
    assert results(stored) == [(OA_TEMPLATE, "retry", -1)] * (MAX_ATTEMPTS - 1) + [
        (OA_TEMPLATE, "failed", -1)]
    assert stored.claimed_until is None
    for _ in range(3):  # no loop
        clock.advance(BACKOFF_CAP)
        assert await sender.send_due() == 0
    assert wechat.count(TEMPLATE_SEND) == MAX_ATTEMPTS and wechat.template_messages == []
    assert len(wechat.failures[TEMPLATE_SEND]) == 5
    assert await OutboundMessage.all().count() == 1  # busy is not a reason to fall back


def test_backoff_doubles_is_capped_and_jittered_within_half_to_whole():
    for attempts in range(1, 40):
        exponential = BACKOFF * 2 ** (attempts - 1)
        full = min(BACKOFF_CAP, exponential)
        assert backoff(attempts, zero) == full / 2
        assert backoff(attempts, lambda: 0.5) == full * 0.75
        jitter = random.Random(attempts)
        for _ in range(200):
            assert full / 2 <= backoff(attempts, jitter.random) < full
        assert backoff(attempts) <= BACKOFF_CAP
    assert [backoff(n, zero) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert backoff(9, zero) == 256.0  # 512 s under the cap
    assert backoff(10, zero) == BACKOFF_CAP / 2  # 1024 s would be the exponential value
    assert backoff(5000, zero) == BACKOFF_CAP / 2  # however large, no float overflow


async def test_a_retry_is_not_taken_early_by_a_sender_that_listed_it_before(client, wechat):
    """Another sender listed the message before this one tried it and put it off: the claim
    itself honours the backoff."""
    clock = Clock()
    first, other = sender_for(client, clock=clock, rng=zero), sender_for(client, clock=clock)
    message = await enqueue(await salesperson(wechat))
    wechat.fail(TEMPLATE_SEND, 45011)
    assert await first.send_due() == 1
    assert not await other.claim(message.id)
    stored = await row(message)
    assert stored.attempts == 1 and stored.claimed_until is None
    clock.advance(backoff(1, zero))
    assert await other.claim(message.id)
    assert (await row(message)).attempts == 2


async def test_an_exception_while_sending_is_retried_and_spares_the_rest_of_the_batch(client,
                                                                                     wechat):
    clock = Clock()
    sender = sender_for(client, clock=clock, rng=zero)
    broken = await enqueue(await salesperson(wechat, openid=None, wecom="broken"),
                           "radar:broken", {"template": {"data": {}}})  # neither text nor card
    fine = await enqueue(await salesperson(wechat, name="李雷"), "opportunity:2")

    assert await sender.send_due() == 2
    stored = await row(broken)
    assert stored.status == OutboundStatus.PENDING and stored.claimed_until is None
    assert stored.last_error == "KeyError: 'text'"
    assert results(stored) == [(WECOM_APP, "retry", None)]
    assert (await row(fine)).status == OutboundStatus.SENT

    for _ in range(MAX_ATTEMPTS - 1):
        clock.advance(BACKOFF_CAP)
        assert await sender.send_due() == 1
    stored = await row(broken)
    assert stored.status == OutboundStatus.FAILED and stored.attempts == MAX_ATTEMPTS
    assert stored.last_error == "KeyError: 'text'"
    clock.advance(BACKOFF_CAP)
    assert await sender.send_due() == 0
    assert wechat.count(APP_SEND) == 0 and len(wechat.template_messages) == 1


# --- 3. never retried: fall back to WeCom, or fail ------------------------------------------------

CANNOT_RECEIVE = {
    40003: {"openid": "not-an-openid"},  # not an OA openid at all
    43004: {"follows": False},  # unfollowed the OA
    40037: {"template_gone": True},  # the template was deleted from the OA
}


@pytest.mark.parametrize("with_wecom", [True, False], ids=["wecom", "no-wecom"])
@pytest.mark.parametrize("errcode", sorted(CANNOT_RECEIVE))
async def test_a_template_the_salesperson_cannot_receive_is_never_retried(client, wechat,
                                                                          errcode, with_wecom):
    case = CANNOT_RECEIVE[errcode]
    sender = client.app[keys.SENDER]
    person = await salesperson(wechat, openid=case.get("openid", "new"),
                               follows=case.get("follows", True),
                               wecom="hanmeimei" if with_wecom else None)
    if case.get("template_gone"):
        wechat.template_ids.clear()
    opportunity, message = await pushed(person)
    assert message.channel == OA_TEMPLATE

    assert await sender.send_due() == 1
    stored = await row(message)
    assert (stored.status, stored.attempts, stored.next_attempt_at) == (
        OutboundStatus.FAILED, 1, None)
    assert stored.last_error is not None and stored.last_error.startswith(f"errcode {errcode}: ")
    assert results(stored) == [(OA_TEMPLATE, "failed", errcode)]
    assert [c.errcode for c in wechat.calls_to(TEMPLATE_SEND)] == [errcode]

    if not with_wecom:
        assert await sender.send_due() == 0
        assert await OutboundMessage.all().count() == 1
        assert wechat.count(APP_SEND) == 0 and wechat.template_messages == []
        assert (await Opportunity.get(id=opportunity.id)).reached_at is None
        return

    fallback = await OutboundMessage.get(channel=WECOM_APP)
    assert (fallback.purpose, fallback.recipient, fallback.status, fallback.payload) == (
        message.purpose, "hanmeimei", OutboundStatus.PENDING, PAYLOAD)
    assert fallback.opportunity_id == opportunity.id  # type: ignore[attr-defined]
    assert fallback.salesperson_id == person.id  # type: ignore[attr-defined]
    assert await sender.send_due() == 1
    assert await sender.send_due() == 0
    [sent] = wechat.app_messages
    assert sent["touser"] == ["hanmeimei"] and sent["msgtype"] == "textcard"
    assert sent["content"] == PAYLOAD["textcard"] and sent["body"]["enable_duplicate_check"] == 1
    fallback = await row(fallback)
    assert (fallback.status, fallback.wechat_msgid, fallback.attempts) == (
        OutboundStatus.SENT, sent["msgid"], 1)
    assert (await row(message)).status == OutboundStatus.FAILED
    assert (await Opportunity.get(id=opportunity.id)).reached_at == fallback.sent_at
    assert wechat.count(TEMPLATE_SEND) == 1 and wechat.count(APP_SEND) == 1
    assert await OutboundMessage.all().count() == 2


async def test_a_wecom_user_outside_the_corp_fails_without_retry(client, wechat):
    wechat.members = {"someone-else"}
    message = await enqueue(await salesperson(wechat, openid=None, wecom="left-the-company"))
    assert await client.app[keys.SENDER].send_due() == 1
    stored = await row(message)
    assert stored.status == OutboundStatus.FAILED and stored.attempts == 1
    assert stored.last_error is not None and stored.last_error.startswith("errcode 81013: ")
    assert results(stored) == [(WECOM_APP, "failed", 81013)]
    assert await client.app[keys.SENDER].send_due() == 0
    assert wechat.count(APP_SEND) == 1 and wechat.app_messages == []


# --- 4. exactly once when a sender dies -----------------------------------------------------------

class Died(BaseException):
    """The process was killed: nothing after it runs, no handler sees it."""


class DiesOnceWeChatAccepted(Sender):
    async def send(self, message: OutboundMessage) -> None:
        await self._call(message)
        raise Died


def delivered_to(wechat: Sandbox, channel: str) -> list[dict[str, Any]]:
    return wechat.template_messages if channel == OA_TEMPLATE else wechat.app_messages


async def receiver(wechat: Sandbox, channel: str) -> Salesperson:
    if channel == OA_TEMPLATE:
        return await salesperson(wechat)
    return await salesperson(wechat, openid=None, wecom="wangfang")


@pytest.mark.parametrize("channel", [OA_TEMPLATE, WECOM_APP])
async def test_a_sender_that_dies_after_wechat_accepted_still_sends_once(client, wechat,
                                                                         channel):
    clock = Clock()
    message = await enqueue(await receiver(wechat, channel))
    assert message.channel == channel
    path = TEMPLATE_SEND if channel == OA_TEMPLATE else APP_SEND

    dying = DiesOnceWeChatAccepted(client.app[keys.WECHAT], template_id=TEMPLATE_ID,
                                   wecom_agent=True, clock=clock)
    with pytest.raises(Died):
        await dying.send_due()
    [accepted] = delivered_to(wechat, channel)
    held = await row(message)
    assert (held.status, held.attempts, held.history) == (OutboundStatus.PENDING, 1, [])
    assert held.claimed_until == clock.now + timedelta(seconds=LEASE)

    successor = sender_for(client, clock=clock)
    assert await successor.send_due() == 0  # the lease is held
    clock.advance(LEASE + 1)
    assert await successor.send_due() == 1

    stored = await row(message)
    assert (stored.status, stored.attempts) == (OutboundStatus.SENT, 2)
    assert stored.wechat_msgid == str(accepted["msgid"])  # WeChat's answer: the first message
    assert results(stored) == [(channel, "sent", None)]
    assert delivered_to(wechat, channel) == [accepted]  # one message, though called twice
    assert wechat.count(path) == 2
    assert await successor.send_due() == 0


@pytest.mark.parametrize("channel", [OA_TEMPLATE, WECOM_APP])
async def test_an_answer_too_late_is_retried_and_wechat_keeps_one_message(client, wechat,
                                                                          channel):
    """WeChat accepted, but the answer came after the client's timeout: a transport error
    (-1), retried; WeChat recognises the retry (client_msg_id / duplicate check)."""
    clock = Clock()
    sender = sender_for(client, impatient(client, 0.3), clock=clock, rng=zero)
    message = await enqueue(await receiver(wechat, channel))
    path = TEMPLATE_SEND if channel == OA_TEMPLATE else APP_SEND
    wechat.delay(path, 1.0)

    assert await sender.send_due() == 1
    stored = await row(message)
    assert stored.status == OutboundStatus.PENDING and stored.attempts == 1
    assert results(stored) == [(channel, "retry", -1)]
    assert stored.last_error == "errcode -1: timed out after 0.3s"
    [accepted] = delivered_to(wechat, channel)

    clock.advance(backoff(1, zero))
    assert await sender.send_due() == 1
    stored = await row(message)
    assert (stored.status, stored.attempts) == (OutboundStatus.SENT, 2)
    assert stored.wechat_msgid == str(accepted["msgid"])
    assert results(stored) == [(channel, "retry", -1), (channel, "sent", None)]
    assert delivered_to(wechat, channel) == [accepted] and wechat.count(path) == 2


async def test_a_sender_that_dies_every_time_gives_up_after_max_attempts(client, wechat):
    clock = Clock()
    dying = DiesOnceWeChatAccepted(client.app[keys.WECHAT], template_id=TEMPLATE_ID,
                                   wecom_agent=True, clock=clock)
    message = await enqueue(await salesperson(wechat))
    for _ in range(MAX_ATTEMPTS):
        with pytest.raises(Died):
            await dying.send_due()
        clock.advance(LEASE + 1)
    assert await sender_for(client, clock=clock).send_due() == 1
    stored = await row(message)
    assert stored.status == OutboundStatus.FAILED and stored.attempts == MAX_ATTEMPTS + 1
    assert stored.last_error == (f"given up: {MAX_ATTEMPTS} attempts ended without an outcome "
                                 "(the sender died each time)")
    assert results(stored) == [(OA_TEMPLATE, "failed", None)]
    assert wechat.count(TEMPLATE_SEND) == MAX_ATTEMPTS and len(wechat.template_messages) == 1
    clock.advance(LEASE + 1)
    assert await sender_for(client, clock=clock).send_due() == 0


async def test_two_senders_at_once_send_each_message_once(client, wechat):
    messages = []
    for n in range(4):
        messages.append(await enqueue(await salesperson(wechat, name=f"甲{n}"),
                                      f"opportunity:{n}"))
        messages.append(await enqueue(await salesperson(wechat, name=f"乙{n}", openid=None,
                                                        wecom=f"user{n}"), f"radar:{n}"))
    senders = [client.app[keys.SENDER], sender_for(client), sender_for(client)]

    claimed = await asyncio.gather(*(s.send_due() for s in senders))

    assert sum(claimed) == len(messages)
    for message in messages:
        stored = await row(message)
        assert (stored.status, stored.attempts, len(stored.history)) == (
            OutboundStatus.SENT, 1, 1)
    assert wechat.count(TEMPLATE_SEND) == 4 and len(wechat.template_messages) == 4
    assert wechat.count(APP_SEND) == 4 and len(wechat.app_messages) == 4
    assert sorted(m["client_msg_id"] for m in wechat.template_messages) == sorted(
        f"scrm-{m.id}" for m in messages if m.channel == OA_TEMPLATE)
    assert await asyncio.gather(*(s.send_due() for s in senders)) == [0, 0, 0]


async def test_the_lease_runs_from_each_claim_not_from_the_start_of_the_batch(client, wechat):
    """A batch whose earlier sends were slow: each later message is still held for a whole
    lease while its call is in flight, so no other sender can take it meanwhile."""
    clock = Clock()

    held: list[bool] = []

    class SlowAnswers(Sender):
        async def _call(self, message: OutboundMessage) -> str:
            now = await OutboundMessage.get(id=message.id)
            held.append(now.claimed_until is not None and now.claimed_until > clock())
            answer = await super()._call(message)
            clock.advance(2 * LEASE)  # the answer took that long
            return answer

    slow = SlowAnswers(client.app[keys.WECHAT], template_id=TEMPLATE_ID, wecom_agent=True,
                       clock=clock)
    for n in range(3):
        await enqueue(await salesperson(wechat, name=f"丙{n}"), f"opportunity:{n}")
    assert await slow.send_due() == 3
    assert held == [True, True, True]
    assert len(wechat.template_messages) == 3 and wechat.count(TEMPLATE_SEND) == 3


@pytest.mark.parametrize("errcode", [-1, 43004])
@pytest.mark.parametrize("successor_done", [True, False], ids=["sent", "in-flight"])
async def test_an_answer_after_the_lease_does_not_undo_the_sender_that_took_over(
        client, wechat, errcode, successor_done):
    """The first sender's answer (a refusal) arrives after its lease ran out and another
    sender took the message: the message stays the other sender's — sent, or still held by
    it — with no retry scheduled, no failure and no fallback."""
    clock = Clock()
    successor = sender_for(client, clock=clock)

    class Overtaken(Sender):
        async def _call(self, message: OutboundMessage) -> str:
            try:
                return await super()._call(message)
            finally:  # the answer came late; meanwhile:
                clock.advance(LEASE + 1)
                if successor_done:
                    assert await successor.send_due() == 1
                else:
                    assert await successor.claim(message.id)

    message = await enqueue(await salesperson(wechat, wecom="wangfang"))
    wechat.fail(TEMPLATE_SEND, errcode)  # the first call's answer
    assert await Overtaken(client.app[keys.WECHAT], template_id=TEMPLATE_ID, wecom_agent=True,
                           clock=clock, rng=zero).send_due() == 1

    stored = await row(message)
    assert stored.attempts == 2 and stored.next_attempt_at is None
    if successor_done:
        [sent] = wechat.template_messages
        assert (stored.status, stored.wechat_msgid, stored.claimed_until) == (
            OutboundStatus.SENT, str(sent["msgid"]), None)
        assert results(stored) == [(OA_TEMPLATE, "sent", None)]
    else:
        assert (stored.status, stored.history, stored.last_error) == (
            OutboundStatus.PENDING, [], None)
        assert stored.claimed_until == clock.now + timedelta(seconds=LEASE)  # still held
        await successor.send(stored)
        assert (await row(message)).status == OutboundStatus.SENT
    assert await OutboundMessage.all().count() == 1 and wechat.app_messages == []
    assert len(wechat.template_messages) == 1


async def test_the_sandbox_can_answer_late_after_taking_effect(client, wechat):
    openid = new_openid()
    wechat.add_follower(openid)
    late = impatient(client, 0.3)
    wechat.delay(TEMPLATE_SEND, 1.0)
    with pytest.raises(WeChatTransportError) as raised:
        await late.oa.send_template(openid, TEMPLATE_ID, {"thing1": "甲"})
    assert raised.value.errcode == -1
    assert [m["data"] for m in wechat.template_messages] == [{"thing1": {"value": "甲"}}]
    await late.oa.send_template(openid, TEMPLATE_ID, {"thing1": "乙"})  # once only
    assert len(wechat.template_messages) == 2 and wechat.delays[TEMPLATE_SEND] == []
    with pytest.raises(ValueError):
        wechat.delay(TEMPLATE_SEND, -1)


# --- 5. delivery reports through the OA callback --------------------------------------------------

async def reported(client: Any, wechat: Sandbox, openid: str, msgid: int | str, status: str,
                   count: int) -> None:
    """Pushes TEMPLATESENDJOBFINISH to /wechat/oa and waits until `count` reports are done."""
    delivery = await wechat.push_oa(str(client.make_url("/wechat/oa")),
                                    events.template_finished(openid, int(msgid), status))
    assert delivery.ok and delivery.statuses == [200]
    assert delivery.attempts[0].body == "success"

    async def done() -> bool:
        return await Interaction.filter(kind="event.templatesendjobfinish",
                                        processed_at__isnull=False).count() == count

    await eventually(done)


async def sent_template(client: Any, wechat: Sandbox, person: Salesperson,
                        purpose: str = "opportunity:1") -> OutboundMessage:
    message = await enqueue(person, purpose)
    assert await client.app[keys.SENDER].send_due() == 1
    stored = await row(message)
    assert stored.status == OutboundStatus.SENT and stored.wechat_msgid
    return stored


async def test_a_success_report_marks_the_message_delivered(client, wechat):
    person = await salesperson(wechat, wecom="wangfang")
    message = await sent_template(client, wechat, person)

    await reported(client, wechat, str(person.oa_openid), str(message.wechat_msgid), "success",
                   1)

    stored = await row(message)
    assert (stored.status, stored.last_error) == (OutboundStatus.DELIVERED, None)
    assert results(stored) == [(OA_TEMPLATE, "sent", None), (OA_TEMPLATE, "delivered", None)]
    assert stored.history[1]["status"] == "success"
    assert await client.app[keys.SENDER].send_due() == 0
    assert await OutboundMessage.all().count() == 1 and wechat.app_messages == []


@pytest.mark.parametrize("with_wecom", [True, False], ids=["wecom", "no-wecom"])
async def test_a_user_block_report_fails_the_message_and_falls_back_to_wecom(client, wechat,
                                                                             with_wecom):
    sender = client.app[keys.SENDER]
    person = await salesperson(wechat, wecom="wangfang" if with_wecom else None)
    message = await sent_template(client, wechat, person)

    await reported(client, wechat, str(person.oa_openid), str(message.wechat_msgid),
                   "failed:user block", 1)

    stored = await row(message)
    assert (stored.status, stored.last_error) == (OutboundStatus.FAILED, "failed:user block")
    assert results(stored) == [(OA_TEMPLATE, "sent", None), (OA_TEMPLATE, "report", None)]
    assert stored.history[1]["status"] == "failed:user block"
    if not with_wecom:
        assert await sender.send_due() == 0
        assert await OutboundMessage.all().count() == 1 and wechat.count(APP_SEND) == 0
        return
    assert await sender.send_due() == 1
    assert await sender.send_due() == 0
    [sent] = wechat.app_messages
    assert sent["touser"] == ["wangfang"] and sent["content"] == PAYLOAD["textcard"]
    fallback = await OutboundMessage.get(channel=WECOM_APP)
    assert (fallback.purpose, fallback.status, fallback.wechat_msgid) == (
        message.purpose, OutboundStatus.SENT, sent["msgid"])
    assert len(wechat.template_messages) == 1 and wechat.count(APP_SEND) == 1


async def test_a_report_for_an_unknown_msgid_changes_nothing(client, wechat):
    person = await salesperson(wechat, wecom="wangfang")
    await sent_template(client, wechat, person)
    before = await OutboundMessage.all().order_by("id").values()

    await reported(client, wechat, str(person.oa_openid), 999, "failed:user block", 1)

    assert await OutboundMessage.all().order_by("id").values() == before
    assert await client.app[keys.SENDER].send_due() == 0
    assert wechat.count(APP_SEND) == 0 and len(wechat.template_messages) == 1


async def early_report(client: Any, wechat: Sandbox, openid: str, msgid: int,
                       status: str, **fields: Any) -> Interaction:
    """Pushes TEMPLATESENDJOBFINISH to /wechat/oa; the stored report once its handler has run
    and its mark (if any) is written: processed, or left for the worker."""
    delivery = await wechat.push_oa(str(client.make_url("/wechat/oa")),
                                    {**events.template_finished(openid, msgid, status), **fields})
    assert delivery.ok and delivery.statuses == [200]
    await client.app[keys.DISPATCHER].drain(5)
    await client.app[keys.COMPLETIONS].stop()  # its mark written, if it has one
    return await Interaction.get(kind="event.templatesendjobfinish")


async def test_a_report_before_its_send_is_recorded_waits_for_the_worker(client, wechat,
                                                                        caplog):
    """WeChat accepted the template and reported on it before the sender recorded the msgid:
    the report is left unfinished (no error logged), and the worker's next try applies it."""
    sender = client.app[keys.SENDER]
    person = await salesperson(wechat, wecom="wangfang")
    message = await enqueue(person)
    assert await sender.claim(message.id)  # the send is in flight

    report = await early_report(client, wechat, str(person.oa_openid), 4242,
                                "failed:user block")
    assert (report.processed_at, report.attempts) == (None, 0)
    assert not [r for r in caplog.records if r.levelname in ("WARNING", "ERROR")]

    # the send records what WeChat answered; the worker tries the report again
    await OutboundMessage.filter(id=message.id).update(
        status=OutboundStatus.SENT, wechat_msgid="4242", claimed_until=None)
    assert await Worker(client.app[keys.DISPATCHER], recovery_after=0).recover() == 1

    async def done() -> Interaction | None:
        return await Interaction.get_or_none(id=report.id, processed_at__isnull=False)

    assert (await eventually(done)).attempts == 1
    stored = await row(message)
    assert (stored.status, stored.last_error) == (OutboundStatus.FAILED, "failed:user block")
    assert await sender.send_due() == 1  # its fallback
    [sent] = wechat.app_messages
    assert sent["touser"] == ["wangfang"]
    assert not [r for r in caplog.records if r.levelname in ("WARNING", "ERROR")]


@pytest.mark.parametrize("why", ["nothing in flight", "an old report"])
async def test_an_unknown_report_is_done_with_when_no_send_can_explain_it(client, wechat, why):
    """Another tool's template on the same account: nothing of ours is being sent, or the
    report is older than the patience for a send to record itself."""
    person = await salesperson(wechat)
    message = await enqueue(person)
    fields: dict[str, Any] = {}
    if why == "an old report":
        assert await client.app[keys.SENDER].claim(message.id)
        fields["CreateTime"] = int(time.time()) - REPORT_PATIENCE - 1
    report = await early_report(client, wechat, str(person.oa_openid), 4242, "success",
                                **fields)

    async def done() -> Interaction | None:
        return await Interaction.get_or_none(id=report.id, processed_at__isnull=False)

    assert (await eventually(done)).attempts == 0
    assert (await row(message)).status == OutboundStatus.PENDING


# --- 6. enqueue -----------------------------------------------------------------------------------

async def test_a_salesperson_nobody_can_reach_gets_a_failed_row_with_the_reason(db):
    person = await salesperson(None, name="赵六", openid=None)
    message = await enqueue(person, "opportunity:9")
    assert (message.status, message.channel, message.recipient, message.attempts) == (
        OutboundStatus.FAILED, "none", "", 0)
    assert message.last_error == (
        f"salesperson {person.id} (赵六) has no way to be told: no OA openid with a template "
        "configured, no WeCom userid with the WeCom app configured")
    assert message.salesperson_id == person.id  # type: ignore[attr-defined]
    assert message.payload == PAYLOAD

    assert await outbox.enqueue("opportunity:9", person, PAYLOAD, template_id=TEMPLATE_ID,
                                wecom_agent=True) is None
    assert await OutboundMessage.all().count() == 1


async def test_enqueue_takes_the_best_route_configured_and_once_per_purpose(db):
    both = await salesperson(None, wecom="wangfang")
    assert (await enqueue(both, "a")).channel == OA_TEMPLATE
    assert (await enqueue(both, "b", template_id=None)).channel == WECOM_APP
    unreachable = await enqueue(both, "c", template_id=None, wecom_agent=False)
    assert unreachable.status == OutboundStatus.FAILED and unreachable.channel == "none"
    openid_only = await salesperson(None, name="李雷")
    assert (await enqueue(openid_only, "d", wecom_agent=False)).channel == OA_TEMPLATE
    for purpose in "abcd":
        assert await outbox.enqueue(purpose, both, PAYLOAD, template_id=TEMPLATE_ID,
                                    wecom_agent=True) is None
    assert await OutboundMessage.all().count() == 4


async def test_a_lost_enqueue_race_leaves_the_callers_transaction_usable(db, monkeypatch):
    """Two writers both saw no message for the purpose; the second's insert hits the unique key
    inside its caller's transaction, which must go on (PostgreSQL aborts a transaction on an
    error outside a savepoint)."""
    person = await salesperson(None)
    await enqueue(person, "opportunity:5")

    async def nothing_yet(**_: Any) -> bool:
        return False

    monkeypatch.setattr(OutboundMessage, "exists", nothing_yet)
    async with in_transaction():
        assert await outbox.enqueue("opportunity:5", person, PAYLOAD, template_id=TEMPLATE_ID,
                                    wecom_agent=True) is None
        await Salesperson.filter(id=person.id).update(name="写完了")
    assert (await Salesperson.get(id=person.id)).name == "写完了"
    assert await OutboundMessage.all().count() == 1
