"""What an attack-probe of every route found after the first round of hardening."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import xmltodict

from bot.callbacks import envelope_encrypt
from bot.logs import scrub
from bot.pushes import MalformedPush
from bot.wxcrypto import CallbackCrypto
from models import Interaction, Partner, Salesperson
from tests.bot.kit import OA_APPID, OA_TOKEN, oa_fields, oa_request
from tests.conftest import OA_AES_KEY

AUTH = {"Authorization": "Bearer test-admin-token"}
UNCLOSED = "<xml>" + "<a><![CDATA[" * 5400


@pytest.mark.parametrize("path", ["/wechat/oa?encrypt_type=aes", "/wechat/wecom"])
async def test_an_envelope_of_unclosed_sections_is_refused(client: Any, path: str) -> None:
    """Before, the fast reader scanned such a body once per section: 5 s of CPU for 64 KiB,
    before any signature was checked."""
    body = UNCLOSED[:64 * 1024 - 6] + "</xml>"
    response = await client.post(path, data=body)
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "malformed_push"
    assert await Interaction.all().count() == 0


def test_the_unverified_envelope_is_read_by_the_xml_parser_alone() -> None:
    with pytest.raises(MalformedPush):
        envelope_encrypt(UNCLOSED.encode() + b"</xml>")


@pytest.mark.parametrize("path", ["/admin/salespeople", "/admin/partners", "/admin/materials",
                                  "/admin/codes", "/mp/login"])
async def test_a_field_name_holding_a_lone_surrogate_is_a_400(client: Any, path: str) -> None:
    response = await client.post(path, data=b'{"\\ud800 13800138000": 1}', headers=AUTH)
    assert response.status == 400
    assert response.content_type == "application/json"
    error = (await response.json())["error"]
    assert error["code"] == "unknown_field"
    assert "13800138000" not in error["message"] or "?" in error["message"]
    assert await Salesperson.all().count() == 0 and await Partner.all().count() == 0


@pytest.mark.parametrize("welcome", ["a]]>b", "<![CDATA[x]]>", "]]><Injected>1</Injected>"])
@pytest.mark.parametrize("json_format", [False, True], ids=["xml", "json"])
async def test_a_welcome_holding_cdata_ends_reads_back_as_written(client: Any, welcome: str,
                                                                  json_format: bool) -> None:
    await Salesperson.create(name="王芳")
    issued = await client.post("/admin/codes", headers=AUTH, json={
        "kind": "salesperson", "channel": "oa", "salesperson_id": 1, "welcome": welcome})
    assert issued.status == 201
    scene = (await issued.json())["scene"]
    fields = oa_fields(MsgType="event", Event="subscribe", EventKey=f"qrscene_{scene}")
    if json_format:
        query, envelope = oa_request(json.dumps(fields))
        body = json.dumps({"ToUserName": fields["ToUserName"],
                           "Encrypt": xmltodict.parse(envelope)["xml"]["Encrypt"]})
    else:
        query, body = oa_request(fields)
    response = await client.post("/wechat/oa", params=query, data=body)
    assert response.status == 200
    crypto = CallbackCrypto(OA_TOKEN, OA_AES_KEY, OA_APPID)
    if json_format:
        reply = json.loads(crypto.decrypt((await response.json())["Encrypt"]))
    else:
        envelope = xmltodict.parse(await response.text())["xml"]
        reply = xmltodict.parse(crypto.decrypt(envelope["Encrypt"]))["xml"]
    assert reply["Content"] == welcome
    assert "Injected" not in reply


@pytest.mark.parametrize("welcome", ["a\uffffb", "a\ufffeb"])
async def test_text_xml_cannot_carry_is_refused(client: Any, welcome: str) -> None:
    await Salesperson.create(name="王芳")
    response = await client.post("/admin/codes", headers=AUTH, json={
        "kind": "salesperson", "channel": "oa", "salesperson_id": 1, "welcome": welcome})
    assert response.status == 400


@pytest.mark.parametrize("written", [
    "138/0013/8000", "138  0013  8000", "138_0013_8000", "138－0013－8000", "138–0013–8000",
    "013800138000", "(138)0013-8000", "138 - 0013 - 8000", "138,0013,8000", "138・0013・8000",
    "138~0013~8000", "138\u200b0013\u200b8000", "１３８００１３８０００", "+86 138 0013 8000",
    "0086-138-0013-8000", "%31%33%38%30%30%31%33%38%30%30%30"])
def test_a_phone_is_masked_however_it_is_written(written: str) -> None:
    clean = scrub(f"identity=phone:{written}")
    assert "138****8000" in clean
    assert "13800138000" not in re.sub(r"\D", "", clean)


@pytest.mark.parametrize("query", ["session_token", "sessionToken", "jwt", "auth", "authToken",
                                   "x-token", "bearer"])
def test_a_session_token_is_masked_whatever_its_name(query: str) -> None:
    token = "eyJwIjozLCJvIjoib01QdXNlciIsImUiOjE3OTY3NjAwMDB9.AbCdEfGhIjKlMnOpQrStUvWxYz012345"
    assert token not in scrub(f"GET /mp/x?{query}={token}")
    assert token not in scrub(f"GET /mp/{token}")
    assert scrub("errcode=40001&by=code") == "errcode=40001&by=code"


async def test_a_second_content_encoding_header_counts_too(client: Any) -> None:
    response = await client.post(
        "/admin/partners", data=b'{"name": "x"}',
        headers=[("Authorization", "Bearer test-admin-token"), ("Content-Encoding", "identity"),
                 ("Content-Encoding", "gzip")])
    assert response.status == 415
    assert await Partner.all().count() == 0


@pytest.mark.parametrize("url", ["http://a:99999/", "http://a:-1/", "http://a.com:0x50/",
                                 "http://a.com:0/"])
async def test_a_material_url_with_a_bad_port_is_a_400(client: Any, url: str) -> None:
    response = await client.post("/admin/materials", headers=AUTH,
                                 json={"title": "白皮书", "kind": "whitepaper", "url": url})
    assert response.status == 400
