"""Pushes: the official vectors (docs/wechat.md §1.6), modes, replies, retries and side effects."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import xmltodict
from aiohttp import web
from aiohttp.test_utils import TestServer
from wechatpy.crypto import WeChatCrypto
from wechatpy.enterprise.crypto import WeChatCrypto as WorkCrypto

from bot.sandbox import Sandbox, events
from bot.sandbox.pushes import check_oa_url, check_wecom_url, deliver, encrypt, sign
from bot.sandbox.records import QRCode
from tests.conftest import OA_AES_KEY, WECOM_AES_KEY, base_settings

PREFIX = "aaaabbbbccccdddd"
V6 = dict(oa_token="pamtest", oa_appid="wxb11529c136998cb6")
D1_PLAIN = (
    "<xml><ToUserName><![CDATA[gh_7f083739789a]]></ToUserName><FromUserName><![CDATA["
    "oia2TjjewbmiOUlr6X-1crbLOvLw]]></FromUserName><CreateTime>1409304348</CreateTime><MsgType>"
    "<![CDATA[event]]></MsgType><Event><![CDATA[subscribe]]></Event><EventKey><![CDATA["
    "qrscene_123123]]></EventKey><Ticket><![CDATA[TICKET]]></Ticket></xml>")
D1_ENCRYPT = (
    "jn1L23DB+6ELqJ+6bruv23bYF/d/cxBf0szhrD8BQ1MkorjFwC0rHlVODYXVB9IoGQ4CNo1VHAn/QmUDCsvVe82eyvUk"
    "mySBcDgs5PbFfKp2ePVamowQeOGiTDxQxfc0zZvbaYk0COUUiAaB/IEopgGDDJSgveMJDjHgkBx4Nx81IIBG9qe74QCH"
    "JuxFckKhp7Cuj2X7i4f9smx6Yw1aazrdxDv91w7cHwKTq8lVDIk/zuyq0ezzh3Xbdy23KenwkyrhtC4kJo7kB+ldn4/G"
    "O1SItIgZv3tgje6//fMu9F6enbRCzdYUxx/r+6rWoDS+tu+IsbMk44+4keY9yTnmgGCj1jLkjHS5iqR32YnP0dH3cG0W"
    "OGT04fyYH9R4gjOceILmUF+eXMFiSnIsOvOZzXQegH9nVOwrEaL2/dfAE6GR1eAGGsurIJ7/d7BZVsiDXJxXbVbRmnZW"
    "ObU561ufa/WD5hjuGqCASNAnpvt8+W2nQ8pGJqSgBcqMmJUr0fL0")
V6_REPLY = (
    "jn1L23DB+6ELqJ+6bruv23M2GmYfkv0xBh2h+XTBOKVKcgDFHle6gqcZ1cZrk3e1qjPQ1F4RsLWzQRG9udbKWesxlkup"
    "qcEcW7ZQweImX9+wLMa0GaUzpkycA8+IamDBxn5loLgZpnS7fVAbExOkK5DYHBmv5tptA9tklE/fTIILHR8HLXa5nQvF"
    "b3tYPKAlHF3rtTeayNf0QuM+UW/wM9enGIDIJHF7CLHiDNAYxr+r+OrJCmPQyTy8cVWlu9iSvOHPT/77bZqJucQHQ04s"
    "q7KZI27OcqpQNSto2OdHCoTccjggX5Z9Mma0nMJBU+jLKJ38YB1fBIz+vBzsYjrTmFQ44YfeEuZ+xRTQwr92vhA9Oxch"
    "WVINGC50qE/6lmkwWTwGX9wtQpsJKhP+oS7rvTY8+VdzETdfakjkwQ5/Xka042OlUb1/slTwo4RscuQ+RdxSGvDahxAJ"
    "6+EAjLt9d8igHngxIbf6YyqqROxuxqIeIch3CssH/LqRs+iAcILvApYZckqmA7FNERspKA5f8GoJ9sv8xmGvZ9Yrf57c"
    "ExWtnX8aCMMaBropU/1k+hKP5LVdzbWCG0hGwx/dQudYR/eXp3P0XxjlFiy+9DMlaFExWUZQDajPkdPrEeOwofJb")
D2_ENCRYPT = (
    "ZA4HuQypHxnRrA+A6SOHGPKvmTJU4q6504P2EkA56JFVbE9ZNBkyS17mfD2T/F/BO0ePdfYfH8hzFS4ta5LSOE0SQ0Fv"
    "7k4i8pEUbX2MYzPqr+sO2RXyxFCOcMLeKCdNiJtpBmZGjNTdohiWKPr6J+NLxvhGPkSGKfhOOFCUtQeMFdyF1Qsu7OUd"
    "NYiNhbUfc0I/IZtVgBVLkdbDjzAIZhy8rn2yPuW0F7xG4f150KwCN7HbbDA1VHgJsDyF5B7vV2mqgYBlh4NdZ1MTEDH+"
    "Ekp0oLccOMZF4ToRxeD2GHJ30qEBA2LeeNgJ5PkO+HTSh6/mi+Rtt0DAVopPN+EksxGly6qwkUQAW01DQCvkoVRxnM8P"
    "AOzyLsALlSzFpzYVmbyPX4HW3WbR7pMzX5sM85YvZuQ+zRP1wEEzRHgqqvqQ4rsY8UQTBB8ntV/98tYqgQaJ4N2dmfuu"
    "xBBp188ioCD4bUxQDCXvFOxtzhsXKILDh8Fiw6jpe+MkN70I+WaYbj1Gb6viKunqUrWOePCOYWh9UDdbr80cdJN1BNiB"
    "rQf1QcIrYcRBz1ax+y8bbM6aWE0X76LzdAq4nWhBt+hOrkTuBrQvOB5f1TChqDpwSbIzwMITXzXT503Ib6XmafJ6FWbZ"
    "uJyClkj+2q7fBCinMnNiOuHk2S6yjlu49tgzXm114Osx8tHLUW4hkhdixMBwbaazbbxpPiimlTgQbjML6g==")


@dataclass
class Receiver:
    """A callback endpoint that records what arrives and answers with `respond`."""

    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    respond: Callable[[int, dict[str, Any]], Any] = field(default=lambda n, req: web.Response(
        text="success"))

    async def handle(self, request: web.Request) -> web.StreamResponse:
        seen = {"method": request.method, "query": dict(request.query),
                "body": await request.text()}
        self.requests.append(seen)
        answer = self.respond(len(self.requests), seen)
        response: web.StreamResponse = await answer if asyncio.iscoroutine(answer) else answer
        return response


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    recv = Receiver()
    app = web.Application()
    app.router.add_route("*", "/wx", recv.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    recv.url = str(server.make_url("/wx"))
    yield recv
    await server.close()


def test_v6_deterministic_encryption() -> None:
    assert encrypt(OA_AES_KEY, "wxb11529c136998cb6", "我是中文abcd123", PREFIX) == (
        "jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg==")


def test_v6_reply_and_its_msg_signature() -> None:
    reply = ("<xml><ToUserName><![CDATA[oia2Tj我是中文jewbmiOUlr6X-1crbLOvLw]]></ToUserName>"
             "<FromUserName><![CDATA[gh_7f083739789a]]></FromUserName><CreateTime>1407743423"
             "</CreateTime><MsgType><![CDATA[video]]></MsgType><Video><MediaId><![CDATA[eYJ1MbwP"
             "RJtOvIEabaxHs7TX2D-HV71s79GUxqdUkjm6Gs2Ed1KF3ulAOA9H1xG0]]></MediaId><Title><![CDATA["
             "testCallBackReplyVideo]]></Title><Description><![CDATA[testCallBackReplyVideo]]>"
             "</Description></Video></xml>")
    encrypted = encrypt(OA_AES_KEY, "wxb11529c136998cb6", reply, PREFIX)
    assert encrypted == V6_REPLY
    assert sign("pamtest", "1409304348", "xxxxxx", encrypted) == (
        "ea88b765074e41eb8c7a75b449db34fa2fd560d5")


async def test_d1_safe_mode_subscribe_from_qr(receiver: Receiver) -> None:
    sandbox = Sandbox(base_settings(**V6), random_prefix=PREFIX)
    event = {**events.subscribe("oia2TjjewbmiOUlr6X-1crbLOvLw", 123123, "TICKET"),
             "CreateTime": 1409304348}
    delivery = await sandbox.push_oa(receiver.url, event, mode="safe", timestamp="1409304348",
                                     nonce="xxxxxx")
    assert delivery.ok and delivery.statuses == [200]
    (seen,) = receiver.requests
    assert seen["query"] == {
        "signature": "76480565cbe296026c53aaacd1ad523a1ddba24f", "timestamp": "1409304348",
        "nonce": "xxxxxx", "openid": "oia2TjjewbmiOUlr6X-1crbLOvLw", "encrypt_type": "aes",
        "msg_signature": "e7d01d4a2a34e9c43bf40a8cf8143b46f43c25a3"}
    assert seen["body"] == ("<xml><ToUserName><![CDATA[gh_7f083739789a]]></ToUserName>"
                            f"<Encrypt><![CDATA[{D1_ENCRYPT}]]></Encrypt></xml>")
    crypto = WeChatCrypto("pamtest", OA_AES_KEY, "wxb11529c136998cb6")
    assert crypto.decrypt_message(seen["body"], seen["query"]["msg_signature"], "1409304348",
                                  "xxxxxx") == D1_PLAIN
    follower = sandbox.followers["oia2TjjewbmiOUlr6X-1crbLOvLw"]
    assert (follower.subscribed, follower.qr_scene, follower.subscribe_scene) == (
        True, 123123, "ADD_SCENE_QR_CODE")


async def test_plain_and_compat_modes(receiver: Receiver) -> None:
    sandbox = Sandbox(base_settings(), random_prefix=PREFIX)
    await sandbox.push_oa(receiver.url, events.text("o" * 28, "你好", 6054768590064713728),
                          mode="plain", timestamp="1409735669", nonce="1320562132")
    await sandbox.push_oa(receiver.url, events.text("o" * 28, "你好"), mode="compat")
    plain, compat = receiver.requests
    assert plain["query"]["signature"] == "16120ec1b8dbb870f510d87ce6bc2463eae6ca1a"  # V5
    assert "encrypt_type" not in plain["query"]
    assert "<MsgId>6054768590064713728</MsgId>" in plain["body"]
    doc = xmltodict.parse(compat["body"])["xml"]
    assert doc["Content"] == "你好" and doc["MsgId"] and doc["Encrypt"]
    assert compat["query"]["encrypt_type"] == "aes"


async def test_d2_wecom_add_external_contact_registers_welcome_code(receiver: Receiver) -> None:
    sandbox = Sandbox(base_settings(), random_prefix=PREFIX)
    event = {**events.external_contact("add_external_contact", "zhangsan",
                                       "woAJ2GCAAAXtWyujaWJHDDGi0mACH71w", state="teststate",
                                       welcome_code="WELCOMECODE"), "CreateTime": 1409659813}
    receiver.respond = lambda n, req: web.Response(text="")
    delivery = await sandbox.push_wecom(receiver.url, event, timestamp="1409659813",
                                        nonce="1372623149")
    assert delivery.ok and delivery.reply is None
    (seen,) = receiver.requests
    assert seen["query"] == {"msg_signature": "666d8e6200c6d54355ee8951703423d9dd30bb17",
                             "timestamp": "1409659813", "nonce": "1372623149"}
    assert xmltodict.parse(seen["body"])["xml"] == {
        "ToUserName": "wx5823bf96d3bd56c7", "Encrypt": D2_ENCRYPT, "AgentID": "1000002"}
    assert sandbox.welcome_codes["WELCOMECODE"].data == {
        "userid": "zhangsan", "external_userid": "woAJ2GCAAAXtWyujaWJHDDGi0mACH71w"}
    contact = sandbox.external_contacts["woAJ2GCAAAXtWyujaWJHDDGi0mACH71w"]
    assert contact.follow_users[0].state == "teststate"


async def test_d3_wecom_url_check(receiver: Receiver) -> None:
    sandbox = Sandbox(base_settings())
    crypto = WorkCrypto("QDG6eK", WECOM_AES_KEY, "wx5823bf96d3bd56c7")

    def echo(n: int, req: dict[str, Any]) -> web.Response:
        q = req["query"]
        return web.Response(text=crypto.check_signature(
            q["msg_signature"], q["timestamp"], q["nonce"], q["echostr"]))

    receiver.respond = echo
    result = await check_wecom_url(sandbox, receiver.url, "1234567890123456789",
                                   timestamp="1409659589", nonce="263014780",
                                   random_prefix=PREFIX)
    assert result.ok
    assert receiver.requests[0]["query"]["echostr"] == (
        "ZA4HuQypHxnRrA+A6SOHGIsQN5UvecwccCSx4ddddYI5p5pZPzN+A+vy3lid7oqTb3OaEAsMAKe+NfyuRafByg==")
    assert receiver.requests[0]["query"]["msg_signature"] == (
        "057a15101858b004a7d1565bc37f000fadf0120c")


async def test_v1_oa_url_check(receiver: Receiver) -> None:
    sandbox = Sandbox(base_settings(oa_token="AAAAA"))
    receiver.respond = lambda n, req: web.Response(text=req["query"]["echostr"])
    result = await check_oa_url(sandbox, receiver.url, "4375120948345356249",
                                timestamp="1714036504", nonce="1514711492")
    assert result.ok
    assert receiver.requests[0]["query"]["signature"] == "f464b24fc39322e44b38aa78f5edd27bd1441696"
    receiver.respond = lambda n, req: web.Response(text="nope")
    assert not (await check_oa_url(sandbox, receiver.url)).ok


async def test_encrypted_reply_is_decrypted_and_checked(receiver: Receiver) -> None:
    sandbox = Sandbox(base_settings())
    crypto = WeChatCrypto("spamtest", OA_AES_KEY, "wx2c2769f8efd9abc2")
    answer = "<xml><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[欢迎]]></Content></xml>"
    receiver.respond = lambda n, req: web.Response(
        text=crypto.encrypt_message(answer, req["query"]["nonce"], req["query"]["timestamp"]))
    delivery = await sandbox.push_oa(receiver.url, events.subscribe("o" * 28))
    assert delivery.reply == answer and delivery.attempts[0].error is None

    receiver.respond = lambda n, req: web.Response(text=crypto.encrypt_message(
        answer, "1", "2").replace("<TimeStamp>2<", "<TimeStamp>3<"))
    tampered = await sandbox.push_oa(receiver.url, events.subscribe("o" * 28))
    assert tampered.reply is None and "refused" in str(tampered.attempts[0].error)
    receiver.respond = lambda n, req: web.Response(text=answer)
    plain = await sandbox.push_oa(receiver.url, events.subscribe("o" * 28), mode="safe")
    assert "plain reply" in str(plain.attempts[0].error)


async def test_retries_after_timeout_with_identical_request(receiver: Receiver) -> None:
    async def slow_first(n: int, req: dict[str, Any]) -> web.Response:
        if n == 1:
            await asyncio.sleep(0.5)
        return web.Response(text="success")

    receiver.respond = slow_first
    sandbox = Sandbox(base_settings())
    delivery = await sandbox.push_oa(receiver.url, events.text("o" * 28, "hi"), timeout=0.2)
    assert delivery.statuses == [None, 200] and delivery.attempts[0].error == "timeout"
    first, second = receiver.requests
    assert first == second  # same MsgId, CreateTime, nonce, signature


async def test_three_tries_in_all_on_errors(receiver: Receiver) -> None:
    receiver.respond = lambda n, req: web.Response(status=500)
    delivery = await deliver(receiver.url, "<xml/>", query={"a": "1"})
    assert delivery.statuses == [500, 500, 500] and not delivery.ok
    assert len(receiver.requests) == 3


async def test_duplicates_are_sent_even_when_answered(receiver: Receiver) -> None:
    sandbox = Sandbox(base_settings())
    delivery = await sandbox.push_wecom(receiver.url, events.external_contact(
        "del_follow_user", "zhangsan", "wm" + "x" * 30), duplicates=2)
    assert delivery.statuses == [200, 200, 200]
    assert len({r["body"] for r in receiver.requests}) == 1


async def test_unsubscribe_and_template_report(receiver: Receiver) -> None:
    sandbox = Sandbox(base_settings())
    openid = sandbox.add_follower(unionid="o" + "u" * 27).openid
    await sandbox.push_oa(receiver.url, events.unsubscribe(openid))
    assert not sandbox.is_follower(openid)
    delivery = await sandbox.push_oa(receiver.url, events.template_finished(openid, 200163836),
                                     mode="plain")
    assert "<MsgID>200163836</MsgID><Status><![CDATA[success]]></Status>" in (
        receiver.requests[-1]["body"])
    assert delivery.fields["Event"] == "TEMPLATESENDJOBFINISH"


async def test_scan_code_is_subscribe_then_scan(receiver: Receiver) -> None:
    sandbox = Sandbox(base_settings())
    sandbox.qrcodes["T"] = QRCode("T", "http://weixin.qq.com/q/x", "QR_STR_SCENE", "42", 0, None)
    first = events.scan_code(sandbox, "T", "o" * 28, unionid="o" + "u" * 27)
    assert first["EventKey"] == "qrscene_42"
    await sandbox.push_oa(receiver.url, first)
    assert sandbox.followers["o" * 28].qr_scene_str == "42"
    assert sandbox.followers["o" * 28].unionid == "o" + "u" * 27
    assert events.scan_code(sandbox, "T", "o" * 28)["Event"] == "SCAN"
