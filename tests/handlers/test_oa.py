"""handlers.oa through /wechat/oa: follows, scans, messages, unfollows, delivery reports."""

from __future__ import annotations

import xmltodict

from bot.sandbox import events
from bot.wxcrypto import CallbackCrypto
from domain.attribution import DEFAULT_WELCOME as WELCOME
from handlers.oa import WELCOME_BACK
from models import (
    Code,
    CodeChannel,
    CodeKind,
    Identity,
    IdentityKind,
    Interaction,
    OutboundMessage,
    OutboundStatus,
)
from tests.bot.kit import OA_APPID, OA_TOKEN, OPENID, eventually, oa_fields, oa_request
from tests.conftest import OA_AES_KEY


async def all_processed(count: int) -> list[Interaction]:
    async def check() -> list[Interaction] | None:
        rows = await Interaction.filter(processed_at__isnull=False).order_by("id")
        return rows if len(rows) == count else None

    return await eventually(check)


async def push(client, fields) -> str:
    query, body = oa_request(oa_fields(**fields))
    response = await client.post("/wechat/oa", params=query, data=body)
    assert response.status == 200
    text = await response.text()
    if "<Encrypt>" not in text:
        return text
    envelope = xmltodict.parse(text)["xml"]
    crypto = CallbackCrypto(OA_TOKEN, OA_AES_KEY, OA_APPID)
    crypto.verify_encrypted(envelope["MsgSignature"], envelope["TimeStamp"], envelope["Nonce"],
                            envelope["Encrypt"])
    return str(xmltodict.parse(crypto.decrypt(envelope["Encrypt"]))["xml"]["Content"])


async def test_a_booth_scan_follow_makes_a_prospect(client, wechat):
    code = await Code.create(kind=CodeKind.BOOTH, channel=CodeChannel.OA, scene="booth1")
    delivery = await wechat.push_oa(str(client.make_url("/wechat/oa")),
                                    events.subscribe(OPENID, scene="booth1", ticket="T1"))
    assert WELCOME in str(delivery.reply)
    [row] = await all_processed(1)
    identity = await Identity.get(kind=IdentityKind.OA_OPENID, value=OPENID)
    assert (row.kind, row.scene, row.actor) == ("event.subscribe", "booth1", OPENID)
    assert row.prospect_id == identity.prospect_id  # type: ignore[attr-defined]
    assert row.code_id == code.id  # type: ignore[attr-defined]


async def test_a_follow_without_a_code(client):
    assert await push(client, {"MsgType": "event", "Event": "subscribe"}) == WELCOME
    [row] = await all_processed(1)
    assert row.scene is None and row.code_id is None  # type: ignore[attr-defined]
    assert row.prospect_id is not None  # type: ignore[attr-defined]


async def test_scan_text_and_unsubscribe_of_one_follower(client):
    assert await push(client, {"MsgType": "event", "Event": "subscribe",
                               "EventKey": "qrscene_unknown", "Ticket": "T"}) == WELCOME
    assert await push(client, {"MsgType": "event", "Event": "SCAN", "EventKey": "booth2",
                               "Ticket": "T2"}) == WELCOME_BACK
    assert await push(client, {"MsgType": "text", "Content": "价格？", "MsgId": 88}) == "success"
    assert await push(client, {"MsgType": "event", "Event": "unsubscribe"}) == "success"
    rows = await all_processed(4)
    assert [r.kind for r in rows] == ["event.subscribe", "event.scan", "message.text",
                                      "event.unsubscribe"]
    assert [r.scene for r in rows] == ["unknown", "booth2", None, None]
    assert len({r.prospect_id for r in rows}) == 1  # type: ignore[attr-defined]
    assert rows[0].prospect_id is not None  # type: ignore[attr-defined]
    assert await Identity.filter(kind=IdentityKind.OA_OPENID).count() == 1


async def test_template_delivery_reports_update_the_message(client, wechat):
    delivered = await OutboundMessage.create(purpose="opportunity:1", channel="oa_template",
                                             recipient=OPENID, payload={}, wechat_msgid="200163836",
                                             status=OutboundStatus.SENT)
    blocked = await OutboundMessage.create(purpose="opportunity:2", channel="oa_template",
                                           recipient=OPENID, payload={}, wechat_msgid="200163840",
                                           status=OutboundStatus.SENT)
    other_channel = await OutboundMessage.create(purpose="opportunity:1", channel="wecom_app",
                                                 recipient="zhangsan", payload={},
                                                 wechat_msgid="200163836",
                                                 status=OutboundStatus.SENT)
    url = str(client.make_url("/wechat/oa"))
    for msgid, status in ((200163836, "success"), (200163840, "failed:user block"),
                          (999, "success")):
        delivery = await wechat.push_oa(url, events.template_finished(OPENID, msgid, status))
        assert delivery.ok and delivery.attempts[0].body == "success"
    await all_processed(3)
    await delivered.refresh_from_db()
    await blocked.refresh_from_db()
    await other_channel.refresh_from_db()
    assert delivered.status == OutboundStatus.DELIVERED and delivered.last_error is None
    assert blocked.status == OutboundStatus.FAILED and blocked.last_error == "failed:user block"
    assert other_channel.status == OutboundStatus.SENT


async def test_a_delivery_report_retry_is_stored_once(client, wechat):
    delivery = await wechat.push_oa(str(client.make_url("/wechat/oa")),
                                    events.template_finished(OPENID, 7, "failed: system failed"),
                                    duplicates=2)
    assert delivery.statuses == [200, 200, 200]
    assert await Interaction.filter(kind="event.templatesendjobfinish").count() == 1
