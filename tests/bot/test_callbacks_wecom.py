"""/wechat/wecom end to end: the encrypted URL check, V7/V8/D2/D3, refusals, dedup."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from bot.sandbox import events
from bot.sandbox.pushes import check_wecom_url, sign
from bot.settings import Secret
from models import Identity, IdentityKind, Interaction, Prospect
from tests.bot.kit import (
    WECOM_CORPID,
    WECOM_TOKEN,
    aes,
    eventually,
    frame,
    service,
    wecom_fields,
    wecom_request,
)
from tests.bot.test_callbacks_oa import DECLARATIONS, MALFORMED, error, nothing_stored
from tests.bot.test_wxcrypto import FOREVER, V7_ECHOSTR, V7_ID, V7_KEY, V8_ECHOSTR, V8_KEY

V7_BODY = (
    "<xml><ToUserName><![CDATA[wx49f0ab532d5d035a]]></ToUserName>\n<Encrypt><![CDATA[RgqEoJj5A4EMYlLv"
    "WO1F86ioRjZfaex/gePD0gOXTxpsq5Yj4GNglrBb8I2BAJVODGajiFnXBu7mCPatfjsu6IHCrsTyeDXzF6Bv283dGymzxh6y"
    "dJRvZsryDyZbLTE7rhnus50qGPMfp2wASFlzEgMW9z1ef/RD8XzaFYgm7iTdaXpXaG4+BiYyolBug/gYNx410cvkKR2/nPwB"
    "iT+P4hIiOAQqGp/TywZBtDh1yCF2KOd0gpiMZ5jSw3e29mTvmUHzkVQiMS6td7vXUaWOMZnYZlF3So2SjHnwh4jYFxdgpkHH"
    "qIrH/54SNdshoQgWYEvccTKe7FS709/5t6NMxuGhcUGAPOQipvWTT4dShyqio7mlsl5noTrb++x6En749zCpQVhDpbV6GDnT"
    "bcX2e8K9QaNWHp91eBdCRxthuL0=]]></Encrypt>\n<AgentID><![CDATA[1]]></AgentID>\n</xml>"
)
V8_ENCRYPT = (
    "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911"
    "L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLx"
    "AUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9"
    "nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/u"
    "h9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q=="
)
D2_ENCRYPT = (
    "ZA4HuQypHxnRrA+A6SOHGPKvmTJU4q6504P2EkA56JFVbE9ZNBkyS17mfD2T/F/BO0ePdfYfH8hzFS4ta5LSOE0SQ0Fv7k4i"
    "8pEUbX2MYzPqr+sO2RXyxFCOcMLeKCdNiJtpBmZGjNTdohiWKPr6J+NLxvhGPkSGKfhOOFCUtQeMFdyF1Qsu7OUdNYiNhbUf"
    "c0I/IZtVgBVLkdbDjzAIZhy8rn2yPuW0F7xG4f150KwCN7HbbDA1VHgJsDyF5B7vV2mqgYBlh4NdZ1MTEDH+Ekp0oLccOMZF"
    "4ToRxeD2GHJ30qEBA2LeeNgJ5PkO+HTSh6/mi+Rtt0DAVopPN+EksxGly6qwkUQAW01DQCvkoVRxnM8PAOzyLsALlSzFpzYV"
    "mbyPX4HW3WbR7pMzX5sM85YvZuQ+zRP1wEEzRHgqqvqQ4rsY8UQTBB8ntV/98tYqgQaJ4N2dmfuuxBBp188ioCD4bUxQDCXv"
    "FOxtzhsXKILDh8Fiw6jpe+MkN70I+WaYbj1Gb6viKunqUrWOePCOYWh9UDdbr80cdJN1BNiBrQf1QcIrYcRBz1ax+y8bbM6a"
    "WE0X76LzdAq4nWhBt+hOrkTuBrQvOB5f1TChqDpwSbIzwMITXzXT503Ib6XmafJ6FWbZuJyClkj+2q7fBCinMnNiOuHk2S6y"
    "jlu49tgzXm114Osx8tHLUW4hkhdixMBwbaazbbxpPiimlTgQbjML6g=="
)
D3_ECHOSTR = ("ZA4HuQypHxnRrA+A6SOHGIsQN5UvecwccCSx4ddddYI5p5pZPzN+A+vy3lid7oqTb3OaEAsMAKe+NfyuRa"
              "fByg==")
EXTERNAL = "woAJ2GCAAAXtWyujaWJHDDGi0mACH71w"


@pytest.fixture
async def old_vectors(aiohttp_client: Any, app_settings: Any) -> Any:
    """The V8/D2/D3 corp (the test account) with the 5-minute window opened for old vectors."""
    return await service(aiohttp_client, app_settings, timestamp_tolerance=FOREVER)


async def added() -> int:
    return await Interaction.filter(source="wecom").count()


# --- URL check ----------------------------------------------------------------------------------

async def test_v8_url_check_decrypts_the_url_encoded_echostr(old_vectors):
    path = ("/wechat/wecom?msg_signature=5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3"
            "&timestamp=1409659589&nonce=263014780&echostr=P9nAzCzyDtyTWESHep1vC5X9xho%2FqYX3Zp"
            "b4yKa9SKld1DsH3Iyt3tP3zNdtp%2B4RPcs8TgAE7OaBO%2BFZXvnaqQ%3D%3D")
    response = await old_vectors.get(path)
    assert response.status == 200
    assert await response.text() == "1616140317555161061"  # no quotes, no newline


async def test_d3_url_check(old_vectors):
    query = {"msg_signature": "057a15101858b004a7d1565bc37f000fadf0120c",
             "timestamp": "1409659589", "nonce": "263014780", "echostr": D3_ECHOSTR}
    response = await old_vectors.get("/wechat/wecom", params=query)
    assert await response.text() == "1234567890123456789"
    response = await old_vectors.get("/wechat/wecom", params={**query, "echostr": V8_ECHOSTR})
    assert response.status == 403  # signed for another echostr


async def test_v7_url_check_and_the_wrong_nonce(aiohttp_client, app_settings):
    client = await service(aiohttp_client, app_settings, wecom_token=Secret("123456"),
                           wecom_aes_key=Secret(V7_KEY), wecom_corpid=V7_ID,
                           timestamp_tolerance=FOREVER)
    query = {"msg_signature": "dd6b9c95b495b3f7e2901bfbc76c664930ffdb96",
             "timestamp": "1411443780", "nonce": "437374425", "echostr": V7_ECHOSTR}
    assert await (await client.get("/wechat/wecom", params=query)).text() == (
        "5927782489442352469")
    response = await client.get("/wechat/wecom", params={**query, "nonce": "437374424"})
    assert response.status == 403
    assert error(await response.json()) == "bad_signature"


async def test_url_check_from_the_sandbox(client, wechat):
    url = str(client.make_url("/wechat/wecom"))
    delivery = await check_wecom_url(wechat, url, "8800000000000000001")
    assert delivery.ok and delivery.attempts[0].body == "8800000000000000001"
    stale = await check_wecom_url(wechat, url, timestamp=str(int(time.time()) - 400))
    assert stale.statuses == [403]


async def test_url_check_refuses_bad_echostrs(client):
    timestamp, nonce = str(int(time.time())), "1"
    for echostr in ("12345", aes(V8_KEY, frame(b"12345", b"wxwrongcorp"))):
        query = {"msg_signature": sign(WECOM_TOKEN, timestamp, nonce, echostr),
                 "timestamp": timestamp, "nonce": nonce, "echostr": echostr}
        response = await client.get("/wechat/wecom", params=query)
        assert response.status == 403
        assert error(await response.json()) == "bad_ciphertext"
    response = await client.get("/wechat/wecom", params={"timestamp": timestamp, "nonce": nonce})
    assert response.status == 403


# --- official vectors through the endpoint ------------------------------------------------------

async def test_v8_message_is_stored(old_vectors):
    query = {"msg_signature": "477715d11cdb4164915debcba66cb864d751f3e6",
             "timestamp": "1409659813", "nonce": "1372623149"}
    body = (f"<xml><ToUserName><![CDATA[{WECOM_CORPID}]]></ToUserName><Encrypt><![CDATA["
            f"{V8_ENCRYPT}]]></Encrypt><AgentID><![CDATA[218]]></AgentID></xml>")
    response = await old_vectors.post("/wechat/wecom", params=query, data=body)
    assert response.status == 200 and await response.text() == ""  # ack-only: an empty body
    row = await Interaction.get(source="wecom")
    assert (row.kind, row.actor, row.dedup_key) == ("message.text", "mycreate",
                                                    "msg:4561255354251345929")
    assert row.payload["Content"] == "hello" and row.payload["AgentID"] == "218"
    await old_vectors.post("/wechat/wecom", params=query, data=body)
    assert await added() == 1


async def test_v7_message_is_stored(aiohttp_client, app_settings):
    client = await service(aiohttp_client, app_settings, wecom_token=Secret("123456"),
                           wecom_aes_key=Secret(V7_KEY), wecom_corpid=V7_ID,
                           timestamp_tolerance=FOREVER)
    query = {"msg_signature": "74d92dfeb87ba7c714f89d98870ae5eb62dff26d",
             "timestamp": "1411525903", "nonce": "461056294"}
    response = await client.post("/wechat/wecom", params=query, data=V7_BODY)
    assert response.status == 200
    row = await Interaction.get(source="wecom")
    assert (row.kind, row.actor) == ("message.text", "messense")
    assert row.payload["MsgId"] == "4363689963896700987" and row.payload["Content"] == "test"


async def test_d2_add_external_contact_makes_a_prospect(old_vectors):
    query = {"msg_signature": "666d8e6200c6d54355ee8951703423d9dd30bb17",
             "timestamp": "1409659813", "nonce": "1372623149"}
    body = (f"<xml><ToUserName><![CDATA[{WECOM_CORPID}]]></ToUserName><Encrypt><![CDATA["
            f"{D2_ENCRYPT}]]></Encrypt><AgentID><![CDATA[1000002]]></AgentID></xml>")
    response = await old_vectors.post("/wechat/wecom", params=query, data=body)
    assert response.status == 200 and await response.text() == ""
    row = await Interaction.get(source="wecom")
    assert row.kind == "event.change_external_contact.add_external_contact"
    assert (row.actor, row.scene) == (EXTERNAL, "teststate")
    identity = await Identity.get(kind=IdentityKind.EXTERNAL_USERID, value=EXTERNAL)

    async def attributed():
        return await Interaction.filter(id=row.id, prospect_id=identity.prospect_id,
                                        processed_at__isnull=False).exists()

    await eventually(attributed)


# --- through the sandbox ------------------------------------------------------------------------

async def test_contact_add_from_the_sandbox_stored_once(client, wechat):
    url = str(client.make_url("/wechat/wecom"))
    event = events.external_contact("add_external_contact", "zhangsan", EXTERNAL,
                                    state="booth7")
    delivery = await wechat.push_wecom(url, event, duplicates=2)
    assert delivery.statuses == [200, 200, 200] and delivery.ok
    assert all(a.error is None for a in delivery.attempts)
    assert await added() == 1
    assert await Prospect.all().count() == 1


async def test_concurrent_retries_are_stored_once(client):
    query, body = wecom_request(wecom_fields(ChangeType="add_external_contact", UserID="zhangsan",
                                             ExternalUserID=EXTERNAL, State="s1"))
    responses = await asyncio.gather(*(client.post("/wechat/wecom", params=query, data=body)
                                       for _ in range(8)))
    assert [r.status for r in responses] == [200] * 8
    assert await added() == 1


async def test_two_changes_of_one_contact_in_one_second_are_two(client):
    second = int(time.time())
    for change in ("add_external_contact", "del_follow_user"):
        query, body = wecom_request(wecom_fields(CreateTime=second, ChangeType=change,
                                                 UserID="zhangsan", ExternalUserID=EXTERNAL))
        assert (await client.post("/wechat/wecom", params=query, data=body)).status == 200
    assert await added() == 2


# --- refusals -----------------------------------------------------------------------------------

@pytest.mark.parametrize("missing", ["wecom_token", "wecom_aes_key"])
async def test_wecom_not_configured_is_403_naming_the_variable(aiohttp_client, app_settings,
                                                               missing):
    client = await service(aiohttp_client, app_settings, **{missing: None})
    query, body = wecom_request(wecom_fields(ChangeType="add_external_contact", UserID="u",
                                             ExternalUserID=EXTERNAL))
    for response in (await client.post("/wechat/wecom", params=query, data=body),
                     await client.get("/wechat/wecom", params={**query, "echostr": "x"})):
        assert response.status == 403
        message = (await response.json())["error"]["message"]
        assert "SCRM_WECOM_TOKEN" in message and "SCRM_WECOM_AES_KEY" in message
    await nothing_stored()


async def test_bad_signature_and_stale_timestamps(client):
    fields = wecom_fields(ChangeType="add_external_contact", UserID="u", ExternalUserID=EXTERNAL)
    query, body = wecom_request(fields)
    for change in ({"msg_signature": "0" * 40}, {"nonce": "2"}, {"timestamp": "x"},
                   {"timestamp": str(int(time.time()) - 400)}):
        response = await client.post("/wechat/wecom", params={**query, **change}, data=body)
        assert response.status == 403 and error(await response.json()) == "bad_signature"
    query, body = wecom_request(fields, timestamp=str(int(time.time()) - 400))
    assert (await client.post("/wechat/wecom", params=query, data=body)).status == 403
    await nothing_stored()


@pytest.mark.parametrize("case", ["wrong corpid", "bad padding", "bad length", "bad base64",
                                  "non-UTF-8", "length over content"])
async def test_bad_ciphertexts(client, case):
    corpid = WECOM_CORPID.encode()
    cipher = {
        "wrong corpid": aes(V8_KEY, frame(b"<xml/>", b"wx0000000000000000")),
        "bad padding": aes(V8_KEY, frame(b"<xml/>", corpid, pad_byte=0)),
        "bad length": aes(V8_KEY, b"x" * 80),
        "bad base64": "%%%%",
        "non-UTF-8": aes(V8_KEY, frame(b"\xc3\x28", corpid)),
        "length over content": aes(V8_KEY, frame(b"<xml/>", corpid, length=999)),
    }[case]
    query, body = wecom_request("<xml/>", encrypted=cipher)
    response = await client.post("/wechat/wecom", params=query, data=body)
    assert response.status == 403 and error(await response.json()) == "bad_ciphertext"
    await nothing_stored()


async def test_body_over_64_kib(client):
    query, body = wecom_request(wecom_fields(ChangeType="add_external_contact", UserID="u",
                                             ExternalUserID=EXTERNAL, State="s" * 70_000))

    async def chunks():
        yield body.encode()[:40_000]
        yield body.encode()[40_000:]

    for data in (body, chunks()):
        response = await client.post("/wechat/wecom", params=query, data=data)
        assert response.status == 413
    await nothing_stored()


@pytest.mark.parametrize("case", sorted(DECLARATIONS))
async def test_declarations_are_400_outside_and_inside(client, case):
    query, body = wecom_request(DECLARATIONS[case])
    assert (await client.post("/wechat/wecom", params=query, data=body)).status == 400
    assert (await client.post("/wechat/wecom", params=query,
                              data=DECLARATIONS[case])).status == 400
    await nothing_stored()


@pytest.mark.parametrize("case", sorted(MALFORMED))
async def test_malformed_is_400(client, case):
    query, body = wecom_request(MALFORMED[case])
    response = await client.post("/wechat/wecom", params=query, data=body)
    assert response.status == 400 and error(await response.json()) == "malformed_push"
    await nothing_stored()


async def test_a_plaintext_body_is_refused(client):
    fields = wecom_fields(ChangeType="add_external_contact", UserID="u", ExternalUserID=EXTERNAL)
    query, _ = wecom_request(fields)
    from bot.sandbox.pushes import render_xml

    response = await client.post("/wechat/wecom", params=query, data=render_xml(fields))
    assert response.status == 400  # no Encrypt in it
    await nothing_stored()
