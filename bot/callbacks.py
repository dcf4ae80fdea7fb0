"""The WeChat callback URLs: verify → decrypt → parse → store → dispatch → reply.

Nothing is stored before the signature is checked, and a push is acknowledged only after its
interaction is committed. WeChat waits 5 seconds: what the handler has not finished by the
deadline goes on after the reply (docs/wechat.md §2.1, §5.2).
"""

from __future__ import annotations

import json
import re
import time

import xmltodict
from aiohttp import web
from wechatpy.fields import StringField
from wechatpy.replies import BaseReply

from bot import keys
from bot.api import read_body
from bot.errors import Forbidden, MissingSetting
from bot.pushes import MalformedPush, classify, guard, parse_body
from bot.settings import Settings
from bot.wxcrypto import CallbackCrypto, SignatureRejected

SUCCESS = "success"


class Callbacks:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.oa: CallbackCrypto | None = None
        self.wecom: CallbackCrypto | None = None
        tolerance = settings.timestamp_tolerance
        if settings.oa_token:
            self.oa = CallbackCrypto(settings.oa_token, settings.oa_aes_key, settings.oa_appid,
                                     tolerance)
        if settings.wecom_token and settings.wecom_aes_key:
            self.wecom = CallbackCrypto(settings.wecom_token, settings.wecom_aes_key,
                                        settings.wecom_corpid, tolerance)

    def crypto(self, source: str) -> CallbackCrypto:
        crypto = self.oa if source == "oa" else self.wecom
        if crypto is None:
            variable = "SCRM_OA_TOKEN" if source == "oa" else "SCRM_WECOM_TOKEN/SCRM_WECOM_AES_KEY"
            # Without the secret no push can be verified: refuse it as unverifiable, and say why.
            raise Forbidden(f"{variable} is not configured, so no push can be verified",
                            code=MissingSetting.code)
        return crypto


def query(request: web.Request, name: str) -> str:
    return request.query.get(name, "")


ENCRYPT = re.compile(rb"<Encrypt><!\[CDATA\[([A-Za-z0-9+/=]{1,65536})\]\]></Encrypt>")


def envelope_encrypt(body: bytes) -> object:
    """The ciphertext of an encrypted push. The envelope's other fields are neither signed nor
    used, so its usual shape is read without an XML parse; anything else is parsed in full."""
    guard(body)
    found = ENCRYPT.search(body)
    if found is not None and body.lstrip().startswith(b"<xml>"):
        return found.group(1).decode()
    # Nothing is verified yet: only the XML parser (linear in the body) reads the rest.
    return parse_body(body, flat=False).get("Encrypt")


def unwrap(crypto: CallbackCrypto, request: web.Request, body: bytes,
           encrypted: bool) -> dict[str, object]:
    """The verified, decrypted fields of a push."""
    timestamp, nonce = query(request, "timestamp"), query(request, "nonce")
    if not encrypted:
        if crypto.encrypted:
            raise SignatureRejected("plaintext pushes are refused: this account uses encryption")
        crypto.verify(request.query.get("signature"), timestamp, nonce)
        return parse_body(body)
    encrypt = envelope_encrypt(body)
    if not isinstance(encrypt, str) or not encrypt:
        raise MalformedPush("an encrypted push must carry Encrypt")
    crypto.verify_encrypted(request.query.get("msg_signature"), timestamp, nonce, encrypt)
    return parse_body(crypto.decrypt(encrypt))


async def receive(request: web.Request, source: str, fields: dict[str, object],
                  started: float) -> object:
    """Stores the push once; returns the handler's reply if it came within the deadline."""
    app = request.app
    remaining = app[keys.SETTINGS].callback_deadline - (time.monotonic() - started)
    received = await app[keys.INGEST].receive(classify(source, fields), wait=remaining)
    return None if received.outcome is None else received.outcome.reply


def as_json(xml: str) -> str:
    """A reply for a JSON-format push: the same element names as keys (docs/wechat.md §1.2)."""
    fields = xmltodict.parse(xml)["xml"]
    if str(fields.get("CreateTime", "")).isdigit():
        fields["CreateTime"] = int(fields["CreateTime"])
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":"))


# What XML 1.0 cannot carry at all; "]]>" would end wechatpy's CDATA sections early.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]|]]>")


def cdata_safe(reply: BaseReply) -> BaseReply:
    """wechatpy writes each text field as `<![CDATA[value]]>` as it is: a "]]>" inside a value
    (a welcome text, a sender's id) would close the section and let the rest be read as
    elements. Such a value is split across two sections; characters XML forbids are dropped.
    (The values are read where wechatpy keeps them, by element name: its attribute access
    copies defaults and converts, which cost more than the check.)"""
    values = reply._data
    for field in reply._fields.values():
        value = values.get(field.name)
        if isinstance(field, StringField) and isinstance(value, str) and _UNSAFE.search(value):
            values[field.name] = _NOT_XML.sub("", value).replace("]]>", "]]]]><![CDATA[>")
    return reply


def render(reply: object, crypto: CallbackCrypto, encrypted: bool, nonce: str,
           json_format: bool = False) -> str | None:
    if not isinstance(reply, BaseReply):
        return None
    text = str(cdata_safe(reply).render())
    if json_format:
        text = as_json(text)
    return crypto.encrypt_reply(text, nonce, as_json=json_format) if encrypted else text


async def oa(request: web.Request) -> web.StreamResponse:
    started = time.monotonic()
    crypto = request.app[keys.CALLBACKS].crypto("oa")
    if request.method == "GET":  # URL check: the echostr back, verbatim (§1.1)
        crypto.verify(request.query.get("signature"), query(request, "timestamp"),
                      query(request, "nonce"))
        return web.Response(text=query(request, "echostr"))
    body = await read_body(request, request.app[keys.SETTINGS].max_callback_body)
    encrypted = query(request, "encrypt_type") == "aes"
    fields = unwrap(crypto, request, body, encrypted)
    reply = await receive(request, "oa", fields, started)
    json_format = body.lstrip().startswith(b"{")  # the account pushes JSON: reply in JSON
    text = render(reply, crypto, encrypted, query(request, "nonce"), json_format)
    if text is None:
        return web.Response(text=SUCCESS)
    return web.Response(text=text,
                        content_type="application/json" if json_format else "application/xml")


async def wecom(request: web.Request) -> web.StreamResponse:
    started = time.monotonic()
    crypto = request.app[keys.CALLBACKS].crypto("wecom")
    timestamp, nonce = query(request, "timestamp"), query(request, "nonce")
    if request.method == "GET":  # URL check: decrypt echostr, answer its plaintext (§5.2)
        echostr = query(request, "echostr")
        crypto.verify_encrypted(request.query.get("msg_signature"), timestamp, nonce, echostr)
        return web.Response(text=crypto.decrypt(echostr))
    body = await read_body(request, request.app[keys.SETTINGS].max_callback_body)
    fields = unwrap(crypto, request, body, encrypted=True)
    reply = await receive(request, "wecom", fields, started)
    xml = render(reply, crypto, True, nonce)
    return web.Response(text=xml or "", content_type="application/xml" if xml else "text/plain")


def setup_routes(app: web.Application) -> None:
    app.router.add_route("GET", "/wechat/oa", oa)
    app.router.add_route("POST", "/wechat/oa", oa)
    app.router.add_route("GET", "/wechat/wecom", wecom)
    app.router.add_route("POST", "/wechat/wecom", wecom)
