"""One bad request never fails its neighbours in a shared batch; recovery goes on past any row;
a WeCom code is issued even when WeCom's image host fails."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot import keys
from bot.intake import Batcher
from bot.sandbox.control import CONTACT_WAY_IMAGE
from models import Code, CodeArtwork, Interaction, Salesperson
from tests.bot.kit import OPENID, oa_fields, oa_request

AUTH = {"Authorization": "Bearer test-admin-token"}


def text_push(n: int, **fields: Any) -> tuple[dict[str, str], str]:
    return oa_request(oa_fields(**{"MsgType": "text", "Content": f"你好 {n}", "MsgId": 1000 + n,
                                   "FromUserName": f"o{n:027d}", **fields}))


async def signed_raw(client: Any, xml: str) -> Any:
    """A correctly signed and encrypted push whose plaintext is `xml` as written."""
    query, body = oa_request(xml)
    return await client.post("/wechat/oa", params=query, data=body)


async def test_a_bad_login_never_fails_the_pushes_beside_it(client: Any, wechat: Any) -> None:
    good = [text_push(n) for n in range(20)]
    login = client.post("/mp/login", data=json.dumps(
        {"code": wechat.issue_login_code(), "scene": "\ud800"}, ensure_ascii=True),
        headers={"Content-Type": "application/json"})
    answers = await asyncio.gather(login, *(client.post("/wechat/oa", params=q, data=b)
                                            for q, b in good))
    assert answers[0].status == 400
    assert [a.status for a in answers[1:]] == [200] * 20
    assert await Interaction.filter(source="oa").count() == 20
    assert await Interaction.filter(source="mp").count() == 0


@pytest.mark.parametrize("xml, code", [
    (f"<xml><FromUserName>{OPENID}</FromUserName><FromUserName>other</FromUserName>"
     "<CreateTime>1</CreateTime><MsgType>text</MsgType><Content>x</Content><MsgId>7</MsgId></xml>",
     "malformed_push"),
    ("<xml><FromUserName><a>1</a></FromUserName><CreateTime>1</CreateTime>"
     "<MsgType>text</MsgType><Content>x</Content><MsgId>7</MsgId></xml>", "malformed_push"),
    (f"<xml><FromUserName>{'o' * 5000}</FromUserName><CreateTime>1</CreateTime>"
     "<MsgType>text</MsgType><Content>x</Content><MsgId>7</MsgId></xml>", "unstorable_value"),
    (f"<xml><FromUserName>{OPENID}</FromUserName><CreateTime>1</CreateTime>"
     f"<MsgType>event</MsgType><Event>SCAN</Event><EventKey>{'k' * 5000}</EventKey></xml>",
     "unstorable_value"),
    (f"<xml><FromUserName>{OPENID}</FromUserName><CreateTime>1</CreateTime>"
     f"<MsgType>text</MsgType><Content>x</Content><MsgId>{'9' * 5000}</MsgId></xml>",
     "unstorable_value"),
    (f"<xml><FromUserName>{OPENID}</FromUserName><CreateTime>1</CreateTime>"
     f"<MsgType>{'t' * 200}</MsgType><MsgId>7</MsgId></xml>", "unstorable_value"),
], ids=["repeated-actor", "nested-actor", "long-actor", "long-scene", "long-msgid", "long-kind"])
async def test_a_signed_but_impossible_push_is_refused_alone(client: Any, xml: str,
                                                            code: str) -> None:
    good = [text_push(n) for n in range(10)]
    answers = await asyncio.gather(signed_raw(client, xml),
                                   *(client.post("/wechat/oa", params=q, data=b)
                                     for q, b in good))
    assert answers[0].status == 400
    assert (await answers[0].json())["error"]["code"] == code
    assert [a.status for a in answers[1:]] == [200] * 10
    assert await Interaction.all().count() == 10


async def test_a_long_message_is_stored(client: Any) -> None:
    query, body = text_push(1, Content="长" * 5000)
    assert (await client.post("/wechat/oa", params=query, data=body)).status == 200
    assert await Interaction.all().count() == 1


@pytest.mark.parametrize("value", ["a\u0000b", "\ud800", float("nan")],
                         ids=["nul", "surrogate", "nan"])
async def test_a_json_push_with_unstorable_values_is_a_400(client: Any, value: Any) -> None:
    """JSON pushes can carry what XML cannot: a NUL (PostgreSQL refuses it), a lone surrogate,
    NaN (not JSON to PostgreSQL's jsonb)."""
    from bot.sandbox.pushes import encrypt, sign
    from tests.bot.kit import OA_APPID, OA_TOKEN, PREFIX, now
    from tests.conftest import OA_AES_KEY

    fields = {"ToUserName": "gh_x", "FromUserName": OPENID, "CreateTime": 1,
              "MsgType": "text", "MsgId": 77, "Extra": {"note": value}}
    plain = json.dumps(fields)
    timestamp, nonce = now(), "42"
    cipher = encrypt(OA_AES_KEY, OA_APPID, plain, PREFIX)
    query = {"timestamp": timestamp, "nonce": nonce, "encrypt_type": "aes",
             "signature": sign(OA_TOKEN, timestamp, nonce),
             "msg_signature": sign(OA_TOKEN, timestamp, nonce, cipher)}
    body = json.dumps({"ToUserName": "gh_x", "Encrypt": cipher})
    response = await client.post("/wechat/oa", params=query, data=body)
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "unstorable_value"
    assert await Interaction.all().count() == 0


class Doubler(Batcher):
    """Doubles numbers; a batch holding a negative one fails as a whole, as a database
    statement would."""

    def __init__(self) -> None:
        super().__init__("doubler", max_batch=100)
        self.flushes: list[list[int]] = []

    async def flush(self, items: list[int]) -> list[int]:
        self.flushes.append(items)
        if any(n < 0 for n in items):
            raise ValueError("negative")
        return [2 * n for n in items]


async def test_a_failing_batch_is_retried_item_by_item() -> None:
    doubler = Doubler()
    futures = [doubler.submit(n) for n in (1, 2, -3, 4)]
    results = await asyncio.gather(*futures, return_exceptions=True)
    assert results[:2] == [2, 4] and results[3] == 8
    assert isinstance(results[2], ValueError)
    assert doubler.flushes == [[1, 2, -3, 4], [1], [2], [-3], [4]]


async def test_an_outage_fails_the_batch_without_retrying_each_item() -> None:
    class Down(Doubler):
        async def flush(self, items: list[int]) -> list[int]:
            self.flushes.append(items)
            raise ConnectionRefusedError("database down")

    down = Down()
    results = await asyncio.gather(*(down.submit(n) for n in range(5)), return_exceptions=True)
    assert all(isinstance(r, ConnectionRefusedError) for r in results)
    assert down.flushes == [[0, 1, 2, 3, 4]]


# --- recovery ----------------------------------------------------------------------------------

async def test_recovery_processes_a_stored_login_and_goes_on(client: Any, wechat: Any) -> None:
    """A mini-program row was read as a WeChat push: it stalled every round of recovery."""
    long_ago = datetime.now(UTC) - timedelta(minutes=5)
    openid = "oMPuser0000000000000000000001"
    login = await Interaction.create(
        source="mp", kind="mp.login", dedup_key="login:x1", actor=openid, scene=None,
        payload={"openid": openid, "unionid": None, "scene": None}, received_at=long_ago)
    query, body = text_push(1)
    fields = oa_fields(MsgType="text", Content="hi", MsgId=99)
    after = await Interaction.create(
        source="oa", kind="message.text", dedup_key="msg:99", actor=fields["FromUserName"],
        scene=None, payload={k: str(v) for k, v in fields.items()}, received_at=long_ago)
    worker = client.app[keys.WORKER]
    assert await worker.recover() == 2
    await client.app[keys.COMPLETIONS].stop()
    login = await Interaction.get(id=login.id)
    after = await Interaction.get(id=after.id)
    assert login.processed_at is not None and login.prospect_id is not None  # type: ignore[attr-defined]
    assert after.processed_at is not None and after.prospect_id is not None  # type: ignore[attr-defined]


# --- a WeCom code whose image host fails ----------------------------------------------------------

async def test_a_wecom_code_is_issued_when_its_image_host_fails(client: Any, wechat: Any) -> None:
    await Salesperson.create(name="王芳", wecom_userid="wangfang")
    wechat.fail(CONTACT_WAY_IMAGE, -1, times=1)
    response = await client.post("/admin/codes", headers=AUTH, json={
        "kind": "salesperson", "channel": "wecom", "salesperson_id": 1})
    assert response.status == 201
    issued = await response.json()
    assert issued["config_id"] and issued["qr_code"]
    assert await Code.filter(config_id=issued["config_id"]).count() == 1
    assert await CodeArtwork.filter(code_id=issued["id"], source__not_isnull=True).count() == 0

    # printed later: fetched then, retried past a failure, kept
    wechat.fail(CONTACT_WAY_IMAGE, -1, times=1)
    image = await client.get(f"/admin/codes/{issued['id']}/image.png", headers=AUTH)
    assert image.status == 200 and (await image.read())[:8] == b"\x89PNG\r\n\x1a\n"
    assert await CodeArtwork.filter(code_id=issued["id"], source__not_isnull=True).count() == 1


async def test_printing_answers_502_while_the_image_host_stays_down(client: Any,
                                                                   wechat: Any) -> None:
    await Salesperson.create(name="王芳", wecom_userid="wangfang")
    wechat.fail(CONTACT_WAY_IMAGE, -1, times=1)
    issued = await (await client.post("/admin/codes", headers=AUTH, json={
        "kind": "salesperson", "channel": "wecom", "salesperson_id": 1})).json()
    wechat.fail(CONTACT_WAY_IMAGE, -1, times=10)
    image = await client.get(f"/admin/codes/{issued['id']}/image.png", headers=AUTH)
    assert image.status == 502
    assert (await image.json())["error"]["code"] == "wechat_unavailable"
    wechat.failures.clear()
    assert (await client.get(f"/admin/codes/{issued['id']}/image.png",
                             headers=AUTH)).status == 200
