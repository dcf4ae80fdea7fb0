"""Helpers for the callback tests: build signed (and encrypted) pushes by hand, wait for
background work, make a service with other settings."""

from __future__ import annotations

import asyncio
import base64
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from bot.app import create_app
from bot.sandbox.pushes import encrypt, render_xml, sign
from bot.settings import Settings
from tests.conftest import OA_AES_KEY, WECOM_AES_KEY

OA_TOKEN, OA_APPID = "spamtest", "wx2c2769f8efd9abc2"
WECOM_TOKEN, WECOM_CORPID = "QDG6eK", "wx5823bf96d3bd56c7"
GH = "gh_7f083739789a"
OPENID = "oia2TjjewbmiOUlr6X-1crbLOvLw"
PREFIX = "aaaabbbbccccdddd"


def now() -> str:
    return str(int(time.time()))


def oa_fields(**fields: Any) -> dict[str, Any]:
    """An OA push's fields with WeChat's header first (FromUserName, CreateTime default)."""
    out: dict[str, Any] = {"ToUserName": GH, "FromUserName": OPENID,
                           "CreateTime": int(time.time())}
    out.update(fields)
    return out


def oa_request(payload: dict[str, Any] | str, *, mode: str = "safe", token: str = OA_TOKEN,
               aes_key: str = OA_AES_KEY, appid: str = OA_APPID, timestamp: str | None = None,
               nonce: str = "1320562132", encrypted: str | None = None
               ) -> tuple[dict[str, str], str]:
    """(query, body) of an OA push in `mode` plain, compat or safe; `encrypted` replaces the
    ciphertext (still correctly signed)."""
    timestamp = timestamp or now()
    xml = payload if isinstance(payload, str) else render_xml(payload)
    query = {"signature": sign(token, timestamp, nonce), "timestamp": timestamp, "nonce": nonce,
             "openid": OPENID}
    if mode == "plain":
        return query, xml
    cipher = encrypted if encrypted is not None else encrypt(aes_key, appid, xml, PREFIX)
    query.update(encrypt_type="aes", msg_signature=sign(token, timestamp, nonce, cipher))
    kept = payload if mode == "compat" and isinstance(payload, dict) else {"ToUserName": GH}
    return query, render_xml({**kept, "Encrypt": cipher})


def wecom_request(payload: dict[str, Any] | str, *, token: str = WECOM_TOKEN,
                  aes_key: str = WECOM_AES_KEY, corpid: str = WECOM_CORPID,
                  timestamp: str | None = None, nonce: str = "1372623149",
                  encrypted: str | None = None) -> tuple[dict[str, str], str]:
    timestamp = timestamp or now()
    xml = payload if isinstance(payload, str) else render_xml(payload)
    cipher = encrypted if encrypted is not None else encrypt(aes_key, corpid, xml, PREFIX,
                                                             wecom=True)
    query = {"msg_signature": sign(token, timestamp, nonce, cipher), "timestamp": timestamp,
             "nonce": nonce}
    return query, render_xml({"ToUserName": corpid, "Encrypt": cipher, "AgentID": "1000002"})


def wecom_fields(**fields: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"ToUserName": WECOM_CORPID, "FromUserName": "sys",
                           "CreateTime": int(time.time()), "MsgType": "event",
                           "Event": "change_external_contact"}
    out.update(fields)
    return out


def aes(aes_key: str, raw: bytes) -> str:
    """AES-256-CBC of `raw` as the §1.3 cipher does it, without any padding or framing: for
    building ciphertexts that are wrong inside."""
    key = base64.b64decode(aes_key + "=")
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(raw) + encryptor.finalize()).decode()


def frame(message: bytes, receive_id: bytes, *, length: int | None = None,
          pad_byte: int | None = None) -> bytes:
    """random ‖ msg_len ‖ msg ‖ receive_id ‖ PKCS#7(32) padding; `length` overrides msg_len and
    `pad_byte` the value of the padding bytes (their count stays right)."""
    body = PREFIX.encode() + struct.pack(">I", len(message) if length is None else length)
    body += message + receive_id
    count = 32 - len(body) % 32
    return body + bytes([count if pad_byte is None else pad_byte]) * count


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 5.0) -> Any:
    """Polls `check` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"still {result!r} after {timeout}s")
        await asyncio.sleep(0.01)


async def service(aiohttp_client: Any, settings: Settings, **changes: Any) -> Any:
    """A test client of the whole service with `changes` to its settings (no worker)."""
    return await aiohttp_client(create_app(replace(settings, **changes), worker=False))
