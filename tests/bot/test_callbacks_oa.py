"""/wechat/oa end to end: URL check, the three modes, JSON pushes, every bad input, dedup,
the 5-second window."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
import xmltodict

from bot import keys
from bot.sandbox import events
from bot.sandbox.pushes import check_oa_url, sign
from bot.settings import Secret
from bot.signals import Outcome
from bot.wxcrypto import CallbackCrypto
from domain.attribution import DEFAULT_WELCOME as WELCOME
from handlers.oa import WELCOME_BACK
from models import Identity, IdentityKind, Interaction, Prospect
from tests.bot.kit import (
    GH,
    OA_APPID,
    OA_TOKEN,
    OPENID,
    aes,
    eventually,
    frame,
    oa_fields,
    oa_request,
    service,
)
from tests.bot.test_wxcrypto import (
    AAAA_KEY,
    BAD_CIPHERTEXTS,
    D1_ENCRYPT,
    FOREVER,
    V5_ENCRYPT,
    V5_KEY,
    V6_REPLY,
    V6_REPLY_ENCRYPT,
)

V3_ENCRYPT = (
    "+qdx1OKCy+5JPCBFWw70tm0fJGb2Jmeia4FCB7kao+/Q5c/ohsOzQHi8khUOb05JCpj0JB4RvQMkUyus8TPxLKJGQqcvZqzD"
    "pVzazhZv6JsXUnnR8XGT740XgXZUXQ7vJVnAG+tE8NUd4yFyjPy7GgiaviNrlCTj+l5kdfMuFUPpRSrfMZuMcp3Fn2Pede2I"
    "uQrKEYwKSqFIZoNqJ4M8EajAsjLY2km32IIjdf8YL/P50F7mStwntrA2cPDrM1kb6mOcfBgRtWygb3VIYnSeOBrebufAlr7F"
    "9mFUPAJGj04="
)
BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE xml [\n <!ENTITY lol "lol">\n'
    + "".join(f' <!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n'
              for i in range(1, 10))
    + "]>\n<xml><ToUserName><![CDATA[gh_7f083739789a]]></ToUserName><FromUserName><![CDATA["
    + OPENID + "]]></FromUserName><CreateTime>1409735668</CreateTime><MsgType><![CDATA[text]]>"
    "</MsgType><Content>&lol9;</Content><MsgId>42</MsgId></xml>"
)
XXE = ('<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
       "<xml><ToUserName>gh_7f083739789a</ToUserName><FromUserName>" + OPENID + "</FromUserName>"
       "<CreateTime>1409735668</CreateTime><MsgType>text</MsgType><Content>&xxe;</Content>"
       "<MsgId>43</MsgId></xml>")
PARAMETER_ENTITY = ('<!DOCTYPE xml [<!ENTITY % remote SYSTEM "http://127.0.0.1:9/x.dtd"> %remote;]>'
                    "<xml><MsgType>text</MsgType><MsgId>44</MsgId></xml>")
DECLARATIONS = {
    "billion laughs": BILLION_LAUGHS,
    "xxe": XXE,
    "parameter entity": PARAMETER_ENTITY,
    "bare doctype, lower case": "<!doctype xml><xml><MsgType>text</MsgType><MsgId>1</MsgId></xml>",
    "entity only": '<xml><!ENTITY a "b"><MsgType>text</MsgType><MsgId>1</MsgId></xml>',
    "spaced doctype": "<! DOCTYPE xml><xml><MsgType>text</MsgType><MsgId>1</MsgId></xml>",
    "stylesheet instruction": '<?xml-stylesheet href="http://127.0.0.1:9/x"?><xml><MsgType>text'
                              "</MsgType><MsgId>1</MsgId></xml>",
}


async def stored() -> int:
    return await Interaction.all().count()


async def nothing_stored() -> None:
    assert await Interaction.all().count() == 0
    assert await Prospect.all().count() == 0


def error(body: dict[str, Any]) -> str:
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["message"]
    return str(body["error"]["code"])


async def by_mode(aiohttp_client: Any, app_settings: Any, mode: str) -> Any:
    """The service of an OA in `mode`: without an EncodingAESKey for plain."""
    if mode == "plain":
        return await service(aiohttp_client, app_settings, oa_aes_key=None)
    return await service(aiohttp_client, app_settings)


@pytest.fixture
async def plain_client(aiohttp_client: Any, app_settings: Any) -> Any:
    """An OA in plaintext mode: no EncodingAESKey."""
    return await service(aiohttp_client, app_settings, oa_aes_key=None)


# --- URL check ----------------------------------------------------------------------------------

async def test_v1_url_check_answers_the_echostr_verbatim(aiohttp_client, app_settings):
    client = await service(aiohttp_client, app_settings, oa_token=Secret("AAAAA"),
                           timestamp_tolerance=FOREVER)
    query = {"signature": "f464b24fc39322e44b38aa78f5edd27bd1441696", "timestamp": "1714036504",
             "nonce": "1514711492", "echostr": "4375120948345356249"}
    response = await client.get("/wechat/oa", params=query)
    assert response.status == 200
    assert await response.text() == "4375120948345356249"
    response = await client.get("/wechat/oa", params={**query, "nonce": "1514711493"})
    assert response.status == 403
    assert error(await response.json()) == "bad_signature"


async def test_v9_url_check(aiohttp_client, app_settings):
    client = await service(aiohttp_client, app_settings, oa_token=Secret("test"),
                           timestamp_tolerance=FOREVER)
    query = {"signature": "f21891de399b4e33a1a93c9a7b8a8fffb5a443ff", "timestamp": "1410685589",
             "nonce": "test", "echostr": "hello"}
    assert await (await client.get("/wechat/oa", params=query)).text() == "hello"
    query["signature"] = query["signature"][:-1] + "e"
    assert (await client.get("/wechat/oa", params=query)).status == 403


async def test_url_check_from_the_sandbox_and_a_stale_one(client, wechat):
    url = str(client.make_url("/wechat/oa"))
    assert (await check_oa_url(wechat, url, "5927782489442352469")).ok
    stale = await check_oa_url(wechat, url, "1", timestamp=str(int(time.time()) - 301))
    assert stale.statuses == [403] and not stale.ok


async def test_url_check_with_the_default_tolerance_refuses_the_old_vector(client):
    query = {"signature": sign(OA_TOKEN, "1409735669", "1"), "timestamp": "1409735669",
             "nonce": "1", "echostr": "x"}
    assert (await client.get("/wechat/oa", params=query)).status == 403


# --- official vectors through the endpoint --------------------------------------------------------

async def test_v5_safe_mode_message_is_stored(aiohttp_client, app_settings):
    client = await service(aiohttp_client, app_settings, timestamp_tolerance=FOREVER)
    query = {"signature": "16120ec1b8dbb870f510d87ce6bc2463eae6ca1a", "timestamp": "1409735669",
             "nonce": "1320562132", "openid": "oyORnuP8q7ou2gfYjqLzSIWZf0rs",
             "encrypt_type": "aes", "msg_signature": "5d197aaffba7e9b25a30732f161a50dee96bd5fa"}
    body = (f"<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName>"
            f"<Encrypt><![CDATA[{V5_ENCRYPT}]]></Encrypt></xml>")
    response = await client.post("/wechat/oa", params=query, data=body)
    assert response.status == 200 and await response.text() == "success"
    row = await Interaction.get(source="oa")
    assert (row.kind, row.dedup_key) == ("message.text", "msg:6054768590064713728")
    assert row.actor == "oyORnuP8q7ou2gfYjqLzSIWZf0rs"
    assert row.payload["Content"] == "abcdteT"
    # the same push again (WeChat's retry) is acknowledged and not stored twice
    assert (await client.post("/wechat/oa", params=query, data=body)).status == 200
    assert await stored() == 1


async def test_v5_refused_with_the_default_five_minutes(client):
    query = {"timestamp": "1409735669", "nonce": "1320562132", "encrypt_type": "aes",
             "msg_signature": "5d197aaffba7e9b25a30732f161a50dee96bd5fa"}
    body = f"<xml><ToUserName>gh</ToUserName><Encrypt>{V5_ENCRYPT}</Encrypt></xml>"
    response = await client.post("/wechat/oa", params=query, data=body)
    assert response.status == 403
    await nothing_stored()


@pytest.fixture
async def v6_client(aiohttp_client, app_settings) -> Any:
    """The account of V6/D1: token pamtest, AppID wxb11529c136998cb6."""
    return await service(aiohttp_client, app_settings, oa_token=Secret("pamtest"),
                         oa_appid="wxb11529c136998cb6", timestamp_tolerance=FOREVER)


async def test_d1_safe_mode_subscribe_gets_an_encrypted_welcome(v6_client):
    query = {"signature": "76480565cbe296026c53aaacd1ad523a1ddba24f", "timestamp": "1409304348",
             "nonce": "xxxxxx", "openid": OPENID, "encrypt_type": "aes",
             "msg_signature": "e7d01d4a2a34e9c43bf40a8cf8143b46f43c25a3"}
    body = (f"<xml><ToUserName><![CDATA[{GH}]]></ToUserName>"
            f"<Encrypt><![CDATA[{D1_ENCRYPT}]]></Encrypt></xml>")
    response = await v6_client.post("/wechat/oa", params=query, data=body)
    assert response.status == 200
    envelope = xmltodict.parse(await response.text())["xml"]
    assert envelope["Nonce"] == "xxxxxx"
    crypto = CallbackCrypto("pamtest", V5_KEY, "wxb11529c136998cb6")  # default 5-minute window
    crypto.verify_encrypted(envelope["MsgSignature"], envelope["TimeStamp"], envelope["Nonce"],
                            envelope["Encrypt"])
    reply = xmltodict.parse(crypto.decrypt(envelope["Encrypt"]))["xml"]
    assert reply["MsgType"] == "text" and reply["Content"] == WELCOME
    assert (reply["ToUserName"], reply["FromUserName"]) == (OPENID, GH)
    row = await Interaction.get(source="oa")
    assert (row.kind, row.scene, row.actor) == ("event.subscribe", "123123", OPENID)


async def test_v6_message_is_stored_with_its_chinese(v6_client):
    query = {"timestamp": "1409304348", "nonce": "xxxxxx", "encrypt_type": "aes",
             "msg_signature": "ea88b765074e41eb8c7a75b449db34fa2fd560d5"}
    body = f"<xml><ToUserName>{GH}</ToUserName><Encrypt>{V6_REPLY_ENCRYPT}</Encrypt></xml>"
    response = await v6_client.post("/wechat/oa", params=query, data=body)
    assert response.status == 200
    row = await Interaction.get(source="oa")
    assert row.kind == "message.video"
    assert row.payload == xmltodict.parse(V6_REPLY)["xml"]
    assert "我是中文" in row.payload["ToUserName"]


async def test_v2_plaintext_json_push(aiohttp_client, app_settings):
    client = await service(aiohttp_client, app_settings, oa_token=Secret("AAAAA"),
                           oa_aes_key=None, timestamp_tolerance=FOREVER)
    body = ('{"ToUserName":"gh_97417a04a28d","FromUserName":"o9AgO5Kd5ggOC-bXrbNODIiE3bGY",'
            '"CreateTime":1714037059,"MsgType":"event","Event":"debug_demo",'
            '"debug_str":"hello world"}')
    query = {"signature": "899cf89e464efb63f54ddac96b0a0a235f53aa78", "timestamp": "1714037059",
             "nonce": "486452656"}
    response = await client.post("/wechat/oa", params=query, data=body,
                                 headers={"Content-Type": "application/json"})
    assert response.status == 200 and await response.text() == "success"
    row = await Interaction.get(source="oa")
    assert (row.kind, row.actor) == ("event.debug_demo", "o9AgO5Kd5ggOC-bXrbNODIiE3bGY")
    assert row.payload["debug_str"] == "hello world"
    bad = await client.post("/wechat/oa", params={**query, "nonce": "486452657"}, data=body)
    assert bad.status == 403


async def test_v3_safe_mode_json_push(aiohttp_client, app_settings):
    client = await service(aiohttp_client, app_settings, oa_token=Secret("AAAAA"),
                           oa_aes_key=Secret(AAAA_KEY), oa_appid="wxba5fad812f8e6fb9",
                           timestamp_tolerance=FOREVER)
    query = {"signature": sign("AAAAA", "1714112445", "415670741"), "timestamp": "1714112445",
             "nonce": "415670741", "encrypt_type": "aes",
             "msg_signature": "046e02f8204d34f8ba5fa3b1db94908f3df2e9b3"}
    body = json.dumps({"ToUserName": "gh_97417a04a28d", "Encrypt": V3_ENCRYPT})
    response = await client.post("/wechat/oa", params=query, data=body)
    assert response.status == 200 and await response.text() == "success"
    row = await Interaction.get(source="oa")
    assert (row.kind, row.actor) == ("event.debug_demo", "o9AgO5Kd5ggOC-bXrbNODIiE3bGY")
    assert row.payload["CreateTime"] in (1714112445, "1714112445")


async def test_json_push_gets_a_json_encrypted_reply(client):
    payload = json.dumps(oa_fields(MsgType="event", Event="subscribe"))
    query, body = oa_request(payload)
    body = json.dumps({"ToUserName": GH, "Encrypt": xmltodict.parse(body)["xml"]["Encrypt"]})
    response = await client.post("/wechat/oa", params=query, data=body)
    assert response.status == 200
    assert response.content_type == "application/json"
    envelope = await response.json()
    assert isinstance(envelope["TimeStamp"], int) and envelope["Nonce"] == query["nonce"]
    crypto = CallbackCrypto(OA_TOKEN, V5_KEY, OA_APPID)
    crypto.verify_encrypted(envelope["MsgSignature"], str(envelope["TimeStamp"]),
                            envelope["Nonce"], envelope["Encrypt"])
    reply = json.loads(crypto.decrypt(envelope["Encrypt"]))
    assert reply["Content"] == WELCOME and reply["ToUserName"] == OPENID
    assert reply["MsgType"] == "text" and isinstance(reply["CreateTime"], int)


async def test_plain_json_push_gets_a_plain_json_reply(plain_client):
    payload = json.dumps(oa_fields(MsgType="event", Event="SCAN", EventKey="b1", Ticket="T"))
    query, body = oa_request(payload, mode="plain")
    response = await plain_client.post("/wechat/oa", params=query, data=body)
    assert response.status == 200 and response.content_type == "application/json"
    assert (await response.json())["Content"] == WELCOME_BACK


# --- the three modes through the sandbox ----------------------------------------------------------

@pytest.mark.parametrize("mode", ["compat", "safe"])
async def test_encrypted_modes_through_the_sandbox(client, wechat, mode):
    url = str(client.make_url("/wechat/oa"))
    delivery = await wechat.push_oa(url, events.subscribe(OPENID, scene="booth1"), mode=mode)
    assert delivery.ok and delivery.statuses == [200]
    assert delivery.attempts[0].error is None  # the reply was encrypted and its MsgSignature good
    assert "<Encrypt>" in delivery.attempts[0].body
    assert WELCOME in str(delivery.reply)
    row = await Interaction.get(source="oa")
    assert (row.kind, row.scene, row.actor) == ("event.subscribe", "booth1", OPENID)


async def test_plaintext_mode_through_the_sandbox(plain_client, wechat):
    url = str(plain_client.make_url("/wechat/oa"))
    delivery = await wechat.push_oa(url, events.subscribe(OPENID, scene="booth1"), mode="plain")
    assert delivery.ok and delivery.attempts[0].error is None
    assert "<Encrypt>" not in delivery.attempts[0].body
    assert xmltodict.parse(delivery.attempts[0].body)["xml"]["Content"] == WELCOME
    assert await stored() == 1


async def test_scan_reply_is_encrypted_and_signed(client):
    query, body = oa_request(oa_fields(MsgType="event", Event="SCAN", EventKey="booth9",
                                       Ticket="T"), nonce="n0nce")
    response = await client.post("/wechat/oa", params=query, data=body)
    envelope = xmltodict.parse(await response.text())["xml"]
    assert envelope["Nonce"] == "n0nce"
    crypto = CallbackCrypto(OA_TOKEN, V5_KEY, OA_APPID)
    crypto.verify_encrypted(envelope["MsgSignature"], envelope["TimeStamp"], "n0nce",
                            envelope["Encrypt"])
    assert xmltodict.parse(crypto.decrypt(envelope["Encrypt"]))["xml"]["Content"] == WELCOME_BACK


async def test_compat_mode_trusts_only_the_ciphertext(client):
    fields = oa_fields(MsgType="text", Content="real", MsgId=777)
    query, _ = oa_request(fields, mode="compat")
    forged = {**fields, "FromUserName": "oFORGEDxxxxxxxxxxxxxxxxxxxxx", "Content": "forged"}
    _, body = oa_request(forged, mode="compat",
                         encrypted=xmltodict.parse(oa_request(fields, mode="safe")[1])["xml"][
                             "Encrypt"])
    response = await client.post("/wechat/oa", params=query, data=body)
    assert response.status == 200
    row = await Interaction.get(source="oa")
    assert row.actor == OPENID and row.payload["Content"] == "real"


# --- refusals -----------------------------------------------------------------------------------

async def test_plaintext_body_refused_when_an_aes_key_is_configured(client):
    query, body = oa_request(oa_fields(MsgType="text", Content="hi", MsgId=1), mode="plain")
    for extra in ({}, {"encrypt_type": "raw"}):
        response = await client.post("/wechat/oa", params={**query, **extra}, data=body)
        assert response.status == 403
        assert error(await response.json()) == "bad_signature"
    await nothing_stored()


async def test_bad_plain_signature(plain_client):
    query, body = oa_request(oa_fields(MsgType="text", Content="hi", MsgId=1), mode="plain")
    for signature in ("0" * 40, "", query["signature"].upper()):
        response = await plain_client.post("/wechat/oa", params={**query, "signature": signature},
                                           data=body)
        assert response.status == 403
    response = await plain_client.post("/wechat/oa",
                                       params={k: v for k, v in query.items() if k != "signature"},
                                       data=body)
    assert response.status == 403
    await nothing_stored()


async def test_bad_msg_signature(client):
    query, body = oa_request(oa_fields(MsgType="text", Content="hi", MsgId=1))
    for change in ({"msg_signature": "0" * 40}, {"msg_signature": ""},
                   {"nonce": "other"}, {"msg_signature": query["signature"]}):
        response = await client.post("/wechat/oa", params={**query, **change}, data=body)
        assert response.status == 403, change
        assert error(await response.json()) == "bad_signature"
    no_msg_signature = {k: v for k, v in query.items() if k != "msg_signature"}
    assert (await client.post("/wechat/oa", params=no_msg_signature, data=body)).status == 403
    await nothing_stored()


@pytest.mark.parametrize("mode", ["safe", "plain"])
@pytest.mark.parametrize("timestamp", [
    str(int(time.time()) - 301 - 60), str(int(time.time()) + 3600), "", "abc", "1e9", "-", None])
async def test_stale_missing_or_odd_timestamps(aiohttp_client, app_settings, mode, timestamp):
    client = await by_mode(aiohttp_client, app_settings, mode)
    query, body = oa_request(oa_fields(MsgType="text", Content="hi", MsgId=1), mode=mode,
                             timestamp=timestamp or "0")
    if timestamp is None:
        del query["timestamp"]
    else:
        query["timestamp"] = timestamp
    response = await client.post("/wechat/oa", params=query, data=body)
    assert response.status == 403
    assert error(await response.json()) == "bad_signature"
    await nothing_stored()


@pytest.mark.parametrize("case", sorted(BAD_CIPHERTEXTS))
async def test_every_bad_ciphertext_is_a_403_with_one_code(client, case):
    query, body = oa_request("<xml/>", encrypted=BAD_CIPHERTEXTS[case])
    response = await client.post("/wechat/oa", params=query, data=body)
    assert response.status == 403
    assert error(await response.json()) == "bad_ciphertext"
    await nothing_stored()


async def test_ciphertext_for_another_appid_refused(client):
    xml = "<xml><MsgType>text</MsgType><MsgId>5</MsgId></xml>"
    query, body = oa_request(xml, appid="wxb11529c136998cb6")
    response = await client.post("/wechat/oa", params=query, data=body)
    assert response.status == 403 and error(await response.json()) == "bad_ciphertext"
    await nothing_stored()


async def test_body_over_64_kib_with_content_length(client):
    big = oa_fields(MsgType="text", Content="x" * (64 * 1024), MsgId=1)
    query, body = oa_request(big)
    response = await client.post("/wechat/oa", params=query, data=body.encode())
    assert response.status == 413
    assert error(await response.json()) == "payload_too_large"
    await nothing_stored()


async def test_body_over_64_kib_chunked(client):
    query, body = oa_request(oa_fields(MsgType="text", Content="x" * (70 * 1024), MsgId=1))

    async def chunks():
        data = body.encode()
        for start in range(0, len(data), 8192):
            yield data[start:start + 8192]

    response = await client.post("/wechat/oa", params=query, data=chunks())
    assert response.status == 413
    assert error(await response.json()) == "payload_too_large"
    await nothing_stored()


async def test_a_compressed_body_is_refused_never_inflated(client):
    import gzip

    query, _ = oa_request(oa_fields(MsgType="text", MsgId=1))
    bomb = gzip.compress(b"<xml>" + b" " * (8 * 1024 * 1024) + b"</xml>")
    assert len(bomb) < 64 * 1024
    response = await client.post("/wechat/oa", params=query, data=bomb,
                                 headers={"Content-Encoding": "gzip"})
    assert response.status == 415
    assert error(await response.json()) == "unsupported_content_encoding"
    await nothing_stored()


async def test_a_body_just_under_the_limit_is_accepted(plain_client):
    fields = oa_fields(MsgType="text", Content="", MsgId=1)
    query, empty = oa_request(fields, mode="plain")
    fields["Content"] = "y" * (64 * 1024 - len(empty.encode()))
    query, body = oa_request(fields, mode="plain")
    assert len(body.encode()) == 64 * 1024

    async def chunks():
        yield body.encode()

    response = await plain_client.post("/wechat/oa", params=query, data=chunks())
    assert response.status == 200
    assert await stored() == 1


@pytest.mark.parametrize("mode", ["safe", "plain"])
@pytest.mark.parametrize("case", sorted(DECLARATIONS))
async def test_declarations_refused_in_the_outer_body(aiohttp_client, app_settings, mode, case):
    client = await by_mode(aiohttp_client, app_settings, mode)
    xml = DECLARATIONS[case]
    query, _ = oa_request(xml, mode=mode)
    response = await client.post("/wechat/oa", params=query, data=xml)
    assert response.status == 400
    assert error(await response.json()) == "malformed_push"
    await nothing_stored()


@pytest.mark.parametrize("case", sorted(DECLARATIONS))
async def test_declarations_refused_inside_the_ciphertext(client, case):
    query, body = oa_request(DECLARATIONS[case])
    response = await client.post("/wechat/oa", params=query, data=body)
    assert response.status == 400
    assert error(await response.json()) == "malformed_push"
    await nothing_stored()


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32"])
async def test_a_declaration_in_another_encoding_is_refused(plain_client, encoding):
    xml = ("<!DOCTYPE xml><xml><ToUserName>gh</ToUserName><FromUserName>o</FromUserName>"
           "<CreateTime>1</CreateTime><MsgType>text</MsgType><MsgId>9</MsgId></xml>")
    query, _ = oa_request(xml, mode="plain")
    response = await plain_client.post("/wechat/oa", params=query, data=xml.encode(encoding))
    assert response.status == 400
    await nothing_stored()


MALFORMED = {
    "not xml": "hello",
    "unclosed": "<xml><MsgType>text</MsgType>",
    "mismatched": "<xml><MsgType>text</Type></xml>",
    "no root": "",
    "json array": "[1, 2]",
    "json string": '"x"',
    "broken json": '{"MsgType": ',
    "no msgtype": "<xml><ToUserName>gh</ToUserName><FromUserName>o</FromUserName></xml>",
    "empty msgtype": "<xml><MsgType></MsgType><FromUserName>o</FromUserName></xml>",
    "json without msgtype": '{"ToUserName": "gh", "FromUserName": "o"}',
}


@pytest.mark.parametrize("mode", ["safe", "plain"])
@pytest.mark.parametrize("case", sorted(MALFORMED))
async def test_malformed_bodies_are_400(aiohttp_client, app_settings, mode, case):
    client = await by_mode(aiohttp_client, app_settings, mode)
    query, body = oa_request(MALFORMED[case], mode=mode)
    response = await client.post("/wechat/oa", params=query, data=body)
    assert response.status == 400, await response.text()
    assert error(await response.json()) == "malformed_push"
    await nothing_stored()


async def test_an_envelope_without_encrypt_is_400(client):
    query, _ = oa_request(oa_fields(MsgType="text", MsgId=1))
    for body in ("<xml><ToUserName>gh</ToUserName></xml>",
                 "<xml><ToUserName>gh</ToUserName><Encrypt></Encrypt></xml>",
                 '{"ToUserName": "gh"}'):
        response = await client.post("/wechat/oa", params=query, data=body)
        assert response.status == 400
    # a number where the ciphertext should be is not what was signed
    response = await client.post("/wechat/oa", params=query, data='{"Encrypt": 5}')
    assert response.status == 403
    await nothing_stored()


async def test_an_encrypted_push_to_a_plaintext_account_is_refused(plain_client):
    query, body = oa_request(oa_fields(MsgType="text", MsgId=1))
    response = await plain_client.post("/wechat/oa", params=query, data=body)
    assert response.status == 403 and error(await response.json()) == "bad_ciphertext"
    await nothing_stored()


async def test_no_oa_token_configured_names_the_variable(aiohttp_client, app_settings):
    client = await service(aiohttp_client, app_settings, oa_token=None)
    query, body = oa_request(oa_fields(MsgType="text", MsgId=1))
    response = await client.post("/wechat/oa", params=query, data=body)
    assert response.status == 403
    assert "SCRM_OA_TOKEN" in (await response.json())["error"]["message"]
    await nothing_stored()


# --- de-duplication -----------------------------------------------------------------------------

async def test_sequential_retries_of_an_event_are_stored_once(client, wechat):
    url = str(client.make_url("/wechat/oa"))
    delivery = await wechat.push_oa(url, events.subscribe(OPENID, scene="booth1"), duplicates=2)
    assert delivery.statuses == [200, 200, 200]
    assert [a.body for a in delivery.attempts[1:]] == ["success", "success"]
    assert await stored() == 1


async def test_retries_of_a_message_with_one_msgid_are_stored_once(client):
    fields = oa_fields(MsgType="text", Content="hello", MsgId=6054768590064713728)
    for nonce in ("1", "2", "3"):  # a retry may even come with another nonce and timestamp
        query, body = oa_request(fields, nonce=nonce)
        assert (await client.post("/wechat/oa", params=query, data=body)).status == 200
    row = await Interaction.get()
    assert row.dedup_key == "msg:6054768590064713728"


async def test_concurrent_retries_are_stored_once(client):
    query, body = oa_request(oa_fields(MsgType="event", Event="subscribe",
                                       EventKey="qrscene_booth1", Ticket="T"))
    responses = await asyncio.gather(*(client.post("/wechat/oa", params=query, data=body)
                                       for _ in range(10)))
    assert [r.status for r in responses] == [200] * 10
    bodies = [await r.text() for r in responses]
    assert sum("<Encrypt>" in b for b in bodies) == 1  # one welcome; the retries get `success`
    assert await stored() == 1


async def test_concurrent_retries_of_messages_are_stored_once(client):
    requests = [oa_request(oa_fields(MsgType="text", Content=str(i % 3), MsgId=1000 + i % 3))
                for i in range(12)]
    responses = await asyncio.gather(*(client.post("/wechat/oa", params=q, data=b)
                                       for q, b in requests))
    assert {r.status for r in responses} == {200}
    assert await stored() == 3


async def test_two_events_of_one_person_in_one_second_are_two(client):
    second = int(time.time())
    pushes = [
        oa_fields(CreateTime=second, MsgType="event", Event="subscribe",
                  EventKey="qrscene_booth1", Ticket="T1"),
        oa_fields(CreateTime=second, MsgType="event", Event="SCAN", EventKey="booth2",
                  Ticket="T2"),
        oa_fields(CreateTime=second, MsgType="event", Event="SCAN", EventKey="booth3",
                  Ticket="T3"),
    ]
    for fields in pushes:
        query, body = oa_request(fields)
        assert (await client.post("/wechat/oa", params=query, data=body)).status == 200
    assert sorted(await Interaction.all().values_list("scene", flat=True)) == [
        "booth1", "booth2", "booth3"]
    # and the same event from two people in the same second are two as well
    query, body = oa_request({**pushes[1], "FromUserName": "oOTHERxxxxxxxxxxxxxxxxxxxxxx"})
    await client.post("/wechat/oa", params=query, data=body)
    assert await stored() == 4


# --- the group commit -------------------------------------------------------------------------

async def test_concurrent_pushes_share_commits_and_each_is_attributed_to_its_own(client,
                                                                                monkeypatch):
    import bot.intake

    real, sizes = bot.intake.insert_new, []

    async def slow_first(rows):
        sizes.append(len(rows))
        if len(sizes) == 1:
            await asyncio.sleep(0.1)  # the others queue up behind this commit
        return await real(rows)

    monkeypatch.setattr(bot.intake, "insert_new", slow_first)
    openids = [f"o{i:027d}" for i in range(30)]
    requests = [oa_request(oa_fields(FromUserName=o, MsgType="event", Event="subscribe"))
                for o in openids]
    responses = await asyncio.gather(*(client.post("/wechat/oa", params=q, data=b)
                                       for q, b in requests))
    assert [r.status for r in responses] == [200] * 30
    assert sum(sizes) == 30 and len(sizes) < 30

    async def all_attributed():
        return await Interaction.filter(prospect_id__isnull=False).count() == 30

    await eventually(all_attributed)
    for row in await Interaction.all():
        identity = await Identity.get(kind=IdentityKind.OA_OPENID, value=row.actor)
        assert row.prospect_id == identity.prospect_id


async def test_a_failed_commit_is_a_503_so_wechat_retries(client, monkeypatch):
    import bot.intake

    real = bot.intake.insert_new

    async def down(rows):
        raise ConnectionError("database went away")

    monkeypatch.setattr(bot.intake, "insert_new", down)
    query, body = oa_request(oa_fields(MsgType="text", Content="hi", MsgId=11))
    response = await client.post("/wechat/oa", params=query, data=body)
    assert response.status == 503
    assert error(await response.json()) == "service_unavailable"
    assert "database" not in await response.text()
    await nothing_stored()
    monkeypatch.setattr(bot.intake, "insert_new", real)
    assert (await client.post("/wechat/oa", params=query, data=body)).status == 200
    assert await stored() == 1


# --- the 5-second window ------------------------------------------------------------------------

async def test_slow_work_is_answered_in_time_and_finishes_after(aiohttp_client, app_settings):
    client = await service(aiohttp_client, app_settings, callback_deadline=0.2)
    dispatcher = client.app[keys.DISPATCHER]
    finished = asyncio.Event()

    release = asyncio.Event()

    async def slow(signal, prospects):
        await release.wait()  # past the 0.2 s deadline
        prospect_id = await prospects.resolve("oa_openid", signal.actor)
        finished.set()
        return Outcome(prospect_id=prospect_id)

    dispatcher.table[("oa", "event.subscribe", "*")] = slow
    query, body = oa_request(oa_fields(MsgType="event", Event="subscribe"))
    response = await client.post("/wechat/oa", params=query, data=body)
    assert response.status == 200 and await response.text() == "success"
    row = await Interaction.get()
    assert row.processed_at is None and not finished.is_set()  # stored, still being worked on
    release.set()
    await asyncio.wait_for(finished.wait(), 3)

    async def processed():
        return await Interaction.filter(id=row.id, processed_at__isnull=False).first()

    done = await eventually(processed)
    assert done.prospect_id == (await Prospect.get()).id


async def test_a_push_no_handler_takes_is_stored_processed_in_one_write(client, monkeypatch):
    dispatcher = client.app[keys.DISPATCHER]
    assert dispatcher.find("oa", "event.location", "none") is None
    marked: list[object] = []
    monkeypatch.setattr(client.app[keys.COMPLETIONS], "submit", marked.append)
    query, body = oa_request(oa_fields(MsgType="event", Event="LOCATION", Latitude="31.2",
                                       Longitude="121.5", Precision="30"))
    response = await client.post("/wechat/oa", params=query, data=body)
    assert response.status == 200 and await response.text() == "success"
    row = await Interaction.get()
    assert row.kind == "event.location" and row.processed_at == row.received_at
    assert marked == []  # no second write to mark it


async def test_a_failing_handler_still_answers_success(client):
    dispatcher = client.app[keys.DISPATCHER]

    async def broken(push):
        raise RuntimeError("boom")

    dispatcher.table[("oa", "message.text", "*")] = broken
    query, body = oa_request(oa_fields(MsgType="text", Content="hi", MsgId=5))
    response = await client.post("/wechat/oa", params=query, data=body)
    assert response.status == 200 and await response.text() == "success"
    row = await Interaction.get()
    assert row.processed_at is None  # left for the worker to retry


async def test_bad_ciphertext_answers_never_500(client):
    """A random mix of garbage after a valid signature: 4xx, never 5xx."""
    import random

    rng = random.Random(7)
    for _ in range(40):
        raw = bytes(rng.randrange(256) for _ in range(rng.choice([32, 64, 96])))
        query, body = oa_request("<xml/>", encrypted=aes(V5_KEY, raw))
        response = await client.post("/wechat/oa", params=query, data=body)
        assert 400 <= response.status < 500
    for length in (0, 1, 5, 2**31):
        query, body = oa_request("<xml/>", encrypted=aes(
            V5_KEY, frame(b"<xml/>", OA_APPID.encode(), length=length)))
        response = await client.post("/wechat/oa", params=query, data=body)
        assert 400 <= response.status < 500
    await nothing_stored()
