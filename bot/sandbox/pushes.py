"""Pushes to a callback URL as WeChat sends them: XML, signed, encrypted, retried.

Follows docs/wechat.md §1 (signatures, cipher, reply envelope), §2.1 (5 s, three tries with
the identical request), §2.3 (OA payloads) and §5.2–§5.3 (WeCom). The crypto is wechatpy's.
"""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp
import xmltodict
from wechatpy.crypto import PrpCrypto, WeChatCrypto
from wechatpy.enterprise.crypto import PrpCrypto as WorkPrpCrypto
from wechatpy.enterprise.crypto import WeChatCrypto as WorkCrypto
from wechatpy.utils import WeChatSigner
from yarl import URL

from bot.sandbox.events import apply_oa, apply_wecom, complete_oa, complete_wecom

if TYPE_CHECKING:
    from bot.sandbox.state import Sandbox

MODES = ("plain", "compat", "safe")
ReplyReader = Callable[[str], tuple[str | None, str | None]]


def sign(*parts: str) -> str:
    """sha1 of the sorted parts: `signature` (3 parts) and `msg_signature` (4 parts)."""
    signer = WeChatSigner()
    signer.add_data(*parts)
    return str(signer.signature)


def encrypt(aes_key: str, receive_id: str, text: str, random_prefix: str | None = None, *,
            wecom: bool = False) -> str:
    """The §1.3 cipher; a fixed 16-char `random_prefix` makes it deterministic."""
    crypto = (WorkPrpCrypto if wecom else PrpCrypto)(base64.b64decode(aes_key + "="))
    if random_prefix is not None:
        if len(random_prefix.encode()) != 16:
            raise ValueError("the random prefix must be 16 bytes")
        crypto.get_random_string = lambda: random_prefix
    return bytes(crypto.encrypt(text, receive_id)).decode()


def render_xml(fields: Mapping[str, Any]) -> str:
    """One-line XML as WeChat writes it: numbers bare, text in CDATA."""
    parts = []
    for name, value in fields.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            parts.append(f"<{name}>{value}</{name}>")
        else:
            text = str(value).replace("]]>", "]]]]><![CDATA[>")
            parts.append(f"<{name}><![CDATA[{text}]]></{name}>")
    return "<xml>" + "".join(parts) + "</xml>"


@dataclass
class Attempt:
    status: int | None  # None: timed out or the connection failed
    body: str
    reply: str | None = None  # the reply XML, decrypted when it came encrypted
    error: str | None = None
    elapsed: float = 0.0


@dataclass
class Delivery:
    url: str
    query: dict[str, str]
    body: str
    fields: dict[str, Any] = field(default_factory=dict)
    attempts: list[Attempt] = field(default_factory=list)
    echo: str | None = None  # a URL check passes when the body is exactly this

    @property
    def ok(self) -> bool:
        return any(a.status == 200 and (self.echo is None or a.body == self.echo)
                   for a in self.attempts)

    @property
    def statuses(self) -> list[int | None]:
        return [a.status for a in self.attempts]

    @property
    def reply(self) -> str | None:
        return next((a.reply for a in self.attempts if a.reply), None)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok, "reply": self.reply}


def reply_reader(crypto: Any, *, must_encrypt: bool) -> ReplyReader:
    """Reads a passive reply: nothing, plain XML, or the §1.4 envelope (MsgSignature checked)."""

    def read(text: str) -> tuple[str | None, str | None]:
        text = text.strip()
        if text in ("", "success"):
            return None, None
        try:
            doc = xmltodict.parse(text)["xml"]
        except Exception:  # noqa: BLE001 - any parse failure is a malformed reply
            return None, "the reply is not XML"
        if not isinstance(doc, dict) or "Encrypt" not in doc:
            plain_error = "a plain reply where an encrypted one is required"
            return text, plain_error if must_encrypt else None
        if crypto is None:
            return None, "an encrypted reply without an EncodingAESKey"
        try:
            plain = crypto.decrypt_message(doc, doc.get("MsgSignature"), doc.get("TimeStamp"),
                                           doc.get("Nonce"))
        except Exception as exc:  # noqa: BLE001 - bad signature, key or padding alike
            return None, f"the encrypted reply was refused: {type(exc).__name__}"
        return str(plain), None

    return read


async def _attempt(session: aiohttp.ClientSession, method: str, target: URL, body: str,
                   timeout: float, read: ReplyReader | None) -> Attempt:
    started = time.monotonic()
    try:
        async with session.request(
                method, target, data=body.encode() if method == "POST" else None,
                headers={"Content-Type": "text/xml"} if method == "POST" else None,
                timeout=aiohttp.ClientTimeout(total=timeout)) as response:
            status, text = response.status, (await response.read()).decode("utf-8", "replace")
    except TimeoutError:
        return Attempt(None, "", error="timeout", elapsed=time.monotonic() - started)
    except aiohttp.ClientError as exc:
        return Attempt(None, "", error=repr(exc), elapsed=time.monotonic() - started)
    reply, error = read(text) if read is not None and status == 200 else (None, None)
    return Attempt(status, text, reply, error, time.monotonic() - started)


