"""Mini-program session tokens: signed with a key derived from SCRM_SECRET_KEY, checked in
constant time. The WeChat `session_key` stays in the server's store and is never in a token."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from bot.errors import Unauthorized

TTL = 7 * 24 * 3600


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Session:
    prospect_id: int
    openid: str
    expires: int


class SessionSigner:
    def __init__(self, secret_key: str) -> None:
        self._key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"scrm",
                         info=b"mp-session").derive(secret_key.encode())

    def _sign(self, body: str) -> str:
        return _b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest())

    def issue(self, prospect_id: int, openid: str, now: float | None = None) -> str:
        expires = int(now if now is not None else time.time()) + TTL
        body = _b64(json.dumps({"p": prospect_id, "o": openid, "e": expires},
                               separators=(",", ":")).encode())
        return f"{body}.{self._sign(body)}"

    def verify(self, token: str, now: float | None = None) -> Session:
        body, _, signature = token.partition(".")
        if not body or not signature or not hmac.compare_digest(
                self._sign(body).encode(), signature.encode("utf-8", "replace")):
            raise Unauthorized("the session token is not valid", code="invalid_token")
        try:
            data = json.loads(_unb64(body))
            session = Session(int(data["p"]), str(data["o"]), int(data["e"]))
        except (ValueError, KeyError, TypeError):
            raise Unauthorized("the session token is not valid", code="invalid_token") from None
        if session.expires < (now if now is not None else time.time()):
            raise Unauthorized("the session token has expired; log in again",
                               code="expired_token")
        return session