async def deliver(url: str, body: str = "", *, query: Mapping[str, str] | None = None,
                  method: str = "POST", timeout: float = 5.0, tries: int = 3,
                  duplicates: int = 0, read_reply: ReplyReader | None = None,
                  session: aiohttp.ClientSession | None = None) -> Delivery:
    """Send like WeChat: wait `timeout`, retry on timeout or non-200 up to `tries` in all, every
    time the identical query and body; then `duplicates` extra copies even though answered."""
    target = URL(url).update_query(dict(query or {}))
    delivery = Delivery(str(target), dict(query or {}), body)
    own = session is None
    client = session or aiohttp.ClientSession()
    try:
        for _ in range(tries):
            attempt = await _attempt(client, method, target, body, timeout, read_reply)
            delivery.attempts.append(attempt)
            if attempt.status == 200:
                break
        for _ in range(duplicates):
            delivery.attempts.append(
                await _attempt(client, method, target, body, timeout, read_reply))
    finally:
        if own:
            await client.close()
    return delivery


def _stamp(sandbox: Sandbox, timestamp: str | None, nonce: str | None) -> tuple[str, str]:
    return timestamp or str(int(sandbox.clock())), nonce or str(secrets.randbelow(10**10))


async def push_oa(sandbox: Sandbox, callback: str, event: Mapping[str, Any], *,
                  mode: str = "safe", timestamp: str | None = None, nonce: str | None = None,
                  random_prefix: str | None = None, **options: Any) -> Delivery:
    """An OA push (§1.1, §1.2) in `mode` plain, compat or safe; options go to `deliver`.
    The event's side effects (follow, unfollow) reach the sandbox's state first."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    s = sandbox.settings
    token = s.require("oa_token")
    fields = complete_oa(sandbox, event)
    apply_oa(sandbox, fields)
    timestamp, nonce = _stamp(sandbox, timestamp, nonce)
    xml = render_xml(fields)
    query = {"signature": sign(token, timestamp, nonce), "timestamp": timestamp, "nonce": nonce,
             "openid": str(fields["FromUserName"])}
    body, crypto = xml, None
    if s.oa_aes_key and s.oa_appid:
        crypto = WeChatCrypto(token, str(s.oa_aes_key), s.oa_appid)
    if mode != "plain":
        encrypted = encrypt(s.require("oa_aes_key"), s.require("oa_appid"), xml,
                            random_prefix or sandbox.random_prefix)
        query.update(encrypt_type="aes", msg_signature=sign(token, timestamp, nonce, encrypted))
        kept = fields if mode == "compat" else {"ToUserName": fields["ToUserName"]}
        body = render_xml({**kept, "Encrypt": encrypted})
    delivery = await deliver(callback, body, query=query, **options,
                             read_reply=reply_reader(crypto, must_encrypt=mode == "safe"))
    delivery.fields = fields
    return delivery


async def push_wecom(sandbox: Sandbox, callback: str, event: Mapping[str, Any], *,
                     timestamp: str | None = None, nonce: str | None = None,
                     random_prefix: str | None = None, **options: Any) -> Delivery:
    """A WeCom push (§5.2): always encrypted. An add_external_contact registers its WelcomeCode
    and the contact, so `send_welcome_msg` and `externalcontact/get` agree with it."""
    s = sandbox.settings
    token, key, corpid = s.require("wecom_token"), s.require("wecom_aes_key"), s.require(
        "wecom_corpid")
    fields = complete_wecom(sandbox, event)
    apply_wecom(sandbox, fields)
    timestamp, nonce = _stamp(sandbox, timestamp, nonce)
    encrypted = encrypt(key, corpid, render_xml(fields), random_prefix or sandbox.random_prefix,
                        wecom=True)
    envelope: dict[str, Any] = {"ToUserName": corpid, "Encrypt": encrypted}
    if s.wecom_agent_id is not None:
        envelope["AgentID"] = str(s.wecom_agent_id)
    query = {"msg_signature": sign(token, timestamp, nonce, encrypted), "timestamp": timestamp,
             "nonce": nonce}
    delivery = await deliver(callback, render_xml(envelope), query=query, **options,
                             read_reply=reply_reader(WorkCrypto(token, key, corpid),
                                                     must_encrypt=True))
    delivery.fields = fields
    return delivery


async def check_oa_url(sandbox: Sandbox, url: str, echostr: str | None = None, *,
                       timestamp: str | None = None, nonce: str | None = None,
                       timeout: float = 5.0) -> Delivery:
    """The OA server-config check (§1.1): GET with a plain echostr, expected back verbatim."""
    token = sandbox.settings.require("oa_token")
    echostr = echostr or str(secrets.randbelow(10**19))
    timestamp, nonce = _stamp(sandbox, timestamp, nonce)
    query = {"signature": sign(token, timestamp, nonce), "timestamp": timestamp, "nonce": nonce,
             "echostr": echostr}
    delivery = await deliver(url, query=query, method="GET", timeout=timeout, tries=1)
    delivery.echo = echostr
    return delivery


async def check_wecom_url(sandbox: Sandbox, url: str, echostr: str | None = None, *,
                          timestamp: str | None = None, nonce: str | None = None,
                          random_prefix: str | None = None, timeout: float = 5.0) -> Delivery:
    """The WeCom URL check (§5.2): an encrypted echostr whose plaintext is expected back."""
    s = sandbox.settings
    token, key, corpid = s.require("wecom_token"), s.require("wecom_aes_key"), s.require(
        "wecom_corpid")
    plain = echostr or str(secrets.randbelow(10**19))
    encrypted = encrypt(key, corpid, plain, random_prefix or sandbox.random_prefix, wecom=True)
    timestamp, nonce = _stamp(sandbox, timestamp, nonce)
    query = {"msg_signature": sign(token, timestamp, nonce, encrypted), "timestamp": timestamp,
             "nonce": nonce, "echostr": encrypted}
    delivery = await deliver(url, query=query, method="GET", timeout=timeout, tries=1)
    delivery.echo = plain
    return delivery
